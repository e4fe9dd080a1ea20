//! Engine errors. Each variant renders with a stable code prefix (`E_INPUT: ...`) that the
//! TypeScript facade maps to a typed error class.

/// Every fallible engine call returns this error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A caller-supplied argument is invalid (shape, token id, size, option range).
    #[error("E_INPUT: {0}")]
    Input(String),
    /// A model file is truncated, foreign, corrupt, or from an incompatible version.
    #[error("E_MODEL_FILE: {0}")]
    ModelFile(String),
    /// The requested device cannot be used (no CUDA in this build, no GPU, driver error).
    #[error("E_DEVICE: {0}")]
    Device(String),
    /// A loss or gradient became NaN or infinite; the parameters were left unchanged.
    #[error("E_NUMERIC: {0}")]
    Numeric(String),
    /// An error from candle or a caught panic; a bug in lstmgen if it ever happens.
    #[error("E_INTERNAL: {0}")]
    Internal(String),
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Internal(format!("candle: {e}"))
    }
}

/// Result alias used throughout the engine.
pub type Result<T> = std::result::Result<T, Error>;

/// Returns `Err(Error::Input(msg))` unless `cond` holds.
pub(crate) fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::Input(msg()))
    }
}

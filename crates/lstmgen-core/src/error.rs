//! Engine errors. Each variant has a stable code ([`Error::code`]), the same vocabulary the
//! TypeScript facade's error classes use; the message ([`Display`](std::fmt::Display)) carries no
//! code prefix.

/// Every fallible engine call returns this error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A caller-supplied argument is invalid (shape, token id, size, option value).
    #[error("{0}")]
    Data(String),
    /// A model file is truncated, foreign, corrupt, or from an incompatible version.
    #[error("{0}")]
    ModelFile(String),
    /// The requested device cannot be used (no CUDA in this build, no GPU, driver error).
    #[error("{0}")]
    Device(String),
    /// A loss or gradient became NaN or infinite; the parameters were left unchanged.
    #[error("{0}")]
    Numeric(String),
    /// An error from candle or a caught panic; a bug in lstmgen if it ever happens.
    #[error("{0}")]
    Native(String),
}

impl Error {
    /// The error's code: `"E_DATA"`, `"E_MODEL_FILE"`, `"E_DEVICE"`, `"E_NUMERIC"` or `"E_NATIVE"`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Data(_) => "E_DATA",
            Error::ModelFile(_) => "E_MODEL_FILE",
            Error::Device(_) => "E_DEVICE",
            Error::Numeric(_) => "E_NUMERIC",
            Error::Native(_) => "E_NATIVE",
        }
    }
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Native(format!("candle: {e}"))
    }
}

/// Result alias used throughout the engine.
pub type Result<T> = std::result::Result<T, Error>;

/// Returns `Err(Error::Data(msg))` unless `cond` holds.
pub(crate) fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::Data(msg()))
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn codes_are_data_and_messages_have_no_prefix() {
        let e = Error::Data("bad id".into());
        assert_eq!((e.code(), e.to_string()), ("E_DATA", "bad id".to_string()));
        assert_eq!(Error::Native(String::new()).code(), "E_NATIVE");
    }
}

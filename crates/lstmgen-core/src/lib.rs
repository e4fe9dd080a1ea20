//! lstmgen-core: an LSTM language-model engine on candle.
//!
//! Embedding -> stacked LSTM (PyTorch `nn.LSTM` semantics and names) -> dropout -> Linear ->
//! softmax cross-entropy; explicit backpropagation through time, Adam with global-norm clipping,
//! and batched sampling. f32 throughout. The device is a parameter: CPU, or CUDA with the `cuda`
//! feature.

mod act;
mod adam;
pub mod asgd;
mod buf;
mod config;
pub mod controls;
#[cfg(feature = "cuda")]
mod cuda;
pub mod cuda_recurrence;
pub mod device;
mod error;
mod finetune;
pub mod gemm;
mod generation;
pub mod io;
mod lstm;
mod memory;
mod model;
mod ops;
pub mod params;
mod recurrence;
mod regularize;
mod resets;
pub mod sample;
pub mod sessions;
mod sgd;
pub mod subword;

pub use config::{AdamConfig, ModelConfig, SampleConfig};
pub use error::{Error, Result};
pub use model::{BatchGrads, EvalStats, Model, State, StepStats};
pub use regularize::Regularizers;
pub use sgd::Optimizer;

/// The candle-core version this engine is built against (checked against Cargo.lock by a test).
pub const CANDLE_VERSION: &str = "0.11.1";

/// Threads candle uses for CPU work (`RAYON_NUM_THREADS`, default: all cores).
pub fn cpu_threads() -> usize {
    candle_core::utils::get_num_threads()
}

/// Largest absolute elementwise difference of two f64 tensors (unit tests).
#[cfg(test)]
pub(crate) fn max_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f64 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

#[cfg(test)]
mod tests {
    #[test]
    fn candle_version_matches_lockfile() {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock"))
                .unwrap();
        let want = format!(
            "name = \"candle-core\"\nversion = \"{}\"",
            super::CANDLE_VERSION
        );
        assert!(
            lock.contains(&want),
            "update CANDLE_VERSION to the candle-core version in Cargo.lock"
        );
    }
}

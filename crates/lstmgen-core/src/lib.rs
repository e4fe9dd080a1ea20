//! lstmgen-core: an LSTM language-model engine on candle.
//!
//! Embedding -> stacked LSTM (PyTorch `nn.LSTM` semantics and names) -> dropout -> Linear ->
//! softmax cross-entropy; explicit backpropagation through time, Adam with global-norm clipping,
//! and batched sampling. f32 throughout. The device is a parameter: CPU, or CUDA with the `cuda`
//! feature.

pub mod adam;
pub mod cell;
pub mod config;
pub mod device;
pub mod error;
pub mod io;
pub mod lstm;
pub mod model;
pub mod params;
pub mod sample;

pub use config::{AdamConfig, ModelConfig, SampleConfig};
pub use error::{Error, Result};
pub use model::{EvalStats, Model, State, StepStats};

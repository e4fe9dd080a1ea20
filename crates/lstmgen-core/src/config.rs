//! Model, optimizer and sampling configurations, validated before any tensor is allocated.

use crate::error::{ensure, Result};
use serde::{Deserialize, Serialize};

/// Shape of the network: Embedding(vocab_size, embedding_dim) -> num_layers x LSTM(hidden_size,
/// proj_size) -> dropout -> Linear(out, vocab_size), where `out` ([`ModelConfig::out_size`]) is
/// `proj_size` with a projection and `hidden_size` without.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelConfig {
    /// Number of token ids; inputs and targets must be `< vocab_size`.
    pub vocab_size: usize,
    /// Width of the token embedding.
    pub embedding_dim: usize,
    /// LSTM hidden (and cell) width `H`; gates are `[batch, 4H]`.
    pub hidden_size: usize,
    /// Number of stacked LSTM layers.
    pub num_layers: usize,
    /// Inverted-dropout probability between layers and before the output layer (training only).
    pub dropout: f32,
    /// Width `P` of every layer's projected output (PyTorch `nn.LSTM(proj_size=P)`:
    /// `h_t = W_hr (o_t * tanh(c_t))`, `W_hr` `[P, H]`), which is also the recurrent input and the
    /// next layer's input; 0 = no projection. Must be below `hidden_size`, as in PyTorch.
    #[serde(default)]
    pub proj_size: usize,
}

/// Largest size accepted for any single dimension, to turn typos into errors instead of OOM.
pub const MAX_DIM: usize = 1 << 20;
/// Most stacked layers accepted (each layer runs its own recurrence; thousands would take hours).
pub const MAX_LAYERS: usize = 256;

impl ModelConfig {
    /// Width of each layer's output and of the hidden state `h`: `proj_size`, or `hidden_size`
    /// without a projection (the cell state `c` is always `hidden_size` wide).
    pub fn out_size(&self) -> usize {
        if self.proj_size > 0 {
            self.proj_size
        } else {
            self.hidden_size
        }
    }

    /// Checks every field; the error names the field and the accepted range.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("vocabSize", self.vocab_size),
            ("embeddingDim", self.embedding_dim),
            ("hiddenSize", self.hidden_size),
        ] {
            ensure((1..=MAX_DIM).contains(&v), || {
                format!("{name} must be in [1, {MAX_DIM}], got {v}")
            })?;
        }
        ensure(
            self.num_layers >= 1 && self.num_layers <= MAX_LAYERS,
            || {
                format!(
                    "numLayers must be in [1, {MAX_LAYERS}], got {}",
                    self.num_layers
                )
            },
        )?;
        ensure(self.proj_size < self.hidden_size, || {
            format!(
                "projSize must be 0 (no projection) or below hiddenSize {}, got {}",
                self.hidden_size, self.proj_size
            )
        })?;
        ensure(
            self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout),
            || format!("dropout must be in [0, 1), got {}", self.dropout),
        )
    }
}

/// Adam (Kingma & Ba 2015) with optional decoupled weight decay (AdamW, Loshchilov & Hutter 2019)
/// and clipping by global L2 norm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate, > 0.
    pub lr: f64,
    /// First-moment decay, in [0, 1).
    pub beta1: f64,
    /// Second-moment decay, in [0, 1).
    pub beta2: f64,
    /// Denominator epsilon, > 0.
    pub eps: f64,
    /// Decoupled weight decay, >= 0 (0 = plain Adam).
    pub weight_decay: f64,
    /// Clip gradients to this global L2 norm; <= 0 disables clipping.
    pub clip_norm: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            clip_norm: 5.0,
        }
    }
}

impl AdamConfig {
    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<()> {
        ensure(self.lr.is_finite() && self.lr > 0.0, || {
            format!("lr must be a finite number > 0, got {}", self.lr)
        })?;
        ensure(
            self.beta1.is_finite() && (0.0..1.0).contains(&self.beta1),
            || format!("beta1 must be in [0, 1), got {}", self.beta1),
        )?;
        ensure(
            self.beta2.is_finite() && (0.0..1.0).contains(&self.beta2),
            || format!("beta2 must be in [0, 1), got {}", self.beta2),
        )?;
        ensure(self.eps.is_finite() && self.eps > 0.0, || {
            format!("eps must be > 0, got {}", self.eps)
        })?;
        ensure(
            self.weight_decay.is_finite() && self.weight_decay >= 0.0,
            || format!("weightDecay must be >= 0, got {}", self.weight_decay),
        )?;
        ensure(self.clip_norm.is_finite(), || {
            format!("clipNorm must be finite, got {}", self.clip_norm)
        })
    }
}

/// Options for batched sampling.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleConfig {
    /// Number of sequences sampled in parallel from the same prompt.
    pub num_samples: usize,
    /// Maximum number of new tokens per sequence.
    pub max_tokens: usize,
    /// Softmax temperature; 0 means greedy (argmax).
    pub temperature: f64,
    /// Keep only the `top_k` most likely tokens; 0 disables.
    pub top_k: usize,
    /// Nucleus sampling mass in (0, 1]; 1 disables (Holtzman et al. 2020).
    pub top_p: f64,
    /// RNG seed: the same seed, model and prompt give the same samples.
    pub seed: u64,
    /// Token-id sequences that end a sample once generated (the stop tokens are kept).
    pub stop_sequences: Vec<Vec<u32>>,
    /// Token ids never sampled: their logits become -inf before temperature, top-k, top-p and
    /// the draw (greedy decoding takes the most likely id not listed). Each must be a token id;
    /// at least one id must stay allowed.
    pub banned_ids: Vec<u32>,
    /// The record-boundary id: a sequence that samples it goes on from the zero state, as
    /// training resets the state there (see `Model::train_step`). None: the state runs on.
    pub reset_at: Option<u32>,
    /// Repetition and frequency penalties, no repeated n-grams, a minimum length
    /// ([`Controls`](crate::controls::Controls)); applied before `banned_ids`.
    pub controls: crate::controls::Controls,
}

impl SampleConfig {
    /// Whether a top-k or top-p filter is on.
    pub fn filters(&self) -> bool {
        self.top_k > 0 || self.top_p < 1.0
    }

    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<()> {
        ensure(self.num_samples >= 1 && self.num_samples <= 65536, || {
            format!("numSamples must be in [1, 65536], got {}", self.num_samples)
        })?;
        ensure(self.max_tokens <= 1 << 24, || {
            format!("maxTokens must be <= {}, got {}", 1 << 24, self.max_tokens)
        })?;
        ensure(
            self.temperature.is_finite() && self.temperature >= 0.0,
            || {
                format!(
                    "temperature must be a finite number >= 0, got {}",
                    self.temperature
                )
            },
        )?;
        ensure(
            self.top_p.is_finite() && self.top_p > 0.0 && self.top_p <= 1.0,
            || format!("topP must be in (0, 1], got {}", self.top_p),
        )?;
        ensure(self.stop_sequences.iter().all(|s| !s.is_empty()), || {
            "stop sequences must not be empty".into()
        })
    }
}

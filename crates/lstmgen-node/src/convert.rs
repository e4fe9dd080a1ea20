//! Conversions between JS objects and engine types.

use crate::error::{to_js, Result};
use lstmgen_core::controls::Controls;
use lstmgen_core::{AdamConfig, ModelConfig, Optimizer, Regularizers, SampleConfig};
use napi_derive::napi;

/// Shape of the network. All sizes are positive integers; dropout is in [0, 1); `projSize`
/// (absent or 0: no projection) is each layer's projected output width, below `hiddenSize`.
#[napi(object)]
#[derive(Clone, Copy)]
pub struct NativeModelConfig {
    pub vocab_size: u32,
    pub embedding_dim: u32,
    pub hidden_size: u32,
    pub num_layers: u32,
    pub dropout: f64,
    pub proj_size: Option<u32>,
}

/// Adam hyper-parameters and gradient clipping (global L2 norm; `clipNorm <= 0` disables it).
#[napi(object)]
#[derive(Clone, Copy)]
pub struct NativeOptimizerConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub clip_norm: f64,
}

/// One training step's result: `loss` is the mean cross-entropy in nats/token over
/// `batchSize * seqLen` positions; `gradNorm` the global L2 norm before clipping.
#[napi(object)]
pub struct NativeStepResult {
    pub loss: f64,
    pub grad_norm: f64,
    pub correct: f64,
    pub count: f64,
}

/// One evaluation batch: `lossSum` is the summed cross-entropy in nats over `count` positions.
#[napi(object)]
pub struct NativeEvalResult {
    pub loss_sum: f64,
    pub correct: f64,
    pub count: f64,
}

/// Sampling options: `temperature` 0 = greedy; `topK` 0 = off; `topP` 1 = off; `stopSequences`
/// are token-id sequences that end a sample (kept in the output). `seed`: sample i draws from
/// its own stream derived from (seed, i), so its text does not depend on `numSamples`.
#[napi(object)]
pub struct NativeSampleOptions {
    pub num_samples: u32,
    pub max_tokens: u32,
    pub temperature: f64,
    pub top_k: u32,
    pub top_p: f64,
    pub seed: f64,
    pub stop_sequences: Vec<Vec<u32>>,
    /// Token ids never sampled (their logits become -inf before temperature, top-k, top-p and
    /// the draw; greedy takes the most likely id not listed). Absent or empty: none. `E_DATA`
    /// for an id >= vocabSize or when every id is banned.
    pub banned_ids: Option<Vec<u32>>,
    /// The record-boundary id: a sample that draws it goes on from the zero state (the state a
    /// record starts from in training). Absent or null: the state runs on. `E_DATA` for an id
    /// >= vocabSize.
    pub boundary_id: Option<u32>,
    /// CTRL repetition penalty (Keskar et al. 2019): logits of tokens in the last `penaltyWindow`
    /// tokens are divided by it when positive, multiplied when negative. Absent: 1 (off).
    pub repetition_penalty: Option<f64>,
    /// Subtracted from a logit once per occurrence of its token in the window. Absent: 0 (off).
    pub frequency_penalty: Option<f64>,
    /// Bans tokens that would repeat an n-gram of this length from the window. Absent: 0 (off).
    pub no_repeat_ngram: Option<u32>,
    /// Tokens of context (prompt end, then generated) the penalties read. Absent: 256.
    pub penalty_window: Option<u32>,
    /// Tokens generated before any of `endIds` may be sampled. Absent: 0.
    pub min_tokens: Option<u32>,
    /// Ids banned until `minTokens` tokens were generated (the boundary token). Absent: none.
    pub end_ids: Option<Vec<u32>>,
}

/// The regularizers of training (all off when 0 / false): locked dropout on the embedding
/// output, between layers and before the decoder; embedding (word-type) dropout; weight drop on
/// `weight_hh`; tied embedding and decoder; AR and TAR coefficients.
#[napi(object)]
#[derive(Clone, Copy)]
pub struct NativeRegularizers {
    pub dropout_embedding: f64,
    pub dropout_hidden: f64,
    pub dropout_output: f64,
    pub dropout_words: f64,
    pub weight_drop: f64,
    pub tie_weights: bool,
    pub ar: f64,
    pub tar: f64,
}

impl From<NativeRegularizers> for Regularizers {
    fn from(r: NativeRegularizers) -> Self {
        Regularizers {
            dropout_embedding: r.dropout_embedding as f32,
            dropout_hidden: r.dropout_hidden as f32,
            dropout_output: r.dropout_output as f32,
            dropout_words: r.dropout_words as f32,
            weight_drop: r.weight_drop as f32,
            tie_weights: r.tie_weights,
            ar: r.ar as f32,
            tar: r.tar as f32,
        }
    }
}

/// The engine's update rule named `name` ("adam", "sgd" with `momentum`, or "ntasgd" with the
/// non-monotone interval `nonmono`).
pub fn optimizer_of(name: &str, momentum: f64, nonmono: u32) -> lstmgen_core::Result<Optimizer> {
    match name {
        "adam" => Ok(Optimizer::Adam),
        "sgd" => Ok(Optimizer::Sgd { momentum }),
        "ntasgd" => Ok(Optimizer::NtAsgd {
            nonmono: nonmono as usize,
        }),
        other => Err(lstmgen_core::Error::Data(format!(
            "optimizer must be \"adam\", \"sgd\" or \"ntasgd\", got {other:?}"
        ))),
    }
}

impl From<NativeModelConfig> for ModelConfig {
    fn from(c: NativeModelConfig) -> Self {
        ModelConfig {
            vocab_size: c.vocab_size as usize,
            embedding_dim: c.embedding_dim as usize,
            hidden_size: c.hidden_size as usize,
            num_layers: c.num_layers as usize,
            dropout: c.dropout as f32,
            proj_size: c.proj_size.unwrap_or(0) as usize,
        }
    }
}

impl From<&ModelConfig> for NativeModelConfig {
    fn from(c: &ModelConfig) -> Self {
        NativeModelConfig {
            vocab_size: c.vocab_size as u32,
            embedding_dim: c.embedding_dim as u32,
            hidden_size: c.hidden_size as u32,
            num_layers: c.num_layers as u32,
            dropout: c.dropout as f64,
            proj_size: Some(c.proj_size as u32),
        }
    }
}

impl From<NativeOptimizerConfig> for AdamConfig {
    fn from(o: NativeOptimizerConfig) -> Self {
        AdamConfig {
            lr: o.lr,
            beta1: o.beta1,
            beta2: o.beta2,
            eps: o.eps,
            weight_decay: o.weight_decay,
            clip_norm: o.clip_norm,
        }
    }
}

impl NativeSampleOptions {
    pub fn to_core(&self) -> Result<SampleConfig> {
        Ok(SampleConfig {
            num_samples: self.num_samples as usize,
            max_tokens: self.max_tokens as usize,
            temperature: self.temperature,
            top_k: self.top_k as usize,
            top_p: self.top_p,
            seed: seed_u64(self.seed)?,
            stop_sequences: self.stop_sequences.clone(),
            banned_ids: self.banned_ids.clone().unwrap_or_default(),
            reset_at: self.boundary_id,
            controls: self.controls(),
        })
    }

    /// The generation controls of these options (absent fields: off).
    pub fn controls(&self) -> Controls {
        let d = Controls::default();
        Controls {
            repetition_penalty: self.repetition_penalty.unwrap_or(d.repetition_penalty),
            frequency_penalty: self.frequency_penalty.unwrap_or(d.frequency_penalty),
            no_repeat_ngram: self
                .no_repeat_ngram
                .map_or(d.no_repeat_ngram, |n| n as usize),
            window: self.penalty_window.map_or(d.window, |n| n as usize),
            min_tokens: self.min_tokens.map_or(d.min_tokens, |n| n as usize),
            end_ids: self.end_ids.clone().unwrap_or_default(),
        }
    }
}

/// A JS number used as a seed: a non-negative safe integer.
pub fn seed_u64(seed: f64) -> Result<u64> {
    if seed.is_finite() && seed >= 0.0 && seed.fract() == 0.0 && seed <= 9_007_199_254_740_991.0 {
        Ok(seed as u64)
    } else {
        Err(to_js(lstmgen_core::Error::Data(format!(
            "seed must be a non-negative integer, got {seed}"
        ))))
    }
}

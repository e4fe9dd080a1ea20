//! The regularizers of AWD-LSTM (Merity et al. 2017, "Regularizing and Optimizing LSTM Language
//! Models"), applied by the training forward pass and undone by its backward pass:
//!
//! - variational ("locked") dropout (Gal & Ghahramani 2016): one inverted-dropout mask per
//!   sequence, the same at every step, on the embedding output, between layers and before the
//!   decoder;
//! - embedding dropout: whole word types dropped for one batch (rows of the embedding zeroed and
//!   the others scaled by `1 / (1 - p)`);
//! - weight drop (DropConnect, Wan et al. 2013) on each layer's `weight_hh`, one mask per batch;
//! - tied input and output embeddings (Press & Wolf 2017; Inan et al. 2017): the decoder weight
//!   is the embedding;
//! - activation regularization (AR, `alpha * mean(top^2)` over the decoder input) and temporal
//!   activation regularization (TAR, `beta * mean((h_t - h_{t-1})^2)` over the last layer's
//!   outputs before dropout), added to the objective, not to the reported loss.
//!
//! Every mask is drawn on the host from the step's dropout seed (a stream of its own, so that
//! the plain `dropout` masks are those drawn without these), so the same seed and step give the
//! same masks and a resumed run continues exactly. Tensors are time-major as in `lstm.rs`.

use crate::config::ModelConfig;
use crate::error::{ensure, Result};
use candle_core::{DType, Device, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Regularizers of training (all off by default). Probabilities are in [0, 1); AR and TAR
/// coefficients are >= 0 and multiply mean squares of activations (unitless, added to the
/// objective in nats per token).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Regularizers {
    /// Locked dropout on the embedding output (AWD-LSTM `dropouti`), mask `[batch, E]`.
    pub dropout_embedding: f32,
    /// Locked dropout on the output of every layer but the last (`dropouth`), masks `[batch, H]`.
    pub dropout_hidden: f32,
    /// Locked dropout on the last layer's output, the decoder input (`dropout`), mask `[batch, H]`.
    pub dropout_output: f32,
    /// Embedding dropout: probability of dropping a word type for a batch (`dropoute`), mask `[V]`.
    pub dropout_words: f32,
    /// DropConnect probability on every `weight_hh` (`wdrop`), mask `[4H, H]` per layer and batch.
    pub weight_drop: f32,
    /// Decoder weight = embedding weight; needs `embeddingDim` == the last layer's output width
    /// ([`ModelConfig::out_size`]: `projSize`, or `hiddenSize` without a projection).
    pub tie_weights: bool,
    /// AR coefficient alpha (AWD-LSTM: 2).
    pub ar: f32,
    /// TAR coefficient beta (AWD-LSTM: 1).
    pub tar: f32,
}

impl Regularizers {
    /// Checks every field against `cfg`; the error (`Error::Data`) names the field.
    pub fn validate(&self, cfg: &ModelConfig) -> Result<()> {
        for (name, p) in [
            ("dropoutEmbedding", self.dropout_embedding),
            ("dropoutHidden", self.dropout_hidden),
            ("dropoutOutput", self.dropout_output),
            ("dropoutWords", self.dropout_words),
            ("weightDrop", self.weight_drop),
        ] {
            ensure(p.is_finite() && (0.0..1.0).contains(&p), || {
                format!("{name} must be in [0, 1), got {p}")
            })?;
        }
        for (name, c) in [("ar", self.ar), ("tar", self.tar)] {
            ensure(c.is_finite() && c >= 0.0, || {
                format!("{name} must be a finite number >= 0, got {c}")
            })?;
        }
        ensure(
            !self.tie_weights || cfg.embedding_dim == cfg.out_size(),
            || {
                let fix = if cfg.proj_size > 0 {
                    format!("set projSize to {}", cfg.embedding_dim)
                } else if cfg.embedding_dim < cfg.hidden_size {
                    format!(
                        "set projSize to {} (a projection of each layer's output) or hiddenSize \
                         to {}",
                        cfg.embedding_dim, cfg.embedding_dim
                    )
                } else {
                    format!("set hiddenSize to {}", cfg.embedding_dim)
                };
                format!(
                    "tieWeights needs embeddingDim == the last layer's output width (projSize, or \
                     hiddenSize without a projection): the decoder reads {} outputs with the \
                     {}-wide embedding; {fix}",
                    cfg.out_size(),
                    cfg.embedding_dim
                )
            },
        )
    }
}

/// The masks of one training batch (`None`: that regularizer is off). Entries are 0 or `1/(1-p)`.
pub(crate) struct Masks {
    /// Word-type mask `[V, 1]`.
    pub words: Option<Tensor>,
    /// Locked mask of the embedding output `[1, batch, E]`.
    pub embedding: Option<Tensor>,
    /// Locked mask of each layer's output `[1, batch, out]`: `dropoutHidden` below the last
    /// layer, `dropoutOutput` on the last.
    pub outputs: Vec<Option<Tensor>>,
    /// DropConnect mask of each layer's `weight_hh` `[4H, out]`.
    pub weight_hh: Vec<Option<Tensor>>,
}

/// An inverted-dropout mask of `shape` drawn from `rng` (0 where a uniform draw is `< p`, else
/// `1 / (1 - p)`), or None when `p` is 0.
fn mask(
    shape: &[usize],
    p: f32,
    rng: &mut ChaCha8Rng,
    device: &Device,
    dtype: DType,
) -> Result<Option<Tensor>> {
    if p <= 0.0 {
        return Ok(None);
    }
    let keep = 1.0 / (1.0 - p);
    let n = shape.iter().product();
    let data: Vec<f32> = (0..n)
        .map(|_| if rng.random::<f32>() < p { 0.0 } else { keep })
        .collect();
    Ok(Some(
        Tensor::from_vec(data, shape, device)?.to_dtype(dtype)?,
    ))
}

impl Masks {
    /// Draws the masks of one batch of `batch` sequences, in a fixed order (words, embedding,
    /// then per layer its `weight_hh` and its output).
    pub(crate) fn draw(
        reg: &Regularizers,
        cfg: &ModelConfig,
        batch: usize,
        rng: &mut ChaCha8Rng,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let (v, e, h, out) = (
            cfg.vocab_size,
            cfg.embedding_dim,
            cfg.hidden_size,
            cfg.out_size(),
        );
        let words = mask(&[v, 1], reg.dropout_words, rng, device, dtype)?;
        let embedding = mask(&[1, batch, e], reg.dropout_embedding, rng, device, dtype)?;
        let (mut outputs, mut weight_hh) = (Vec::new(), Vec::new());
        for l in 0..cfg.num_layers {
            weight_hh.push(mask(&[4 * h, out], reg.weight_drop, rng, device, dtype)?);
            let p = if l + 1 == cfg.num_layers {
                reg.dropout_output
            } else {
                reg.dropout_hidden
            };
            outputs.push(mask(&[1, batch, out], p, rng, device, dtype)?);
        }
        Ok(Self {
            words,
            embedding,
            outputs,
            weight_hh,
        })
    }
}

/// `x` `[T*B, F]` times the locked mask `m` `[1, B, F]` at every step (also its own backward).
pub(crate) fn locked(x: &Tensor, m: Option<&Tensor>, seq_len: usize) -> Result<Tensor> {
    let Some(m) = m else {
        return Ok(x.clone());
    };
    let (rows, f) = x.dims2()?;
    Ok(x.reshape((seq_len, rows / seq_len, f))?
        .broadcast_mul(m)?
        .reshape((rows, f))?)
}

/// The embedding rows of `ids` `[T*B]` with the word-type mask `words` `[V, 1]` applied: `[T*B, E]`,
/// and the per-row factors `[T*B, 1]` that the backward pass multiplies the gradient by.
pub(crate) fn embed(
    emb: &Tensor,
    ids: &Tensor,
    words: Option<&Tensor>,
) -> Result<(Tensor, Option<Tensor>)> {
    let x = emb.index_select(ids, 0)?;
    match words {
        None => Ok((x, None)),
        Some(w) => {
            let f = w.index_select(ids, 0)?; // [T*B, 1]
            Ok((x.broadcast_mul(&f)?, Some(f)))
        }
    }
}

/// AR and TAR: the penalty added to the objective, and its gradients with respect to the decoder
/// input `top` and to the last layer's output before dropout `raw` (both `[T*B, H]`); None where
/// that term is off (TAR needs `seq_len >= 2`).
pub(crate) fn activation_penalty(
    reg: &Regularizers,
    top: &Tensor,
    raw: &Tensor,
    seq_len: usize,
) -> Result<(f64, Option<Tensor>, Option<Tensor>)> {
    let mut penalty = 0f64;
    let mut d_top = None;
    let mut d_raw = None;
    if reg.ar > 0.0 {
        let n = top.elem_count() as f64;
        let alpha = reg.ar as f64;
        penalty += alpha
            * top
                .sqr()?
                .sum_all()?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?
            / n;
        d_top = Some((top * (2.0 * alpha / n))?);
    }
    if reg.tar > 0.0 && seq_len >= 2 {
        let (rows, h) = raw.dims2()?;
        let batch = rows / seq_len;
        let later = raw.narrow(0, batch, rows - batch)?;
        let earlier = raw.narrow(0, 0, rows - batch)?;
        let diff = (later - earlier)?; // [(T-1)*B, H]
        let n = diff.elem_count() as f64;
        let beta = reg.tar as f64;
        penalty += beta
            * diff
                .sqr()?
                .sum_all()?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?
            / n;
        let g = (diff * (2.0 * beta / n))?;
        let zero = Tensor::zeros((batch, h), raw.dtype(), raw.device())?;
        // d/dh_t of sum_t (h_t - h_{t-1})^2: +g_{t-1} for t >= 1, -g_t for t <= T-2
        d_raw = Some((Tensor::cat(&[&zero, &g], 0)? - Tensor::cat(&[&g, &zero], 0)?)?);
    }
    Ok((penalty, d_top, d_raw))
}

/// `a + b` where either may be absent.
pub(crate) fn add(a: Tensor, b: Option<Tensor>) -> Result<Tensor> {
    Ok(match b {
        Some(b) => (a + b)?,
        None => a,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// A locked mask is one per sequence: row `t * B + b` gets sequence b's mask at every step t.
    #[test]
    fn locked_mask_is_the_same_at_every_step() {
        let dev = Device::Cpu;
        let (t, b, f) = (5, 3, 16);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let m = mask(&[1, b, f], 0.5, &mut rng, &dev, DType::F32)
            .unwrap()
            .unwrap();
        let ones = Tensor::ones((t * b, f), DType::F32, &dev).unwrap();
        let out = locked(&ones, Some(&m), t)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let m = m.reshape((b, f)).unwrap().to_vec2::<f32>().unwrap();
        for step in 0..t {
            for s in 0..b {
                assert_eq!(out[step * b + s], m[s], "step {step}, sequence {s}");
            }
        }
        let zeros = m.iter().flatten().filter(|&&x| x == 0.0).count();
        assert!(zeros > 0 && zeros < b * f, "{zeros} of {} dropped", b * f);
        assert!(m.iter().flatten().all(|&x| x == 0.0 || x == 2.0));
    }
}

//! Generation controls: changes to a row's next-token logits from the tokens already in its
//! context, applied before banned ids, temperature, top-k, top-p and the draw.
//!
//! - Repetition penalty (CTRL, Keskar et al. 2019, "CTRL: A Conditional Transformer Language
//!   Model for Controllable Generation", section 4.1): the logit of every token present in the
//!   context window is divided by the penalty when it is positive and multiplied by it when it is
//!   negative (a penalty > 1 makes repeats less likely; 1 is off).
//! - Frequency penalty (as OpenAI's completions API defines it): `penalty * count` is subtracted
//!   from the logit of every token, `count` being its occurrences in the context window.
//! - No repeated n-gram (as Hugging Face's `no_repeat_ngram_size`): a token that would complete an
//!   n-gram already present in the context window is banned.
//! - Minimum length: the `end_ids` (the boundary token) are banned until `min_tokens` tokens have
//!   been generated.
//!
//! One rule computes a row's [`Edits`]; the host applies them to a row of floats and a device
//! applies them as dense candle tensors (`scale` where the logit is positive or not, then `add`),
//! with the same f32 multiplications, so both give the same logits.

use crate::error::{ensure, Result};
use candle_core::{DType, Tensor};
use std::collections::HashMap;

/// Most tokens of context a penalty may look at.
pub const MAX_WINDOW: usize = 1 << 16;

/// Options of the generation controls; the default changes nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Controls {
    /// CTRL repetition penalty, >= 1 in practice (any finite value > 0 is accepted); 1 = off.
    pub repetition_penalty: f64,
    /// Subtracted from a logit once per occurrence of its token in the window; 0 = off.
    pub frequency_penalty: f64,
    /// Ban tokens that would repeat an n-gram of this length from the window; 0 = off.
    pub no_repeat_ngram: usize,
    /// Tokens of context (the prompt's end, then everything generated) the three rules above look at.
    pub window: usize,
    /// Tokens to generate before any of `end_ids` may be sampled.
    pub min_tokens: usize,
    /// Token ids banned while fewer than `min_tokens` tokens have been generated.
    pub end_ids: Vec<u32>,
}

impl Default for Controls {
    fn default() -> Self {
        Self {
            repetition_penalty: 1.0,
            frequency_penalty: 0.0,
            no_repeat_ngram: 0,
            window: 256,
            min_tokens: 0,
            end_ids: Vec::new(),
        }
    }
}

/// What the controls do to one row: multiply the logit of `scale`'s ids by the first factor when
/// it is > 0, else by the second; then add `add`'s values (-inf bans).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Edits {
    pub scale: Vec<(u32, f32, f32)>,
    pub add: Vec<(u32, f32)>,
}

impl Controls {
    /// Whether any rule that reads the context is on.
    pub fn reads_context(&self) -> bool {
        self.repetition_penalty != 1.0 || self.frequency_penalty != 0.0 || self.no_repeat_ngram > 0
    }

    /// Whether any rule is on.
    pub fn active(&self) -> bool {
        self.reads_context() || (self.min_tokens > 0 && !self.end_ids.is_empty())
    }

    /// Checks every field against `vocab`; the error names the field.
    pub fn validate(&self, vocab: usize) -> Result<()> {
        ensure(
            self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0,
            || {
                format!(
                    "repetitionPenalty must be a finite number > 0, got {}",
                    self.repetition_penalty
                )
            },
        )?;
        ensure(self.frequency_penalty.is_finite(), || {
            format!(
                "frequencyPenalty must be a finite number, got {}",
                self.frequency_penalty
            )
        })?;
        ensure(self.window >= 1 && self.window <= MAX_WINDOW, || {
            format!(
                "penaltyWindow must be in [1, {MAX_WINDOW}], got {}",
                self.window
            )
        })?;
        ensure(self.no_repeat_ngram <= self.window, || {
            format!(
                "noRepeatNgram must be <= penaltyWindow ({}), got {}",
                self.window, self.no_repeat_ngram
            )
        })?;
        if let Some(&bad) = self.end_ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(crate::Error::Data(format!(
                "endIds holds {bad}, which is not a token id (vocabSize = {vocab})"
            )));
        }
        Ok(())
    }

    /// The edits for a row whose context ends with `context` (only its last `window` tokens are
    /// read) after `generated` generated tokens.
    pub(crate) fn edits(&self, context: &[u32], generated: usize) -> Edits {
        let mut e = Edits::default();
        let ctx = &context[context.len().saturating_sub(self.window)..];
        if self.repetition_penalty != 1.0 || self.frequency_penalty != 0.0 {
            let mut counts: HashMap<u32, u32> = HashMap::new();
            for &t in ctx {
                *counts.entry(t).or_default() += 1;
            }
            let mut ids: Vec<(u32, u32)> = counts.into_iter().collect();
            ids.sort_unstable();
            let p = self.repetition_penalty as f32;
            for (id, n) in ids {
                if self.repetition_penalty != 1.0 {
                    e.scale.push((id, 1.0 / p, p));
                }
                if self.frequency_penalty != 0.0 {
                    e.add
                        .push((id, -(self.frequency_penalty as f32) * n as f32));
                }
            }
        }
        let n = self.no_repeat_ngram;
        if n == 1 {
            e.add.extend(ctx.iter().map(|&t| (t, f32::NEG_INFINITY)));
        } else if n > 1 && ctx.len() >= n {
            let tail = &ctx[ctx.len() - (n - 1)..];
            for start in 0..=ctx.len() - n {
                if &ctx[start..start + n - 1] == tail {
                    e.add.push((ctx[start + n - 1], f32::NEG_INFINITY));
                }
            }
        }
        if generated < self.min_tokens {
            e.add
                .extend(self.end_ids.iter().map(|&t| (t, f32::NEG_INFINITY)));
        }
        e
    }
}

impl Edits {
    /// Applies the edits to one row of logits `[V]`.
    pub(crate) fn apply(&self, row: &mut [f32]) {
        for &(id, pos, neg) in &self.scale {
            let l = &mut row[id as usize];
            *l *= if *l > 0.0 { pos } else { neg };
        }
        for &(id, v) in &self.add {
            row[id as usize] += v;
        }
    }
}

/// Applies each row's edits to `logits` `[n, V]` on their device with candle ops: dense factor
/// tensors for positive and other logits, then an additive one (each `[n, V]`, made on the host).
/// Returns `logits` itself when no row has an edit.
pub(crate) fn apply_to_tensor(logits: &Tensor, edits: &[Edits]) -> Result<Tensor> {
    if edits.iter().all(|e| e.scale.is_empty() && e.add.is_empty()) {
        return Ok(logits.clone());
    }
    let (n, vocab) = logits.dims2()?;
    let dev = logits.device();
    let mut out = logits.to_dtype(DType::F32)?;
    if edits.iter().any(|e| !e.scale.is_empty()) {
        let (mut pos, mut neg) = (vec![1f32; n * vocab], vec![1f32; n * vocab]);
        for (r, e) in edits.iter().enumerate() {
            for &(id, p, q) in &e.scale {
                pos[r * vocab + id as usize] = p;
                neg[r * vocab + id as usize] = q;
            }
        }
        let pos = Tensor::from_vec(pos, (n, vocab), dev)?;
        let neg = Tensor::from_vec(neg, (n, vocab), dev)?;
        let factor = out.gt(0f64)?.where_cond(&pos, &neg)?;
        out = (out * factor)?;
    }
    if edits.iter().any(|e| !e.add.is_empty()) {
        let mut add = vec![0f32; n * vocab];
        for (r, e) in edits.iter().enumerate() {
            for &(id, v) in &e.add {
                add[r * vocab + id as usize] += v;
            }
        }
        out = (out + Tensor::from_vec(add, (n, vocab), dev)?)?;
    }
    Ok(out.to_dtype(logits.dtype())?)
}

/// The last tokens of a row's context, at most `cap` kept (trimmed in amortized O(1)).
#[derive(Debug, Clone, Default)]
pub(crate) struct Context {
    tokens: Vec<u32>,
    cap: usize,
}

impl Context {
    /// An empty context keeping the last `cap` tokens.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            tokens: Vec::new(),
            cap,
        }
    }

    /// Appends tokens, dropping the oldest beyond the cap.
    pub(crate) fn extend(&mut self, ids: &[u32]) {
        let ids = &ids[ids.len().saturating_sub(self.cap)..];
        self.tokens.extend_from_slice(ids);
        if self.tokens.len() > 2 * self.cap.max(1) {
            let cut = self.tokens.len() - self.cap;
            self.tokens.drain(..cut);
        }
    }

    /// How many tokens are kept.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// The kept tokens, oldest first (possibly more than `cap`; rules read the last `cap`).
    pub(crate) fn tokens(&self) -> &[u32] {
        &self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn controls() -> Controls {
        Controls::default()
    }

    #[test]
    fn repetition_penalty_divides_positive_and_multiplies_negative_logits() {
        let c = Controls {
            repetition_penalty: 2.0,
            ..controls()
        };
        let mut row = [4.0f32, -1.0, 3.0, 1.0];
        c.edits(&[0, 1, 0], 0).apply(&mut row);
        assert_eq!(row, [2.0, -2.0, 3.0, 1.0]);
    }

    #[test]
    fn frequency_penalty_counts_occurrences_in_the_window() {
        let c = Controls {
            frequency_penalty: 0.5,
            window: 3,
            ..controls()
        };
        let mut row = [0.0f32; 4];
        // the window holds [2, 2, 3]: the first 2 is outside it
        c.edits(&[2, 2, 2, 3], 0).apply(&mut row);
        assert_eq!(row, [0.0, 0.0, -1.0, -0.5]);
    }

    #[test]
    fn no_repeat_ngram_bans_the_token_that_completes_a_seen_ngram() {
        let c = Controls {
            no_repeat_ngram: 3,
            ..controls()
        };
        let mut row = [0.0f32; 6];
        // seen: (1 2 3), (2 3 1), (3 1 2); the context ends with (1 2): 3 would repeat (1 2 3)
        c.edits(&[1, 2, 3, 1, 2], 0).apply(&mut row);
        assert_eq!(row, [0.0, 0.0, 0.0, f32::NEG_INFINITY, 0.0, 0.0]);
        let c1 = Controls {
            no_repeat_ngram: 1,
            ..controls()
        };
        let mut row = [0.0f32; 4];
        c1.edits(&[1, 3], 0).apply(&mut row);
        assert_eq!(row, [0.0, f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY]);
    }

    #[test]
    fn min_tokens_bans_the_end_ids_until_reached() {
        let c = Controls {
            min_tokens: 2,
            end_ids: vec![1],
            ..controls()
        };
        let mut row = [0.0f32; 3];
        c.edits(&[], 1).apply(&mut row);
        assert_eq!(row, [0.0, f32::NEG_INFINITY, 0.0]);
        let mut row = [0.0f32; 3];
        c.edits(&[], 2).apply(&mut row);
        assert_eq!(row, [0.0; 3]);
    }

    /// The device path (dense candle ops, run here on the CPU) gives exactly the host's logits.
    #[test]
    fn tensor_path_equals_host_path() {
        let c = Controls {
            repetition_penalty: 1.3,
            frequency_penalty: 0.2,
            no_repeat_ngram: 2,
            min_tokens: 5,
            end_ids: vec![7],
            ..controls()
        };
        let vocab = 9;
        let rows: Vec<Vec<f32>> = (0..3)
            .map(|r| {
                (0..vocab)
                    .map(|i| ((i * 7 + r * 3) % 11) as f32 - 5.5)
                    .collect()
            })
            .collect();
        let contexts: [&[u32]; 3] = [&[1, 2, 1, 2], &[], &[8, 8, 0, 3, 8]];
        let edits: Vec<Edits> = contexts.iter().map(|ctx| c.edits(ctx, 3)).collect();
        let t = Tensor::from_vec(rows.concat(), (3, vocab), &Device::Cpu).unwrap();
        let got = apply_to_tensor(&t, &edits)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let mut want = rows.concat();
        for (r, e) in edits.iter().enumerate() {
            e.apply(&mut want[r * vocab..(r + 1) * vocab]);
        }
        assert_eq!(got, want);
    }

    #[test]
    fn context_keeps_the_last_cap_tokens() {
        let mut ctx = Context::new(3);
        for i in 0..20u32 {
            ctx.extend(&[i]);
        }
        let t = ctx.tokens();
        assert_eq!(&t[t.len() - 3..], &[17, 18, 19]);
        assert!(t.len() <= 6);
        ctx.extend(&[1, 2, 3, 4, 5]);
        let t = ctx.tokens();
        assert_eq!(&t[t.len() - 3..], &[3, 4, 5]);
    }
}

//! Batched sampling: `num_samples` continuations of one prompt, advanced together one token per
//! forward call. The prompt is fed in one pass. Temperature, top-k and nucleus (top-p, Holtzman
//! et al. 2020) filtering; seeded ChaCha8 RNG, so the same seed gives the same text.

use crate::config::SampleConfig;
use crate::error::{ensure, Result};
use crate::model::{Model, State};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// An in-progress batched sampling run: the carried state of `num_samples` sequences, the
/// next-token logits, the RNG and what was generated so far. Lets callers stream tokens as they
/// are produced and prime the prompt piece by piece.
pub struct Sampler {
    cfg: SampleConfig,
    /// State after the prompt (and everything fed or generated since), `[num_samples, H]` per layer.
    state: State,
    /// Next-token logits `[num_samples * V]`.
    logits: Vec<f32>,
    rng: ChaCha8Rng,
    generated: Vec<Vec<u32>>,
    done: Vec<bool>,
    /// Tokens sampled at the last step but not yet fed through the model.
    pending: Option<Vec<u32>>,
}

impl Sampler {
    /// Feeds `prompt` (at least one token) in one pass and prepares `num_samples` sequences.
    pub fn new(model: &Model, prompt: &[u32], cfg: &SampleConfig) -> Result<Self> {
        cfg.validate()?;
        ensure(!prompt.is_empty(), || {
            "the prompt must contain at least one token".into()
        })?;
        let c = model.config();
        let per_sample = (3 * c.vocab_size + 10 * c.num_layers * c.hidden_size) as u64 * 4;
        crate::memory::ensure_fits(
            per_sample.saturating_mul(cfg.num_samples as u64),
            "sampling this many sequences at once",
        )?;
        let vocab = model.config().vocab_size;
        let n = cfg.num_samples;
        let (prompt_logits, state) = model.logits(prompt, 1, prompt.len(), None)?;
        let last = &prompt_logits[(prompt.len() - 1) * vocab..];
        let state = State {
            h: state
                .h
                .iter()
                .map(|h| h.repeat((n, 1)))
                .collect::<candle_core::Result<_>>()?,
            c: state
                .c
                .iter()
                .map(|c| c.repeat((n, 1)))
                .collect::<candle_core::Result<_>>()?,
        };
        Ok(Self {
            cfg: cfg.clone(),
            state,
            logits: last.repeat(n),
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            generated: vec![Vec::new(); n],
            done: vec![cfg.max_tokens == 0; n],
            pending: None,
        })
    }

    /// Feeds more prompt tokens (the same for every sequence) before or between sampling.
    /// `new(a ++ b)` and `new(a)` then `feed(b)` reach the same state up to float rounding.
    pub fn feed(&mut self, model: &Model, tokens: &[u32]) -> Result<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        self.flush(model)?;
        let n = self.cfg.num_samples;
        let batch: Vec<u32> = (0..n).flat_map(|_| tokens.iter().copied()).collect();
        let (logits, state) = model.logits(&batch, n, tokens.len(), Some(&self.state))?;
        let vocab = model.config().vocab_size;
        let t = tokens.len();
        self.logits = (0..n)
            .flat_map(|s| {
                logits[(s * t + t - 1) * vocab..(s * t + t) * vocab]
                    .iter()
                    .copied()
            })
            .collect();
        self.state = state;
        Ok(())
    }

    /// Runs the last sampled tokens through the model so `logits` predict the next position.
    fn flush(&mut self, model: &Model) -> Result<()> {
        if let Some(next) = self.pending.take() {
            let (l, st) = model.logits(&next, self.cfg.num_samples, 1, Some(&self.state))?;
            self.logits = l;
            self.state = st;
        }
        Ok(())
    }

    /// Whether every sequence has ended (stop sequence or `max_tokens`).
    pub fn finished(&self) -> bool {
        self.done.iter().all(|&d| d)
    }

    /// Samples up to `k` more tokens per sequence; returns the new ids of each sequence (empty
    /// for sequences that had already ended).
    pub fn next(&mut self, model: &Model, k: usize) -> Result<Vec<Vec<u32>>> {
        let n = self.cfg.num_samples;
        let vocab = model.config().vocab_size;
        let mut fresh = vec![Vec::new(); n];
        for _ in 0..k {
            if self.finished() {
                break;
            }
            self.flush(model)?;
            let mut next = vec![0u32; n];
            for s in 0..n {
                if self.done[s] {
                    continue;
                }
                let tok = sample_row(
                    &self.logits[s * vocab..(s + 1) * vocab],
                    &self.cfg,
                    &mut self.rng,
                );
                self.generated[s].push(tok);
                fresh[s].push(tok);
                next[s] = tok;
                let out = &self.generated[s];
                self.done[s] = out.len() >= self.cfg.max_tokens
                    || self
                        .cfg
                        .stop_sequences
                        .iter()
                        .any(|stop| out.ends_with(stop));
            }
            self.pending = Some(next);
        }
        Ok(fresh)
    }
}

/// Samples continuations of `prompt` (at least one token). Returns only the generated ids, one
/// vector per sample; a sample ends after `max_tokens` or right after a stop sequence.
pub fn generate(model: &Model, prompt: &[u32], cfg: &SampleConfig) -> Result<Vec<Vec<u32>>> {
    let mut sampler = Sampler::new(model, prompt, cfg)?;
    sampler.next(model, cfg.max_tokens)?;
    Ok(sampler.generated)
}

/// Draws one token id from a row of logits `[V]` under the temperature / top-k / top-p rules.
pub fn sample_row(logits: &[f32], cfg: &SampleConfig, rng: &mut ChaCha8Rng) -> u32 {
    let argmax = || {
        let mut best = 0;
        for (i, &l) in logits.iter().enumerate() {
            if l > logits[best] {
                best = i;
            }
        }
        best as u32
    };
    if cfg.temperature == 0.0 {
        return argmax();
    }
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    let filtered = cfg.top_k > 0 || cfg.top_p < 1.0;
    if filtered {
        idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        if cfg.top_k > 0 {
            idx.truncate(cfg.top_k.min(idx.len()));
        }
    }
    let max = idx
        .iter()
        .map(|&i| logits[i])
        .fold(f32::NEG_INFINITY, f32::max) as f64;
    let mut probs: Vec<f64> = idx
        .iter()
        .map(|&i| ((logits[i] as f64 - max) / cfg.temperature).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    if !total.is_finite() || total <= 0.0 {
        return argmax();
    }
    if cfg.top_p < 1.0 {
        // Keep the smallest prefix of the sorted tokens whose probability mass reaches top_p.
        let mut acc = 0.0;
        let mut keep = probs.len();
        for (k, p) in probs.iter().enumerate() {
            acc += p / total;
            if acc >= cfg.top_p {
                keep = k + 1;
                break;
            }
        }
        probs.truncate(keep);
        idx.truncate(keep);
    }
    let total: f64 = probs.iter().sum();
    let mut r = rng.random::<f64>() * total;
    for (k, p) in probs.iter().enumerate() {
        r -= p;
        if r < 0.0 {
            return idx[k] as u32;
        }
    }
    idx[probs.len() - 1] as u32
}

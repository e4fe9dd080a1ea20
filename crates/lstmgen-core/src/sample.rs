//! Batched sampling: `num_samples` continuations of one prompt, advanced together one token per
//! forward call. The prompt is fed in one pass. Temperature, top-k and nucleus (top-p, Holtzman
//! et al. 2020) filtering; seeded ChaCha8 RNG, so the same seed gives the same text.

use crate::config::SampleConfig;
use crate::error::{ensure, Result};
use crate::model::{Model, State};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Samples continuations of `prompt` (at least one token). Returns only the generated ids, one
/// vector per sample; a sample ends after `max_tokens` or right after a stop sequence.
pub fn generate(model: &Model, prompt: &[u32], cfg: &SampleConfig) -> Result<Vec<Vec<u32>>> {
    cfg.validate()?;
    ensure(!prompt.is_empty(), || "the prompt must contain at least one token".into())?;
    let vocab = model.config().vocab_size;
    let n = cfg.num_samples;
    let (prompt_logits, state) = model.logits(prompt, 1, prompt.len(), None)?;
    let last = &prompt_logits[(prompt.len() - 1) * vocab..];
    let mut logits: Vec<f32> = last.repeat(n);
    let mut state = State {
        h: state.h.iter().map(|h| h.repeat((n, 1))).collect::<candle_core::Result<_>>()?,
        c: state.c.iter().map(|c| c.repeat((n, 1))).collect::<candle_core::Result<_>>()?,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut out: Vec<Vec<u32>> = vec![Vec::with_capacity(cfg.max_tokens); n];
    let mut done = vec![false; n];
    let mut next = vec![0u32; n];
    for _ in 0..cfg.max_tokens {
        for s in 0..n {
            if done[s] {
                continue;
            }
            let tok = sample_row(&logits[s * vocab..(s + 1) * vocab], cfg, &mut rng);
            out[s].push(tok);
            next[s] = tok;
            done[s] = cfg.stop_sequences.iter().any(|stop| out[s].ends_with(stop));
        }
        if done.iter().all(|&d| d) || out.iter().all(|o| o.len() >= cfg.max_tokens) {
            break;
        }
        let (l, st) = model.logits(&next, n, 1, Some(&state))?;
        logits = l;
        state = st;
    }
    Ok(out)
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
    let max = idx.iter().map(|&i| logits[i]).fold(f32::NEG_INFINITY, f32::max) as f64;
    let mut probs: Vec<f64> = idx.iter().map(|&i| ((logits[i] as f64 - max) / cfg.temperature).exp()).collect();
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

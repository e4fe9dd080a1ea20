//! Up-front memory checks. Rust aborts the process when an allocation fails, which would take
//! Node down with it, so sizes that cannot fit are refused before anything is allocated.

use crate::config::ModelConfig;
use crate::error::{Error, Result};

/// Bytes the system can still give us (`MemAvailable` of /proc/meminfo), or `None` if unknown.
pub(crate) fn available_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Number of parameters of a model of shape `cfg`.
pub(crate) fn param_count(cfg: &ModelConfig) -> u64 {
    let (v, e, h, l) = (
        cfg.vocab_size as u64,
        cfg.embedding_dim as u64,
        cfg.hidden_size as u64,
        cfg.num_layers as u64,
    );
    let first = 4 * h * (e + h) + 8 * h;
    let rest = (l - 1) * (4 * h * 2 * h + 8 * h);
    v * e + first + rest + v * h + v
}

/// Bytes (f32) of the parameters, their gradients and Adam's two moments.
pub(crate) fn model_bytes(cfg: &ModelConfig) -> u64 {
    param_count(cfg).saturating_mul(4 * 4)
}

/// Bytes (f32) one training step keeps alive for `batch * seq_len` positions: per layer the
/// gates, cell, tanh(cell), outputs and their gradients; the logits, softmax and its gradient.
pub(crate) fn step_bytes(cfg: &ModelConfig, batch: usize, seq_len: usize) -> u64 {
    let n = (batch as u64).saturating_mul(seq_len as u64);
    let (v, e, h, l) = (
        cfg.vocab_size as u64,
        cfg.embedding_dim as u64,
        cfg.hidden_size as u64,
        cfg.num_layers as u64,
    );
    let per_row = l * (4 * h * 3 + h * 5) + 2 * e + 3 * v;
    n.saturating_mul(per_row).saturating_mul(4)
}

/// `Err(Error::Data)` naming `what` when `bytes` exceed the memory available now.
pub(crate) fn ensure_fits(bytes: u64, what: &str) -> Result<()> {
    match available_bytes() {
        Some(avail) if bytes > avail => Err(Error::Data(format!(
            "{what} needs about {:.1} GiB but only {:.1} GiB of memory is available; reduce hiddenSize, numLayers, vocabSize, batchSize or seqLen",
            bytes as f64 / (1u64 << 30) as f64,
            avail as f64 / (1u64 << 30) as f64
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_count_matches_the_tensors() {
        let cfg = ModelConfig {
            vocab_size: 11,
            embedding_dim: 5,
            hidden_size: 7,
            num_layers: 3,
            dropout: 0.0,
        };
        let n: usize = crate::params::param_specs(&cfg)
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        assert_eq!(param_count(&cfg), n as u64);
    }

    #[test]
    fn an_impossible_model_is_refused() {
        let cfg = ModelConfig {
            vocab_size: 1 << 20,
            embedding_dim: 1 << 20,
            hidden_size: 1 << 20,
            num_layers: 1,
            dropout: 0.0,
        };
        let e = ensure_fits(model_bytes(&cfg), "this model").unwrap_err();
        assert!(e.to_string().contains("GiB"), "{e}");
    }
}

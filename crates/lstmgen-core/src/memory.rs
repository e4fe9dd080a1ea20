//! Up-front memory checks. Rust aborts the process when an allocation fails, which would take
//! Node down with it, so sizes that cannot fit are refused before anything is allocated, against
//! the tightest of the limits that apply to this process: the system's available memory, the
//! cgroup's memory limit (a container's) and the address-space limit (`ulimit -v`).

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::params::param_specs;

/// Bytes this process can still allocate: the least of [`meminfo_available`],
/// [`cgroup_available`] and [`address_space_available`]; `None` if none of them is known.
pub(crate) fn available_bytes() -> Option<u64> {
    [
        meminfo_available(),
        cgroup_available(),
        address_space_available(),
    ]
    .into_iter()
    .flatten()
    .min()
}

/// `MemAvailable` of /proc/meminfo.
fn meminfo_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    kib_field(&info, "MemAvailable:")
}

/// The value in KiB of the `/proc` line starting with `key`, in bytes.
fn kib_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// A number read from a cgroup file; `None` when missing or unlimited (`max`, or v1's near-2^63).
fn cgroup_number(path: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: u64 = text.trim().parse().ok()?;
    (v < 1 << 62).then_some(v)
}

/// Memory left under the cgroup limits of this process: for its cgroup and every ancestor, the
/// limit minus the usage (v2: `memory.max` - `memory.current`; v1: `memory.limit_in_bytes` -
/// `memory.usage_in_bytes`), the least of them.
fn cgroup_available() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut best: Option<u64> = None;
    let mut consider = |dir: &std::path::Path, limit: &str, usage: &str| {
        if let Some(max) = cgroup_number(&dir.join(limit)) {
            let used = cgroup_number(&dir.join(usage)).unwrap_or(0);
            let left = max.saturating_sub(used);
            best = Some(best.map_or(left, |b| b.min(left)));
        }
    };
    for line in own.lines() {
        // "<id>:<controllers>:<path>": v2 is "0::<path>", v1 memory is "<id>:memory:<path>".
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (roots, limit, usage): (&[&str], _, _) = if id == "0" && ctrl.is_empty() {
            (
                &["/sys/fs/cgroup", "/sys/fs/cgroup/unified"],
                "memory.max",
                "memory.current",
            )
        } else if ctrl.split(',').any(|c| c == "memory") {
            (
                &["/sys/fs/cgroup/memory"],
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            )
        } else {
            continue;
        };
        for root in roots {
            let mut dir = std::path::PathBuf::from(root);
            consider(&dir, limit, usage);
            for part in path.split('/').filter(|p| !p.is_empty()) {
                dir.push(part);
                consider(&dir, limit, usage);
            }
        }
    }
    best
}

/// Address space left under `RLIMIT_AS` (`ulimit -v`): the soft limit minus this process's
/// current virtual size (`VmSize` of /proc/self/status); `None` when unlimited.
fn address_space_available() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } != 0
        || lim.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let used = kib_field(&status, "VmSize:")?;
    Some(lim.rlim_cur.saturating_sub(used))
}

/// Number of parameters of a model of shape `cfg` (every tensor of [`param_specs`]).
pub(crate) fn param_count(cfg: &ModelConfig) -> u64 {
    param_specs(cfg)
        .iter()
        .map(|(_, shape)| shape.iter().fold(1u64, |n, &d| n.saturating_mul(d as u64)))
        .fold(0u64, u64::saturating_add)
}

/// f32 copies of the parameters that training holds at the peak of a step, Adam's update: the
/// parameters, their gradients, Adam's two moments, and the new parameters and moments the update
/// writes before the old ones are dropped (`ops::adam::update_cpu`). Measured: the peak RSS of
/// `train` with embeddingDim 60,000 and hiddenSize 256 (6.7e7 parameters) less its activations is
/// 1.9 GB, 28.6 bytes per parameter (7.2 copies); at embeddingDim 20,000, 7.9 copies with Node's own
/// memory included.
pub(crate) const TRAIN_COPIES: u64 = 7;

/// Bytes (f32) a model of shape `cfg` needs to train, besides the activations of a step
/// ([`step_bytes`]): [`TRAIN_COPIES`] copies of its parameters.
pub(crate) fn model_bytes(cfg: &ModelConfig) -> u64 {
    param_count(cfg).saturating_mul(4 * TRAIN_COPIES)
}

/// Bytes (f32) one training step needs beyond what the model holds when it is created (its
/// parameters, written once): the other [`TRAIN_COPIES`] - 1 copies of them and the activations of
/// `batch * seq_len` positions ([`step_bytes`]). A model that fits [`model_bytes`] may still not fit
/// this at a large `batch * seq_len * embeddingDim`.
pub(crate) fn first_step_bytes(cfg: &ModelConfig, batch: usize, seq_len: usize) -> u64 {
    param_count(cfg)
        .saturating_mul(4 * (TRAIN_COPIES - 1))
        .saturating_add(step_bytes(cfg, batch, seq_len))
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

/// Bytes (f32) an inference forward pass over `rows` positions keeps alive at its peak: the
/// embedded input, per layer the input projection `[rows, 4H]` and outputs `[rows, H]` (two
/// layers' worth at a time), and `copies` copies of the logits `[rows, V]`.
pub(crate) fn infer_bytes(cfg: &ModelConfig, rows: usize, copies: u64) -> u64 {
    let (v, e, h) = (
        cfg.vocab_size as u64,
        cfg.embedding_dim as u64,
        cfg.hidden_size as u64,
    );
    (rows as u64)
        .saturating_mul(e + 2 * (4 * h + h) + copies * v)
        .saturating_mul(4)
}

/// `Err(Error::Data)` when `bytes` exceed what this process can still allocate
/// ([`available_bytes`]): the message names `what` needs them and says what to `reduce`.
pub(crate) fn ensure_fits(bytes: u64, what: &str, reduce: &str) -> Result<()> {
    match available_bytes() {
        Some(avail) if bytes > avail => Err(Error::Data(format!(
            "{what} needs about {:.2} GiB but only {:.2} GiB of memory is available to this process (the least of the free memory, the cgroup limit and ulimit -v); reduce {reduce}",
            bytes as f64 / (1u64 << 30) as f64,
            avail as f64 / (1u64 << 30) as f64,
        ))),
        _ => Ok(()),
    }
}

/// The last `(batch, seqLen)` whose memory was checked against the system, so that a loop over batches of
/// one shape (training steps, evaluation batches) reads the system's limits once, not at every batch.
#[derive(Default)]
pub(crate) struct CheckedShape(Option<(usize, usize)>);

impl CheckedShape {
    /// [`ensure_fits`] of `bytes()` unless `shape` is the shape checked last; remembers `shape` when it fits.
    pub(crate) fn ensure(
        &mut self,
        shape: (usize, usize),
        bytes: impl FnOnce() -> u64,
        what: &str,
        reduce: &str,
    ) -> Result<()> {
        if self.0 != Some(shape) {
            ensure_fits(bytes(), what, reduce)?;
            self.0 = Some(shape);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counted by hand: V=11, E=5, H=7, 3 layers; then with a projection P=3.
    #[test]
    fn param_count_matches_the_tensors() {
        let mut cfg = ModelConfig {
            vocab_size: 11,
            embedding_dim: 5,
            hidden_size: 7,
            num_layers: 3,
            dropout: 0.0,
            proj_size: 0,
        };
        // 11*5 + (28*5 + 28*7 + 56) + 2 * (28*7 + 28*7 + 56) + 11*7 + 11
        assert_eq!(param_count(&cfg), 55 + 392 + 896 + 88);
        cfg.proj_size = 3;
        // weight_hh [28, 3], weight_hr [3, 7], weight_ih above the first [28, 3], decoder [11, 3]
        // 55 + (140 + 84 + 56 + 21) + 2 * (84 + 84 + 56 + 21) + 33 + 11
        assert_eq!(param_count(&cfg), 55 + 301 + 490 + 44);
    }

    #[test]
    fn an_impossible_model_is_refused() {
        let cfg = ModelConfig {
            vocab_size: 1 << 20,
            embedding_dim: 1 << 20,
            hidden_size: 1 << 20,
            num_layers: 1,
            dropout: 0.0,
            proj_size: 0,
        };
        let e = ensure_fits(model_bytes(&cfg), "this model", "hiddenSize").unwrap_err();
        assert!(e.to_string().contains("GiB"), "{e}");
        assert!(e.to_string().ends_with("reduce hiddenSize"), "{e}");
    }

    /// Whatever limits apply here, the least of them is reported, and every source parses. The
    /// sources move while other processes run, so the comparison is taken where the readings before
    /// and after `available_bytes()` agree (a few tries).
    #[test]
    fn the_tightest_limit_counts() {
        let read = || {
            [
                meminfo_available(),
                cgroup_available(),
                address_space_available(),
            ]
        };
        assert!(meminfo_available().is_some_and(|b| b > 0));
        for _ in 0..20 {
            let before = read();
            let got = available_bytes();
            if read() == before {
                assert_eq!(got, before.into_iter().flatten().min());
                return;
            }
        }
        panic!("the memory readings never held still across one available_bytes() call");
    }

    /// Under an address-space limit (`ulimit -v`), what is left of it bounds the estimate. The limit is
    /// process-wide, so the check runs alone in a child process of this test binary: in this one, other
    /// tests' threads change the process's size while it measures, and their allocations would meet the
    /// lowered limit.
    #[test]
    fn the_address_space_limit_counts() {
        let exe = std::env::current_exe().unwrap();
        let child = std::process::Command::new(exe)
            .args([
                "--exact",
                "memory::tests::address_space_limit_in_this_process",
                "--ignored",
                "--test-threads=1",
            ])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&child.stdout);
        assert!(
            child.status.success(),
            "{out}{}",
            String::from_utf8_lossy(&child.stderr)
        );
        assert!(out.contains("1 passed"), "{out}");
    }

    /// The body of [`the_address_space_limit_counts`], in a process of its own.
    #[test]
    #[ignore = "run alone in a child process by the_address_space_limit_counts"]
    fn address_space_limit_in_this_process() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let used = kib_field(&status, "VmSize:").unwrap();
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit on valid rlimit structs; the test restores the soft limit.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_AS, &mut old), 0);
            let tight = libc::rlimit {
                rlim_cur: (used + (1 << 30)).min(old.rlim_max),
                rlim_max: old.rlim_max,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &tight), 0);
            let left = address_space_available();
            let refused = ensure_fits(8 << 30, "a test", "nothing");
            assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &old), 0);
            let left = left.unwrap();
            assert!(left <= 1 << 30 && left > (1 << 30) - (256 << 20), "{left}");
            assert!(refused.is_err());
        }
    }
}

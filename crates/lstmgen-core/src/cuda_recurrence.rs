//! Which recurrence an LSTM layer runs on CUDA, and the tiling of the persistent one.
//!
//! The standard recurrence (the default) launches one cuBLAS product `h W_hh^T` and one cell
//! kernel per timestep and layer. The persistent recurrence (`LSTMGEN_CUDA_RECURRENCE=persistent`,
//! kernels in `cuda/recurrence.cu`) runs a layer's whole sequence in one cooperative launch with
//! `W_hh` resident in shared memory, forward and backward: block k owns `units` hidden units of every
//! batch row, holds the `4 * units` rows of `W_hh` (forward) or its `units` columns (backward), and
//! a grid-wide barrier separates the timesteps. The input projection `x W_ih^T + b` of all timesteps
//! stays one product before the launch, the weight gradients products after it.
//!
//! [`plan`] picks the tiling from the layer's shape and the device's limits, or says why the shape
//! does not fit (then the layer runs the standard recurrence and a note goes to stderr once per
//! shape): the hidden size must be a multiple of 4 and of `units` (2, 4, 8 or 16), one block per SM
//! at most (`hidden / units <= SMs`; every block must be resident for the barrier), and the block's
//! shared memory within the device's per-block opt-in limit (227 KB on an H200). On an H200 (132 SMs)
//! hidden 512 and 1024 fit at batch 64, hidden 2048 does not (its resident weight slice alone is
//! 513 KB per block).

use crate::error::{Error, Result};
use candle_core::Tensor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The recurrence the CUDA path runs (`LSTMGEN_CUDA_RECURRENCE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One product and one cell kernel per timestep (unset, empty or `standard`).
    Standard,
    /// One cooperative launch per layer and sequence, `W_hh` resident on chip (`persistent`).
    Persistent,
}

impl Mode {
    /// Parses a value of `LSTMGEN_CUDA_RECURRENCE`; `None` (unset) and `""` are [`Mode::Standard`].
    /// Any other value is an `Error::Data` naming the variable and the values it takes.
    pub fn parse(value: Option<&str>) -> Result<Mode> {
        match value {
            None | Some("") | Some("standard") => Ok(Mode::Standard),
            Some("persistent") => Ok(Mode::Persistent),
            Some(other) => Err(Error::Data(format!(
                "LSTMGEN_CUDA_RECURRENCE must be \"standard\" or \"persistent\", not {other:?}"
            ))),
        }
    }

    /// The mode of this process (read once from the environment).
    pub fn current() -> Result<Mode> {
        static MODE: OnceLock<std::result::Result<Mode, String>> = OnceLock::new();
        MODE.get_or_init(|| {
            Mode::parse(std::env::var("LSTMGEN_CUDA_RECURRENCE").ok().as_deref())
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(Error::Data)
    }
}

/// Threads per block of the persistent kernels (`THREADS` in recurrence.cu).
pub(crate) const THREADS: usize = 256;
/// Batch rows per thread in a product tile, at most (`RB_MAX` in recurrence.cu).
const ROWS_PER_THREAD_MAX: usize = 8;
/// Columns of the streamed operand staged in shared memory at a time.
const K_CHUNK: usize = 128;
/// Padding floats per row of the shared arrays (`WPAD` in recurrence.cu).
const PAD: usize = 4;
/// Hidden units per block that the kernels take: `4 * units` (forward) and `units` (backward)
/// must divide [`THREADS`].
const UNITS: [usize; 4] = [2, 4, 8, 16];

/// What a device offers the persistent kernels.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Streaming multiprocessors (132 on an H200).
    pub sms: usize,
    /// Dynamic shared memory one block may opt in to, bytes (232,448 on an H200).
    pub shared_per_block: usize,
}

impl Limits {
    /// An NVIDIA H200 (SXM): 132 SMs, 227 KB of shared memory per block.
    pub const H200: Limits = Limits {
        sms: 132,
        shared_per_block: 227 * 1024,
    };
}

/// Which pass a [`Plan`] is for: they hold different slices of `W_hh` and tile differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// `4 * units` rows of `W_hh` `[4H, H]` per block; the product streams `h` `[B, H]`.
    Forward,
    /// `units` columns of `W_hh` per block; the product streams `dz` `[B, 4H]`.
    Backward,
}

/// The tiling of one persistent launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Hidden units per block.
    pub units: usize,
    /// Blocks in the grid: `hidden / units`, at most one per SM.
    pub blocks: usize,
    /// Batch rows each thread accumulates per tile (tile rows: `THREADS / columns * rows_per_thread`).
    pub rows_per_thread: usize,
    /// Columns of the streamed operand per shared-memory chunk.
    pub k_chunk: usize,
    /// Dynamic shared memory per block, bytes.
    pub shared_bytes: usize,
}

/// The tiling of `pass` for a layer of `hidden` units at `batch` rows on a device with `limits`:
/// the smallest block (most blocks, so most SMs busy) that fits, or a sentence saying why none does.
pub fn plan(
    pass: Pass,
    hidden: usize,
    batch: usize,
    limits: Limits,
) -> std::result::Result<Plan, String> {
    if hidden == 0 || batch == 0 {
        return Err("an empty layer or batch".into());
    }
    if !hidden.is_multiple_of(4) {
        return Err(format!("hidden size {hidden} is not a multiple of 4"));
    }
    let k = match pass {
        Pass::Forward => hidden,
        Pass::Backward => 4 * hidden,
    };
    let k_chunk = K_CHUNK.min(k);
    let mut smallest_over: Option<(usize, usize)> = None;
    for units in UNITS {
        if !hidden.is_multiple_of(units) || hidden / units > limits.sms {
            continue;
        }
        let columns = match pass {
            Pass::Forward => 4 * units,
            Pass::Backward => units,
        };
        let groups = THREADS / columns;
        let rows_per_thread = batch.div_ceil(groups).min(ROWS_PER_THREAD_MAX);
        let tile_rows = groups * rows_per_thread;
        let floats = columns * (k + PAD)
            + tile_rows * (k_chunk + PAD)
            + match pass {
                Pass::Forward => tile_rows * (columns + 1) + batch * units,
                Pass::Backward => 2 * batch * units,
            };
        let shared_bytes = floats * 4;
        if shared_bytes <= limits.shared_per_block {
            return Ok(Plan {
                units,
                blocks: hidden / units,
                rows_per_thread,
                k_chunk,
                shared_bytes,
            });
        }
        smallest_over.get_or_insert((units, shared_bytes));
    }
    Err(match smallest_over {
        Some((units, bytes)) => format!(
            "hidden {hidden} at batch {batch} needs {} KB of shared memory per block ({units} units per block), more than the device's {} KB",
            bytes.div_ceil(1024),
            limits.shared_per_block / 1024
        ),
        None => format!(
            "hidden {hidden} does not split into at most {} blocks (one per SM) of 2, 4, 8 or 16 units",
            limits.sms
        ),
    })
}

/// Launches of the persistent kernels and fallbacks to the standard recurrence in this process.
static FORWARD_LAUNCHES: AtomicU64 = AtomicU64::new(0);
static BACKWARD_LAUNCHES: AtomicU64 = AtomicU64::new(0);
static FALLBACKS: AtomicU64 = AtomicU64::new(0);

/// Counts a launch of `pass`.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn count_launch(pass: Pass) {
    match pass {
        Pass::Forward => &FORWARD_LAUNCHES,
        Pass::Backward => &BACKWARD_LAUNCHES,
    }
    .fetch_add(1, Ordering::Relaxed);
}

/// Counts a fallback to the standard recurrence and writes `why` to stderr the first time it occurs.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn fall_back(why: String) {
    FALLBACKS.fetch_add(1, Ordering::Relaxed);
    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if !seen.contains(&why) {
        eprintln!("lstmgen: LSTMGEN_CUDA_RECURRENCE=persistent: {why}; this layer runs the standard recurrence");
        seen.push(why);
    }
}

/// A line for `engineInfo()`: the mode and, when persistent, the launches and fallbacks so far,
/// e.g. `persistent (forward launches 12, backward 12, fallbacks to standard 0)`.
pub fn describe() -> String {
    match Mode::current() {
        Ok(Mode::Standard) => "standard".into(),
        Ok(Mode::Persistent) => format!(
            "persistent (forward launches {}, backward {}, fallbacks to standard {})",
            FORWARD_LAUNCHES.load(Ordering::Relaxed),
            BACKWARD_LAUNCHES.load(Ordering::Relaxed),
            FALLBACKS.load(Ordering::Relaxed)
        ),
        Err(e) => format!("invalid: {e}"),
    }
}

/// The persistent forward of one layer ([`crate::cuda::recurrence::forward`]): `out` `[T*B, H]`,
/// the final `h` and `c` `[B, H]`, and with `want_cache` the activated gates `[T*B, 4H]`, the cell
/// state each step used and `tanh(c_t)` `[T*B, H]`.
pub(crate) struct ForwardRun {
    pub out: Tensor,
    pub h: Tensor,
    pub c: Tensor,
    pub cache: Option<[Tensor; 3]>,
}

/// One layer's forward recurrence as one persistent launch, or `None` where it does not apply: the
/// standard mode, not on CUDA, or a shape or GPU it cannot hold (noted by [`fall_back`]). Inputs as
/// in [`crate::cuda::recurrence::forward`]: `xw` `[T*B, 4H]` (input projection plus biases),
/// `w_hh` `[4H, H]`, `h0`, `c0` `[B, H]`, the resets' keep mask `[T*B, 1]`. An invalid
/// `LSTMGEN_CUDA_RECURRENCE` is an `Error::Data` on CUDA.
#[allow(unused_variables)]
pub(crate) fn forward(
    xw: &Tensor,
    w_hh: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    keep: Option<&Tensor>,
    seq_len: usize,
    want_cache: bool,
) -> Option<Result<ForwardRun>> {
    #[cfg(feature = "cuda")]
    {
        let candle_core::Device::Cuda(dev) = xw.device() else {
            return None;
        };
        let (batch, hidden) = h0.dims2().ok()?;
        attempt(dev, Pass::Forward, hidden, batch, seq_len, |tiling| {
            Ok(crate::cuda::recurrence::forward(
                dev, xw, w_hh, h0, c0, keep, seq_len, want_cache, tiling,
            )?
            .map(|f| ForwardRun {
                out: f.out,
                h: f.h,
                c: f.c,
                cache: f.cache,
            }))
        })
    }
    #[cfg(not(feature = "cuda"))]
    None
}

/// One layer's backward recurrence as one persistent launch: `dz` `[T*B, 4H]` from the forward
/// cache (`gates` `[T*B, 4H]`, `c_used`, `tanh_c` `[T*B, H]`), `d_out` `[T*B, H]`, `w_hh` `[4H, H]`
/// and the keep mask; `None` where it does not apply (as [`forward`]).
#[allow(unused_variables, clippy::too_many_arguments)]
pub(crate) fn backward(
    w_hh: &Tensor,
    gates: &Tensor,
    c_used: &Tensor,
    tanh_c: &Tensor,
    d_out: &Tensor,
    keep: Option<&Tensor>,
    seq_len: usize,
) -> Option<Result<Tensor>> {
    #[cfg(feature = "cuda")]
    {
        let candle_core::Device::Cuda(dev) = gates.device() else {
            return None;
        };
        let (n, hidden) = tanh_c.dims2().ok()?;
        attempt(
            dev,
            Pass::Backward,
            hidden,
            n / seq_len.max(1),
            seq_len,
            |tiling| {
                crate::cuda::recurrence::backward(
                    dev, w_hh, gates, c_used, tanh_c, d_out, keep, seq_len, tiling,
                )
            },
        )
    }
    #[cfg(not(feature = "cuda"))]
    None
}

/// Runs `launch` with the plan of `pass` for this shape on `dev` in the persistent mode; `None`
/// (after [`fall_back`]) where the mode is standard, the shape does not fit or the GPU refuses.
#[cfg(feature = "cuda")]
fn attempt<T>(
    dev: &candle_core::cuda_backend::CudaDevice,
    pass: Pass,
    hidden: usize,
    batch: usize,
    seq_len: usize,
    launch: impl FnOnce(&crate::cuda::recurrence::Tiling) -> Result<std::result::Result<T, String>>,
) -> Option<Result<T>> {
    match Mode::current() {
        Err(e) => return Some(Err(e)),
        Ok(Mode::Standard) => return None,
        Ok(Mode::Persistent) => {}
    }
    let limits = match crate::cuda::recurrence::limits(dev) {
        Err(e) => return Some(Err(e)),
        Ok(Err(why)) => {
            fall_back(why);
            return None;
        }
        Ok(Ok((sms, shared_per_block))) => Limits {
            sms,
            shared_per_block,
        },
    };
    let p = match plan(pass, hidden, batch, limits) {
        Ok(p) if (seq_len as u64) * (p.blocks as u64) < u32::MAX as u64 => p,
        Ok(_) => {
            fall_back(format!("{seq_len} steps overflow the barrier counter"));
            return None;
        }
        Err(why) => {
            fall_back(why);
            return None;
        }
    };
    let tiling = crate::cuda::recurrence::Tiling {
        units: p.units as u32,
        blocks: p.blocks as u32,
        rows_per_thread: p.rows_per_thread as u32,
        k_chunk: p.k_chunk as u32,
        shared_bytes: p.shared_bytes as u32,
    };
    match launch(&tiling) {
        Err(e) => Some(Err(e)),
        Ok(Err(why)) => {
            fall_back(why);
            None
        }
        Ok(Ok(v)) => {
            count_launch(pass);
            Some(Ok(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_defaults_to_standard_and_refuses_unknown_values() {
        assert_eq!(Mode::parse(None).unwrap(), Mode::Standard);
        assert_eq!(Mode::parse(Some("")).unwrap(), Mode::Standard);
        assert_eq!(Mode::parse(Some("standard")).unwrap(), Mode::Standard);
        assert_eq!(Mode::parse(Some("persistent")).unwrap(), Mode::Persistent);
        let e = Mode::parse(Some("Persistent")).unwrap_err();
        assert_eq!(e.code(), "E_DATA");
        assert!(e.to_string().contains("LSTMGEN_CUDA_RECURRENCE"), "{e}");
    }

    /// Shared floats of a plan recomputed from the kernels' layout (recurrence.cu), independently
    /// of [`plan`]'s own sum.
    fn kernel_floats(pass: Pass, p: &Plan, hidden: usize, batch: usize) -> usize {
        let (cols, k) = match pass {
            Pass::Forward => (4 * p.units, hidden),
            Pass::Backward => (p.units, 4 * hidden),
        };
        let rows = THREADS / cols * p.rows_per_thread;
        let ws = cols * (k + 4);
        let hs = rows * (p.k_chunk + 4);
        ws + hs
            + match pass {
                Pass::Forward => rows * (cols + 1) + batch * p.units,
                Pass::Backward => 2 * batch * p.units,
            }
    }

    #[test]
    fn the_gpu_checks_shapes_fit_an_h200() {
        let h200 = Limits::H200;
        for (hidden, units) in [(512, 4), (1024, 8), (64, 2)] {
            for pass in [Pass::Forward, Pass::Backward] {
                let p = plan(pass, hidden, 64, h200).unwrap();
                assert_eq!(p.units, units, "{pass:?} hidden {hidden}");
                assert_eq!(p.blocks * p.units, hidden);
                assert!(p.blocks <= h200.sms);
                assert!(p.shared_bytes <= h200.shared_per_block);
                assert_eq!(p.shared_bytes, 4 * kernel_floats(pass, &p, hidden, 64));
                // the tile covers the batch in one pass where registers allow
                let cols = if pass == Pass::Forward {
                    4 * units
                } else {
                    units
                };
                let tile = THREADS / cols * p.rows_per_thread;
                assert!(tile >= 64 || p.rows_per_thread == ROWS_PER_THREAD_MAX);
                assert!(p.k_chunk.is_multiple_of(4) && p.k_chunk <= 4 * hidden);
            }
        }
        // hidden 1024, forward: 32 resident rows of 1024 (+4) floats = 131,584 bytes of the block's
        // 175,872 (the rest: the staged h chunk, the gate tile and the cell state)
        let p = plan(Pass::Forward, 1024, 64, h200).unwrap();
        assert_eq!(
            (p.blocks, p.rows_per_thread, p.shared_bytes),
            (128, 8, 175_872)
        );
    }

    /// The kernels of cuda/recurrence.cu run on the host (cuda/recurrence_emulated.cpp: one thread
    /// per CUDA thread, shared memory of exactly the planned size, AddressSanitizer) with the tilings
    /// [`plan`] gives, against plain loops: one tile and chunk, record resets or none, and several
    /// batch tiles with several column chunks (a device of 12 SMs forces 16 units per block).
    #[test]
    fn the_kernels_match_plain_loops_on_the_host() {
        let dir = std::env::temp_dir().join(format!("lstmgen-recurrence-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("recurrence_emulated");
        let src = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/cuda/recurrence_emulated.cpp"
        );
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
        let compile = |sanitize: bool| {
            let mut c = std::process::Command::new(&cxx);
            c.args(["-std=c++20", "-O1", "-pthread"]);
            if sanitize {
                c.arg("-fsanitize=address,undefined");
            }
            c.arg(src).arg("-o").arg(&exe).output()
        };
        let built = match compile(true) {
            Err(e) => {
                eprintln!("skipped: no C++ compiler ({cxx}: {e}); set CXX to run this test");
                return;
            }
            Ok(o) if o.status.success() => o,
            // a toolchain without the sanitizers' runtime: the comparison still runs
            Ok(_) => compile(false).unwrap(),
        };
        assert!(
            built.status.success(),
            "{}",
            String::from_utf8_lossy(&built.stderr)
        );
        let wide = Limits {
            sms: 12,
            ..Limits::H200
        };
        for (hidden, batch, steps, limits, keep) in [
            (16, 3, 5, Limits::H200, true),
            (16, 3, 5, Limits::H200, false),
            (160, 40, 4, wide, true),
        ] {
            let f = plan(Pass::Forward, hidden, batch, limits).unwrap();
            let b = plan(Pass::Backward, hidden, batch, limits).unwrap();
            let args = [
                hidden,
                batch,
                steps,
                f.units,
                f.rows_per_thread,
                f.k_chunk,
                f.shared_bytes,
                b.units,
                b.rows_per_thread,
                b.k_chunk,
                b.shared_bytes,
                keep as usize,
                7,
            ];
            let out = std::process::Command::new(&exe)
                .args(args.iter().map(|a| a.to_string()))
                .output()
                .unwrap();
            let report = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success(),
                "hidden {hidden}, batch {batch}: {report}"
            );
            assert!(report.starts_with("forward: out"), "{report}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn shapes_that_do_not_fit_say_why() {
        let h200 = Limits::H200;
        let e = plan(Pass::Forward, 2048, 256, h200).unwrap_err();
        assert!(e.contains("hidden 2048") && e.contains("227 KB"), "{e}");
        let e = plan(Pass::Forward, 1022, 64, h200).unwrap_err();
        assert!(e.contains("multiple of 4"), "{e}");
        // 4100 = 4 * 1025: no unit count both divides it and gives <= 132 blocks
        let e = plan(Pass::Backward, 4100, 64, h200).unwrap_err();
        assert!(e.contains("one per SM"), "{e}");
        assert!(plan(Pass::Forward, 0, 64, h200).is_err());
        // a device with fewer SMs takes larger blocks, and a huge batch runs in several tiles
        let small = Limits {
            sms: 40,
            shared_per_block: 99 * 1024,
        };
        assert_eq!(plan(Pass::Forward, 256, 8, small).unwrap().units, 8);
        let big = plan(Pass::Forward, 512, 4096, h200).unwrap();
        assert_eq!(big.rows_per_thread, ROWS_PER_THREAD_MAX);
    }
}

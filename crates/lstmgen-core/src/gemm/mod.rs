//! Matrix products for the engine, in one of two precisions ([`Precision`]).
//!
//! f32 on the CPU: OpenBLAS `cblas_sgemm` when `build.rs` linked it (`blas.rs`), else the engine's
//! own packed, cache-blocked kernels (`blocked.rs`: AVX2/FMA or portable, on the micro-kernels of
//! `tile.rs`). bf16 on the CPU: operands rounded to bf16 and products accumulated in f32, on AMX
//! tiles where the CPU has them (`amx.rs`); elsewhere the same rounding followed by the f32
//! product, so results agree across machines up to the order of additions. Other devices (CUDA)
//! and f64 (the gradient check) always use candle's `matmul`.

mod amx;
#[cfg(lstmgen_blas)]
mod blas;
#[cfg_attr(lstmgen_blas, allow(dead_code))] // the BLAS build takes OpenBLAS for these products
mod blocked;
mod f32k;
pub(crate) mod tile;

use crate::error::{Error, Result};
use candle_core::{DType, Layout, Storage, Tensor};

/// Precision of matrix products. Everything else (activations, cell state, softmax, gradients'
/// accumulation, Adam, the weights themselves) is f32 in both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// f32 inputs and accumulation (PyTorch's default).
    #[default]
    F32,
    /// Mixed precision: inputs rounded to bf16 (8-bit mantissa), f32 accumulation (PyTorch CPU
    /// autocast's matmul semantics). Uses AMX tiles when available; CPU only.
    Bf16,
}

impl Precision {
    /// Parses `"f32"` or `"bf16"`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            other => Err(Error::Data(format!(
                "precision must be \"f32\" or \"bf16\", got {other:?}"
            ))),
        }
    }
}

/// `LSTMGEN_CPU_KERNELS=generic` turns off the AMX, AVX-512 and AVX2 product kernels (read once):
/// products then take the portable paths (OpenBLAS or the portable blocked kernel for f32, bf16
/// rounding + f32 product for bf16), which is how CPUs without those features run, and how the
/// tests check those paths here.
fn generic_only() -> bool {
    static GENERIC: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *GENERIC.get_or_init(|| std::env::var("LSTMGEN_CPU_KERNELS").is_ok_and(|v| v == "generic"))
}

fn use_amx() -> bool {
    !generic_only() && amx::available()
}

fn use_f32k() -> bool {
    !generic_only() && f32k::available()
}

/// The blocked kernels' family here (read once).
fn blocked_isa() -> blocked::Isa {
    static ISA: std::sync::OnceLock<blocked::Isa> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| blocked::isa(generic_only()))
}

/// Whether the engine's own f32 kernels may use AVX2 and FMA here (and `LSTMGEN_CPU_KERNELS` is
/// not `generic`).
pub(crate) fn avx2_fma() -> bool {
    blocked_isa() == blocked::Isa::Avx2
}

/// Whether f32 CPU products take the blocked kernels (the build without OpenBLAS).
const USE_BLOCKED: bool = cfg!(not(lstmgen_blas));

/// Whether bf16 products run on AMX tiles here (else they are emulated: bf16 rounding, then the
/// f32 product; same results, no speed-up).
pub fn amx_available() -> bool {
    use_amx()
}

/// Which code computes CPU matrix products, for `engineInfo()`: e.g.
/// `"OpenBLAS 0.3.21 ... (SkylakeX); bf16: AMX"`.
pub fn backend() -> String {
    #[cfg(lstmgen_blas)]
    let f32_lib = blas::backend();
    #[cfg(not(lstmgen_blas))]
    let f32_lib = format!("lstmgen blocked kernels ({})", blocked_isa().name());
    let bf16 = if use_amx() {
        "AMX"
    } else {
        "emulated (no AMX)"
    };
    format!("{f32_lib}; bf16: {bf16}")
}

/// A 2-D f32 CPU operand: row-major `[rows, cols]` with leading dimension `ld`, or (`trans`) the
/// transpose of a row-major `[cols, rows]` one, starting at `data[0]`.
pub(crate) struct Operand<'a> {
    data: &'a [f32],
    trans: bool,
    ld: usize,
}

impl Operand<'_> {
    /// Offset of element (row, col) of the logical matrix.
    fn at(&self, row: usize, col: usize) -> usize {
        if self.trans {
            col * self.ld + row
        } else {
            row * self.ld + col
        }
    }

    /// Whether `data` holds every element of a `[rows, cols]` logical matrix.
    fn covers(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || self.data.len() > self.at(rows - 1, cols - 1)
    }
}

/// The operand view of an f32 CPU tensor stored row-major or as a transpose (`.t()`), or None.
fn operand<'a>(s: &'a Storage, l: &Layout) -> Option<Operand<'a>> {
    let (dims, st) = (l.dims(), l.stride());
    if dims.len() != 2 {
        return None;
    }
    let data = match s {
        Storage::Cpu(c) => &c.as_slice::<f32>().ok()?[l.start_offset()..],
        _ => return None,
    };
    let (r, c) = (dims[0], dims[1]);
    let (trans, ld) = if (st[1] == 1 || c == 1) && st[0] >= c.max(1) {
        (false, st[0].max(1))
    } else if (st[0] == 1 || r == 1) && st[1] >= r.max(1) {
        (true, st[1].max(1))
    } else {
        return None;
    };
    let op = Operand { data, trans, ld };
    op.covers(r, c).then_some(op)
}

/// `a` rounded to bf16 and back, as a contiguous f32 tensor (the bf16 path without AMX).
fn round_bf16(t: &Tensor) -> Result<Tensor> {
    Ok(t.to_dtype(DType::BF16)?.to_dtype(DType::F32)?)
}

fn check_inner(a: &Tensor, k: usize) -> Result<(usize, usize)> {
    let (m, ka) = a.dims2()?;
    if ka != k {
        return Err(Error::Native(format!(
            "matmul shapes [{m}, {ka}] x [{k}, ..]"
        )));
    }
    Ok((m, ka))
}

/// `a @ b` for 2-D `a` `[m, k]` and `b` `[k, n]`, either of which may be a transposed view
/// (`.t()`), in precision `p`. Returns a contiguous `[m, n]` tensor.
/// Errors: mismatched inner dimensions; candle's errors on other devices.
pub fn matmul(a: &Tensor, b: &Tensor, p: Precision) -> Result<Tensor> {
    match p {
        Precision::F32 => f32_matmul(a, b), // one-off: nothing to gain from packing `b` ourselves
        Precision::Bf16 => matmul_packed(a, &pack(b, p)?),
    }
}

/// Most rows for which the pre-packed f32 kernel beats OpenBLAS (which packs per call).
const F32K_MAX_ROWS: usize = 256;

/// The right operand of [`matmul_packed`], prepared once and used for many products (the
/// recurrent weight, used at every timestep).
pub struct Packed {
    /// The operand itself (f32 path, other devices, f64).
    t: Tensor,
    /// bf16 tiles for AMX.
    amx: Option<amx::PackedB>,
    /// bf16-rounded copy (bf16 without AMX).
    rounded: Option<Tensor>,
    /// f32 panels for small-row products (AVX-512).
    f32k: Option<f32k::PackedF32>,
    /// f32 strips for the blocked kernels (the build without OpenBLAS, where f32k is absent).
    blocked: Option<blocked::PackedB>,
}

/// Prepares `b` `[k, n]` (may be a transposed view) as the right operand of products in `p`.
pub fn pack(b: &Tensor, p: Precision) -> Result<Packed> {
    let mut out = Packed {
        t: b.clone(),
        amx: None,
        rounded: None,
        f32k: None,
        blocked: None,
    };
    if p == Precision::F32 && b.dtype() == DType::F32 && b.device().is_cpu() && use_f32k() {
        let (k, n) = b.dims2()?;
        let (s, l) = b.storage_and_layout();
        out.f32k = operand(&s, l).map(|op| f32k::pack(&op, k, n));
    } else if p == Precision::F32 && b.dtype() == DType::F32 && b.device().is_cpu() && USE_BLOCKED {
        let (k, n) = b.dims2()?;
        let (s, l) = b.storage_and_layout();
        out.blocked = operand(&s, l).map(|op| blocked::pack_b(&op, k, n, blocked_isa()));
    } else if p == Precision::Bf16 && b.dtype() == DType::F32 && b.device().is_cpu() {
        let (k, n) = b.dims2()?;
        let (s, l) = b.storage_and_layout();
        match operand(&s, l) {
            Some(op) if use_amx() => out.amx = Some(amx::pack_b(&op, k, n)),
            _ => out.rounded = Some(round_bf16(b)?),
        }
    }
    Ok(out)
}

/// `a @ b` with `b` prepared by [`pack`] (in the precision given there).
pub fn matmul_packed(a: &Tensor, b: &Packed) -> Result<Tensor> {
    if let Some(pf) = &b.f32k {
        let (m, _) = check_inner(a, pf.k())?;
        if m <= F32K_MAX_ROWS && a.dtype() == DType::F32 {
            let (s, l) = a.storage_and_layout();
            if let Some(op) = operand(&s, l).filter(|op| !op.trans) {
                let out = if m > 0 && pf.n() > 0 && pf.k() > 0 {
                    // SAFETY: f32k::gemm writes every element of the m x n output.
                    unsafe { uninit_product(m * pf.n(), |p| f32k::gemm(&op, m, pf, p)) }
                } else {
                    vec![0f32; m * pf.n()]
                };
                drop(s);
                return Ok(Tensor::from_vec(out, (m, pf.n()), a.device())?);
            }
        }
    }
    if let Some(pb) = &b.blocked {
        let (m, _) = check_inner(a, pb.k())?;
        if a.dtype() == DType::F32 {
            let (s, l) = a.storage_and_layout();
            if let Some(op) = operand(&s, l) {
                let out = blocked_product(&op, m, pb);
                drop(s);
                return Ok(Tensor::from_vec(out, (m, pb.n()), a.device())?);
            }
        }
    }
    if let Some(pb) = &b.amx {
        let (m, _) = check_inner(a, pb.k())?;
        let a = match a.dtype() {
            DType::F32 => a.clone(),
            _ => a.to_dtype(DType::F32)?,
        };
        let a = {
            let (s, l) = a.storage_and_layout();
            if operand(&s, l).is_some() {
                a.clone()
            } else {
                a.contiguous()?
            }
        };
        let (s, l) = a.storage_and_layout();
        let op = operand(&s, l)
            .ok_or_else(|| Error::Native("AMX operand is not a CPU matrix".into()))?;
        let out = if m > 0 && pb.n() > 0 && pb.k() > 0 {
            // SAFETY: amx::gemm writes all m * n elements (every row of every column block).
            unsafe { uninit_product(m * pb.n(), |p| amx::gemm(&op, m, pb, p)) }
        } else {
            vec![0f32; m * pb.n()]
        };
        drop(s);
        return Ok(Tensor::from_vec(out, (m, pb.n()), a.device())?);
    }
    if let Some(r) = &b.rounded {
        if a.dtype() == DType::F32 {
            return f32_matmul(&round_bf16(a)?, r);
        }
    }
    f32_matmul(a, &b.t)
}

/// A vector of `len` floats filled by `fill` through a raw pointer, without zeroing it first (the
/// products are large: zeroing them cost ~10% of a training step).
///
/// # Safety
/// `fill` must write every one of the `len` elements.
unsafe fn uninit_product(len: usize, fill: impl FnOnce(*mut f32)) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    fill(v.as_mut_ptr());
    v.set_len(len);
    v
}

/// The f32 product: OpenBLAS when linked and both are CPU f32 views, else candle.
fn f32_matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    #[cfg(lstmgen_blas)]
    if a.dtype() == DType::F32 && b.dtype() == DType::F32 && a.device().is_cpu() {
        let (k, n) = b.dims2()?;
        let (m, _) = check_inner(a, k)?;
        let (sa, la) = a.storage_and_layout();
        let (sb, lb) = b.storage_and_layout();
        if let (Some(oa), Some(ob)) = (operand(&sa, la), operand(&sb, lb)) {
            let out = if m > 0 && n > 0 && k > 0 {
                // SAFETY: cblas_sgemm with beta = 0 writes every element of its block, and the
                // blocks of sgemm_par tile the m x n output.
                unsafe { uninit_product(m * n, |p| blas::sgemm_par(&oa, &ob, m, n, k, p)) }
            } else {
                vec![0f32; m * n]
            };
            drop((sa, sb));
            return Ok(Tensor::from_vec(out, (m, n), a.device())?);
        }
    }
    if USE_BLOCKED && a.dtype() == DType::F32 && b.dtype() == DType::F32 && a.device().is_cpu() {
        let (k, n) = b.dims2()?;
        let (m, _) = check_inner(a, k)?;
        let (sa, la) = a.storage_and_layout();
        let (sb, lb) = b.storage_and_layout();
        if let (Some(oa), Some(ob)) = (operand(&sa, la), operand(&sb, lb)) {
            let out = blocked_product(&oa, m, &blocked::pack_b(&ob, k, n, blocked_isa()));
            drop((sa, sb));
            return Ok(Tensor::from_vec(out, (m, n), a.device())?);
        }
    }
    Ok(a.matmul(b)?)
}

/// `a [m, k] @ b` on the blocked kernels, as a row-major `m * n` vector.
fn blocked_product(a: &Operand, m: usize, b: &blocked::PackedB) -> Vec<f32> {
    // SAFETY: blocked::gemm writes every element of the m x n output.
    unsafe { uninit_product(m * b.n(), |p| blocked::gemm(a, m, b, p)) }
}

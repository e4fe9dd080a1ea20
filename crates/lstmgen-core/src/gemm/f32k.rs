//! f32 products `A [m, k] x B [k, n]` with `B` packed once and reused, for the recurrent step's
//! products (`m` = a group of batch rows, `B` = the recurrent weight). OpenBLAS repacks its operands
//! on every call, and for these small-`m` products repacking the weight took ~30% of a training step.
//! AVX-512: 8 rows x 48 columns of C in 24 registers, one broadcast of A and three loads of B per k.

use super::Operand;
use rayon::prelude::*;

/// Columns per packed panel (three 16-float vectors).
const NR: usize = 48;
/// Rows of C per kernel call.
const MR: usize = 8;
/// Multiply-adds below which a product is not split between threads (~10 us on one core, about
/// what handing work to a sleeping rayon thread costs; a sampling step at batch 1 is far below).
const SERIAL_MACS: usize = 1 << 18;

/// Whether this CPU runs the kernel (AVX-512F).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `B` `[k, n]` as panels of 48 columns, each `[k][48]` (zero-padded past `n`).
pub struct PackedF32 {
    data: Vec<f32>,
    k: usize,
    n: usize,
}

impl PackedF32 {
    pub fn k(&self) -> usize {
        self.k
    }
    pub fn n(&self) -> usize {
        self.n
    }
}

/// Packs `b` (logical `[k, n]`). Parallel over panels.
pub fn pack(b: &Operand, k: usize, n: usize) -> PackedF32 {
    let mut data = vec![0f32; n.div_ceil(NR) * k * NR];
    data.par_chunks_mut((k * NR).max(1))
        .enumerate()
        .for_each(|(p, panel)| {
            for c in 0..NR.min(n - p * NR) {
                let j = p * NR + c;
                for kk in 0..k {
                    panel[kk * NR + c] = b.data[b.at(kk, j)];
                }
            }
        });
    PackedF32 { data, k, n }
}

/// `out[m, n] = a @ b` for a row-major `a` (`!a.trans`) covering `[m, k]`; `out` points to `m * n`
/// writable floats, all of which are written. The caller checked [`available`].
pub fn gemm(a: &Operand, m: usize, b: &PackedF32, out: *mut f32) {
    let (k, n) = (b.k, b.n);
    let panels = n.div_ceil(NR);
    // Products below SERIAL_MACS run on the calling thread: waking another thread costs more.
    let threads = if m * k * n < SERIAL_MACS {
        1
    } else {
        rayon::current_num_threads().max(1)
    };
    let per = panels.div_ceil(threads).max(1);
    let base = out as usize;
    (0..panels.div_ceil(per)).into_par_iter().for_each(|t| {
        for p in t * per..((t + 1) * per).min(panels) {
            let bp = b.data[p * k * NR..].as_ptr();
            let cols = NR.min(n - p * NR);
            let mut i0 = 0;
            while i0 < m {
                let rows = MR.min(m - i0);
                let ap = a.data[a.at(i0, 0)..].as_ptr();
                let cp = (base as *mut f32).wrapping_add(i0 * n + p * NR);
                // SAFETY: `a` covers rows i0..i0+rows x k (row stride a.ld); the panel holds k x 48
                // floats; C's block rows x cols lies inside `out` and no other task writes it.
                unsafe {
                    match rows {
                        8 => kernel::<8>(ap, a.ld, bp, k, cp, n, cols),
                        7 => kernel::<7>(ap, a.ld, bp, k, cp, n, cols),
                        6 => kernel::<6>(ap, a.ld, bp, k, cp, n, cols),
                        5 => kernel::<5>(ap, a.ld, bp, k, cp, n, cols),
                        4 => kernel::<4>(ap, a.ld, bp, k, cp, n, cols),
                        3 => kernel::<3>(ap, a.ld, bp, k, cp, n, cols),
                        2 => kernel::<2>(ap, a.ld, bp, k, cp, n, cols),
                        _ => kernel::<1>(ap, a.ld, bp, k, cp, n, cols),
                    }
                }
                i0 += rows;
            }
        }
    });
}

/// C `[R, cols]` (row stride `ldc`) = A `[R, k]` (row stride `lda`) x one packed panel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
// Raw pointers and strides of a BLAS-style micro-kernel, kept flat for speed.
#[allow(clippy::too_many_arguments)]
unsafe fn kernel<const R: usize>(
    a: *const f32,
    lda: usize,
    bp: *const f32,
    k: usize,
    c: *mut f32,
    ldc: usize,
    cols: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 3]; R];
    for kk in 0..k {
        let b = bp.add(kk * NR);
        let (b0, b1, b2) = (
            _mm512_loadu_ps(b),
            _mm512_loadu_ps(b.add(16)),
            _mm512_loadu_ps(b.add(32)),
        );
        for (r, row) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_ps(*a.add(r * lda + kk));
            row[0] = _mm512_fmadd_ps(av, b0, row[0]);
            row[1] = _mm512_fmadd_ps(av, b1, row[1]);
            row[2] = _mm512_fmadd_ps(av, b2, row[2]);
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (v, &x) in row.iter().enumerate() {
            let c0 = v * 16;
            if c0 >= cols {
                break;
            }
            let left = cols - c0;
            let mask: __mmask16 = if left >= 16 {
                0xffff
            } else {
                ((1u32 << left) - 1) as u16
            };
            _mm512_mask_storeu_ps(c.add(r * ldc + c0), mask, x);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn kernel<const R: usize>(
    _: *const f32,
    _: usize,
    _: *const f32,
    _: usize,
    _: *mut f32,
    _: usize,
    _: usize,
) {
    unreachable!("available() is false off x86_64")
}

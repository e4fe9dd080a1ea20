//! Matrix products for the engine. On the CPU, with OpenBLAS linked (see `build.rs`), f32 products
//! of row-major or transposed views go to `cblas_sgemm` (AVX-512 kernels where the CPU has them);
//! everything else (CUDA, f64 as in the gradient check, other layouts) uses candle's `matmul`.
//! Both compute the same sums; only the order of float additions differs.

use crate::error::Result;
use candle_core::Tensor;

/// Which library computes CPU matrix products, for `engineInfo()`: e.g.
/// `"OpenBLAS 0.3.21 ... (SkylakeX)"`, or `"candle gemm crate"`.
pub fn backend() -> String {
    imp::backend()
}

/// `a @ b` for 2-D `a` `[m, k]` and `b` `[k, n]`, either of which may be a transposed view
/// (`.t()`). Returns a contiguous `[m, n]` tensor. Errors: candle's shape errors on mismatch.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if let Some(out) = imp::try_sgemm(a, b) {
        return out;
    }
    Ok(a.matmul(b)?)
}

#[cfg(not(lstmgen_blas))]
mod imp {
    use crate::error::Result;
    use candle_core::Tensor;
    pub fn backend() -> String {
        "candle gemm crate".into()
    }
    pub fn try_sgemm(_: &Tensor, _: &Tensor) -> Option<Result<Tensor>> {
        None
    }
}

#[cfg(lstmgen_blas)]
mod imp {
    use crate::error::{Error, Result};
    use candle_core::{DType, Layout, Storage, Tensor};
    use std::ffi::{c_char, c_int, CStr};
    use std::sync::Once;

    const ROW_MAJOR: c_int = 101;
    const NO_TRANS: c_int = 111;
    const TRANS: c_int = 112;

    extern "C" {
        #[allow(clippy::too_many_arguments)]
        fn cblas_sgemm(
            order: c_int,
            trans_a: c_int,
            trans_b: c_int,
            m: c_int,
            n: c_int,
            k: c_int,
            alpha: f32,
            a: *const f32,
            lda: c_int,
            b: *const f32,
            ldb: c_int,
            beta: f32,
            c: *mut f32,
            ldc: c_int,
        );
        fn openblas_set_num_threads(n: c_int);
        fn openblas_get_config() -> *const c_char;
        fn openblas_get_corename() -> *const c_char;
    }

    static ONE_THREAD: Once = Once::new();

    /// OpenBLAS runs single-threaded inside each call; [`sgemm_par`] splits a large product into
    /// row or column blocks on rayon's threads instead. Two pools on two cores fight: OpenBLAS's
    /// idle workers spin on `sched_yield` between calls and steal the core from candle's and
    /// rayon's work. (OpenBLAS 0.3.x is safe to call from several threads at once.)
    fn init() {
        ONE_THREAD.call_once(|| unsafe { openblas_set_num_threads(1) });
    }

    pub fn backend() -> String {
        init();
        // SAFETY: OpenBLAS returns pointers to static NUL-terminated strings.
        let (cfg, core) = unsafe {
            (
                CStr::from_ptr(openblas_get_config()).to_string_lossy(),
                CStr::from_ptr(openblas_get_corename()).to_string_lossy(),
            )
        };
        format!("{cfg} ({core})")
    }

    /// (transposed?, leading dimension) of a 2-D view stored row-major or as a transpose.
    fn view(l: &Layout) -> Option<(bool, usize)> {
        let (dims, st) = (l.dims(), l.stride());
        if dims.len() != 2 {
            return None;
        }
        let (r, c) = (dims[0], dims[1]);
        if (st[1] == 1 || c == 1) && st[0] >= c.max(1) {
            Some((false, st[0].max(1)))
        } else if (st[0] == 1 || r == 1) && st[1] >= r.max(1) {
            Some((true, st[1].max(1)))
        } else {
            None
        }
    }

    fn slice<'a>(s: &'a Storage, l: &Layout) -> Option<&'a [f32]> {
        match s {
            Storage::Cpu(c) => c.as_slice::<f32>().ok().map(|v| &v[l.start_offset()..]),
            _ => None,
        }
    }

    pub fn try_sgemm(a: &Tensor, b: &Tensor) -> Option<Result<Tensor>> {
        if a.dtype() != DType::F32 || b.dtype() != DType::F32 || !a.device().is_cpu() {
            return None;
        }
        let (sa, la) = a.storage_and_layout();
        let (sb, lb) = b.storage_and_layout();
        let ((ta, lda), (tb, ldb)) = (view(la)?, view(lb)?);
        let (xa, xb) = (slice(&sa, la)?, slice(&sb, lb)?);
        let (m, k) = (la.dims()[0], la.dims()[1]);
        let (k2, n) = (lb.dims()[0], lb.dims()[1]);
        if k != k2 {
            return Some(Err(Error::Internal(format!(
                "matmul shapes [{m}, {k}] x [{k2}, {n}]"
            ))));
        }
        // The views must lie inside their storage (candle guarantees it; checked, never assumed).
        let need = |t: bool, rows: usize, cols: usize, ld: usize| {
            if rows == 0 || cols == 0 {
                0
            } else if t {
                (cols - 1) * ld + rows
            } else {
                (rows - 1) * ld + cols
            }
        };
        if xa.len() < need(ta, m, k, lda) || xb.len() < need(tb, k, n, ldb) {
            return None;
        }
        init();
        let mut out = vec![0f32; m * n];
        if m > 0 && n > 0 && k > 0 {
            let a = Operand { data: xa, trans: ta, ld: lda };
            let b = Operand { data: xb, trans: tb, ld: ldb };
            sgemm_par(&a, &b, m, n, k, &mut out);
        }
        drop((sa, sb));
        Some(Tensor::from_vec(out, (m, n), a.device()).map_err(Into::into))
    }

    /// A matrix operand: row-major `[rows, cols]` with leading dimension `ld`, or (`trans`) the
    /// transpose of a row-major `[cols, rows]` one.
    struct Operand<'a> {
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
    }

    /// Below this many multiply-adds a product runs on one thread (splitting costs ~10 us).
    const PAR_MIN_MACS: usize = 1 << 22;

    /// `out[m, n] = a[m, k] @ b[k, n]`, split into row blocks (or column blocks when `m` is small,
    /// as in the per-timestep recurrent product `[batch, H] x [H, 4H]`) across rayon's threads.
    fn sgemm_par(a: &Operand, b: &Operand, m: usize, n: usize, k: usize, out: &mut [f32]) {
        use rayon::prelude::*;
        let threads = rayon::current_num_threads().max(1);
        if threads == 1 || m * n * k < PAR_MIN_MACS {
            return sgemm(a, b, 0..m, 0..n, k, out.as_mut_ptr(), n);
        }
        if m >= 4 * threads || m >= n {
            let rows = m.div_ceil(threads);
            out.par_chunks_mut(rows * n).enumerate().for_each(|(i, c)| {
                let r0 = i * rows;
                sgemm(a, b, r0..(r0 + rows).min(m), 0..n, k, c.as_mut_ptr(), n);
            });
        } else {
            // Column blocks of the same rows: disjoint pieces of `out`, written through a raw
            // pointer because they interleave in memory.
            let cols = n.div_ceil(threads).next_multiple_of(16);
            let base = out.as_mut_ptr() as usize;
            (0..n.div_ceil(cols)).into_par_iter().for_each(|j| {
                let c0 = j * cols;
                let ptr = (base as *mut f32).wrapping_add(c0);
                sgemm(a, b, 0..m, c0..(c0 + cols).min(n), k, ptr, n);
            });
        }
    }

    /// One single-threaded OpenBLAS call for rows `rows` and columns `cols` of the product,
    /// written at `c` (element (rows.start, cols.start)) with leading dimension `ldc`.
    fn sgemm(
        a: &Operand,
        b: &Operand,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        k: usize,
        c: *mut f32,
        ldc: usize,
    ) {
        let fl = |t| if t { TRANS } else { NO_TRANS };
        // SAFETY: the caller checked that `a` and `b` cover their whole logical matrices, so the
        // sub-blocks starting at these offsets do too; `c` addresses a rows x cols block of an
        // output with row stride `ldc` that no other call writes.
        unsafe {
            cblas_sgemm(
                ROW_MAJOR,
                fl(a.trans),
                fl(b.trans),
                rows.len() as c_int,
                cols.len() as c_int,
                k as c_int,
                1.0,
                a.data.as_ptr().add(a.at(rows.start, 0)),
                a.ld as c_int,
                b.data.as_ptr().add(b.at(0, cols.start)),
                b.ld as c_int,
                0.0,
                c,
                ldc as c_int,
            );
        }
    }
}

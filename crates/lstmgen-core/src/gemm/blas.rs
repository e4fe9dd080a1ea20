//! f32 products on OpenBLAS (`cblas_sgemm`), linked statically by `build.rs` when found.
//! OpenBLAS runs single-threaded inside each call; [`sgemm_par`] splits a large product into row
//! or column blocks on rayon's threads instead: two thread pools on two cores fight (OpenBLAS's
//! idle workers spin on `sched_yield` between calls and steal the core from rayon's and candle's
//! work). OpenBLAS 0.3.x may be called from several threads at once.

use super::Operand;
use std::ffi::{c_char, c_int, CStr};
use std::sync::Once;

const ROW_MAJOR: c_int = 101;
const NO_TRANS: c_int = 111;
const TRANS: c_int = 112;

extern "C" {
    // The C signature of cblas_sgemm, fixed by the CBLAS standard.
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

fn init() {
    // SAFETY: sets OpenBLAS's thread count; no memory is passed.
    ONE_THREAD.call_once(|| unsafe { openblas_set_num_threads(1) });
}

/// `"OpenBLAS 0.3.21 ... (SkylakeX)"`: version, build options and the kernel chosen for this CPU.
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

/// Below this many multiply-adds a product runs on one thread (splitting costs ~10 us).
const PAR_MIN_MACS: usize = 1 << 22;

/// `out[m, n] = a[m, k] @ b[k, n]`, split into row blocks (or column blocks when `m` is small,
/// as in the per-timestep recurrent product `[batch, H] x [H, 4H]`) across rayon's threads.
/// The caller has checked that `a` and `b` cover their logical matrices and that `out` points to
/// `m * n` writable floats; every one of them is written.
pub fn sgemm_par(a: &Operand, b: &Operand, m: usize, n: usize, k: usize, out: *mut f32) {
    use rayon::prelude::*;
    init();
    let threads = rayon::current_num_threads().max(1);
    if threads == 1 || m * n * k < PAR_MIN_MACS {
        return sgemm(a, b, 0..m, 0..n, k, out, n);
    }
    // Disjoint blocks of `out` per task, written through the raw pointer.
    let base = out as usize;
    if m >= 4 * threads || m >= n {
        let rows = m.div_ceil(threads);
        (0..m.div_ceil(rows)).into_par_iter().for_each(|i| {
            let r0 = i * rows;
            let ptr = (base as *mut f32).wrapping_add(r0 * n);
            sgemm(a, b, r0..(r0 + rows).min(m), 0..n, k, ptr, n);
        });
    } else {
        let cols = n.div_ceil(threads).next_multiple_of(16);
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

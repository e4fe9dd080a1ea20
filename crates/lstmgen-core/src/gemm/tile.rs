//! The micro-kernels of the engine's CPU products, and the strip layout the fused loops use.
//!
//! A micro-kernel computes one tile `C [r, NR] (+)= A [r, kc] x B [kc, NR]`, `B` a packed strip
//! (`[kc][NR]`, row p at `b[p * NR..]`), `A` addressed through two strides, `A(i, p) =
//! a[i * rsa + p * csa]`: a packed strip of `gemm/blocked.rs` (`rsa = 1`, `csa = MR`) or a
//! row-major matrix read in place (`rsa` = its row stride, `csa = 1`), as the per-timestep products
//! of `recurrence.rs` do (their left operand, the state `h` or `dz` of a row group, changes every
//! step, so packing it would cost as much as the product). Every sum runs over p = 0..kc in order.
//!
//! [`pack_strips`] and [`product`] give the fused loops (f32 and f64: the training recurrence, the
//! generation step) their products in this layout: `B` packed once into strips of [`NR`] columns,
//! `A` read in place; f32 on the AVX2+FMA tile where the CPU has it (and `LSTMGEN_CPU_KERNELS` is
//! not `generic`), else on the portable tile of the same shape. [`product_part`] is the same
//! product over a range of strips (threads splitting one product by output columns) with the
//! inner dimension in blocks that stay in L1.

use crate::buf::CpuFloat;
use std::ops::Range;

/// Rows of the AVX2 tile (and of [`product`]'s tiles).
pub(crate) const MR: usize = 6;
/// Columns of the AVX2 tile: the width of a packed strip (two 8-float vectors).
pub(crate) const NR: usize = 16;

/// `R x 16` tile on AVX2+FMA, `R <= 6`, for a row-major `A` read in place (`A(i, p) = a[i * lda
/// + p]`): [`avx2_body`] with `csa = 1`. `acc` adds the tile to `c` instead of overwriting it.
///
/// # Safety
/// AVX2 and FMA present; `a` holds `R` rows of `kc` floats at stride `lda`; `b` holds `kc * 16`
/// floats; `c` addresses an `R x 16` block at row stride `ldc`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn avx2_rows<const R: usize>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    acc: bool,
) {
    avx2_body::<R>(kc, a, lda, 1, b, c, ldc, acc)
}

/// The `MR x 16` tile on AVX2+FMA for a packed strip of A (`A(i, p) = a[p * MR + i]`, `gemm/
/// blocked.rs`): [`avx2_body`] with `rsa = 1`, `csa = MR`. With both strides constant, A is
/// addressed with immediate offsets (with them in registers, the row addresses cost five integer
/// adds per inner index: ~9% slower measured on the blocked products).
///
/// # Safety
/// AVX2 and FMA present; `a` holds `kc * MR` and `b` `kc * 16` floats; `c` addresses an
/// `MR x 16` block at row stride `ldc`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn avx2_packed(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    acc: bool,
) {
    avx2_body::<MR>(kc, a, 1, MR, b, c, ldc, acc)
}

/// The AVX2+FMA micro-kernel, `c[R, 16] (+)= A[R, kc] @ b`, `A(i, p) = a[i * rsa + p * csa]`,
/// `R <= 6`: `2R` accumulators, two loads of the strip and `R` broadcasts of `A` per inner index.
/// Inlined into [`avx2_rows`] and [`avx2_packed`], where it gets their target features and
/// constant strides.
///
/// # Safety
/// Called only from those two, under their contracts.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn avx2_body<const R: usize>(
    kc: usize,
    a: *const f32,
    rsa: usize,
    csa: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    acc: bool,
) {
    use std::arch::x86_64::*;
    let mut s = [[_mm256_setzero_ps(); 2]; R];
    for p in 0..kc {
        let b0 = _mm256_loadu_ps(b.add(p * NR));
        let b1 = _mm256_loadu_ps(b.add(p * NR + 8));
        for (i, row) in s.iter_mut().enumerate() {
            let av = _mm256_broadcast_ss(&*a.add(i * rsa + p * csa));
            row[0] = _mm256_fmadd_ps(av, b0, row[0]);
            row[1] = _mm256_fmadd_ps(av, b1, row[1]);
        }
    }
    for (i, row) in s.iter().enumerate() {
        for (v, &x) in row.iter().enumerate() {
            let cp = c.add(i * ldc + v * 8);
            let x = if acc {
                _mm256_add_ps(_mm256_loadu_ps(cp), x)
            } else {
                x
            };
            _mm256_storeu_ps(cp, x);
        }
    }
}

/// The tile of [`avx2_body`] in plain Rust for any [`CpuFloat`], `r <= M` rows of an `M x N` tile
/// (the compiler vectorises the `N` loop for the baseline target).
///
/// # Safety
/// `r <= M`; `a[i * rsa + p * csa]` is readable for `i < r`, `p < kc`; `b` holds `kc * N`
/// elements; `c` addresses an `r x N` block at row stride `ldc`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn portable<T: CpuFloat, const M: usize, const N: usize>(
    r: usize,
    kc: usize,
    a: *const T,
    rsa: usize,
    csa: usize,
    b: *const T,
    c: *mut T,
    ldc: usize,
    acc: bool,
) {
    let mut sum = [[T::zero(); N]; M];
    for p in 0..kc {
        let bp = std::slice::from_raw_parts(b.add(p * N), N);
        for (i, row) in sum.iter_mut().enumerate().take(r) {
            let av = *a.add(i * rsa + p * csa);
            for (x, &y) in row.iter_mut().zip(bp) {
                *x += av * y;
            }
        }
    }
    for (i, row) in sum.iter().enumerate().take(r) {
        for (j, &x) in row.iter().enumerate() {
            let cp = c.add(i * ldc + j);
            *cp = if acc { *cp + x } else { x };
        }
    }
}

/// `b` `[k, n]` with `b(p, j) = src[j * ld + p]` (`trans`) or `src[p * ld + j]`, as strips of
/// [`NR`] columns, strip `s` at `[s * k * NR..]` laid out `[k][NR]`, columns past `n` zero (the
/// layout of `blocked.rs`'s AVX2 strips): the right operand of [`product`] and [`product_part`].
pub(crate) fn pack_strips<T: CpuFloat>(
    src: &[T],
    k: usize,
    n: usize,
    ld: usize,
    trans: bool,
) -> Vec<T> {
    let strips = n.div_ceil(NR);
    let mut out = vec![T::zero(); strips * k * NR];
    for s in 0..strips {
        for c in 0..NR.min(n - s * NR) {
            let j = s * NR + c;
            for p in 0..k {
                out[(s * k + p) * NR + c] = if trans {
                    src[j * ld + p]
                } else {
                    src[p * ld + j]
                };
            }
        }
    }
    out
}

/// `c[rows, n] (+)= a[rows, k] @ b`: `a` row-major with row stride `lda` (read in place), `c` with
/// row stride `ldc`, `b` packed by [`pack_strips`] for `k` x `n`; `acc` adds to `c` instead of
/// overwriting it. Every sum runs over p = 0..k in order, in one pass ([`product_part`] with all
/// strips and one block of `k`). Panics (a caller's bug) when a slice is shorter than these shapes
/// need.
#[allow(clippy::too_many_arguments)]
pub(crate) fn product<T: CpuFloat + 'static>(
    a: &[T],
    rows: usize,
    k: usize,
    lda: usize,
    b: &[T],
    n: usize,
    c: &mut [T],
    ldc: usize,
    acc: bool,
) {
    let (strips, len) = (0..n.div_ceil(NR), c.len());
    // SAFETY: `c` is borrowed mutably for the call, so nothing else accesses it.
    unsafe {
        product_part(
            a,
            rows,
            k,
            lda,
            b,
            n,
            strips,
            k,
            c.as_mut_ptr(),
            len,
            ldc,
            acc,
        )
    }
}

/// The output columns of strips `strips` of [`product`] (columns `strips.start * NR` to
/// `min(strips.end * NR, n)`, all rows), the inner dimension in blocks of `kc`: within a strip, a
/// `kc x NR` block stays in L1 while every row tile of `a` passes over it, and each block's sums
/// are added to those of the blocks before it in `c` (so `kc < k` sums in another order than one
/// pass). Rows go in tiles of at most [`MR`] of near-equal size (32 rows: 6, 6, 5, 5, 5, 5), which
/// changes no sum. Threads may compute disjoint strip ranges of one product at the same time.
/// Panics (a caller's bug) when an operand is shorter than these shapes need (`c_len` elements at
/// `c`), when `strips` reaches past `n`, or when `kc` is 0 and `k` is not.
///
/// # Safety
/// `c` is valid for reads and writes of `c_len` elements, and nothing else accesses the columns
/// of these strips meanwhile.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn product_part<T: CpuFloat + 'static>(
    a: &[T],
    rows: usize,
    k: usize,
    lda: usize,
    b: &[T],
    n: usize,
    strips: Range<usize>,
    kc: usize,
    c: *mut T,
    c_len: usize,
    ldc: usize,
    acc: bool,
) {
    if rows == 0 || n == 0 || strips.is_empty() {
        return;
    }
    assert!(
        lda >= k
            && a.len() >= (rows - 1) * lda + k
            && b.len() >= n.div_ceil(NR) * k * NR
            && ldc >= n
            && c_len >= (rows - 1) * ldc + n
            && strips.end <= n.div_ceil(NR)
            && (kc > 0 || k == 0),
        "strip product: operands shorter than [{rows}, {k}] x [{k}, {n}], or strips {strips:?} / \
         block {kc} out of range"
    );
    let tiles = rows.div_ceil(MR);
    let mut tmp = [T::zero(); MR * NR];
    for s in strips {
        let cols = NR.min(n - s * NR);
        // one block of 0 when k is 0: the product is then zeros (or `c` as it was)
        for blk in 0..k.div_ceil(kc.max(1)).max(1) {
            let p0 = blk * kc;
            let kb = kc.min(k - p0);
            let strip = b[(s * k + p0) * NR..].as_ptr();
            let acc = acc || blk > 0;
            let mut i0 = 0;
            for t in 0..tiles {
                let r = (rows - i0).div_ceil(tiles - t);
                let ap = a[i0 * lda + p0..].as_ptr();
                let ct = c.add(i0 * ldc + s * NR);
                // SAFETY: the assert bounds A's r rows of kb at stride lda from p0, and the strip's
                // kb x NR; a full-width tile lies inside `c` (r rows at ldc), a partial one goes
                // through `tmp`, of which only the strip's `cols` columns are copied back.
                if cols == NR {
                    tile(r, kb, ap, lda, strip, ct, ldc, acc);
                } else {
                    let tp = tmp.as_mut_ptr();
                    if acc {
                        for i in 0..r {
                            std::ptr::copy_nonoverlapping(ct.add(i * ldc), tp.add(i * NR), cols);
                        }
                    }
                    tile(r, kb, ap, lda, strip, tp, NR, acc);
                    for i in 0..r {
                        std::ptr::copy_nonoverlapping(tp.add(i * NR), ct.add(i * ldc), cols);
                    }
                }
                i0 += r;
            }
        }
    }
}

/// One `r x NR` tile of [`product_part`], `1 <= r <= MR`, `A` row-major at stride `lda`: the
/// AVX2 tile for f32 where present, else the portable one.
///
/// # Safety
/// As [`portable`] with `rsa = lda`, `csa = 1`.
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<T: CpuFloat + 'static>(
    r: usize,
    k: usize,
    a: *const T,
    lda: usize,
    b: *const T,
    c: *mut T,
    ldc: usize,
    acc: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() && super::avx2_fma() {
        // T is f32 (checked above); AVX2 and FMA are present (avx2_fma).
        let (a, b, c) = (a as *const f32, b as *const f32, c as *mut f32);
        match r {
            6 => avx2_rows::<6>(k, a, lda, b, c, ldc, acc),
            5 => avx2_rows::<5>(k, a, lda, b, c, ldc, acc),
            4 => avx2_rows::<4>(k, a, lda, b, c, ldc, acc),
            3 => avx2_rows::<3>(k, a, lda, b, c, ldc, acc),
            2 => avx2_rows::<2>(k, a, lda, b, c, ldc, acc),
            _ => avx2_rows::<1>(k, a, lda, b, c, ldc, acc),
        }
        return;
    }
    portable::<T, MR, NR>(r, k, a, lda, 1, b, c, ldc, acc);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `len` test values in [-2, 2), a different sequence for each `seed`.
    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 37 + seed * 53) % 101) as f32 / 25.0 - 2.0)
            .collect()
    }

    /// [`product`] (AVX2 where present, else portable; and the portable tile in f64) and
    /// [`product_part`] (one pass, K blocks of 128 and of 5, the strips in two ranges) compute
    /// `a @ b` within the bound of f32 summation, for every row count up to two tiles, partial
    /// strips, a row stride wider than `k`, overwriting and accumulating; one pass is the same as
    /// [`product`] and two strip ranges the same as one, bit for bit.
    #[test]
    fn product_matches_the_plain_sum() {
        for (rows, k, n) in [
            (1, 3, 5),
            (6, 16, 16),
            (13, 37, 40),
            (16, 128, 512),
            (7, 512, 128),
            (9, 600, 37),
            (32, 300, 65),
        ] {
            let (lda, ldc) = (k + 3, n + 1);
            let a = values(rows * lda, 1);
            let bsrc = values(k * n, 2);
            let b = pack_strips(&bsrc, k, n, n, false);
            let bt = {
                let t: Vec<f32> = (0..n * k).map(|i| bsrc[(i % k) * n + i / k]).collect();
                pack_strips(&t, k, n, k, true)
            };
            assert_eq!(b, bt);
            let (a64, b64): (Vec<f64>, Vec<f64>) = (
                a.iter().map(|&x| x as f64).collect(),
                b.iter().map(|&x| x as f64).collect(),
            );
            let strips = n.div_ceil(NR);
            for acc in [false, true] {
                // the exact sum (in f64) and the sum of the terms' magnitudes
                let want = |i: usize, j: usize| {
                    let terms = (0..k).map(|p| a[i * lda + p] as f64 * bsrc[p * n + j] as f64);
                    let init = if acc { 0.5 } else { 0.0 };
                    (
                        terms.clone().sum::<f64>() + init,
                        terms.map(f64::abs).sum::<f64>() + init,
                    )
                };
                let mut whole = vec![0.5f32; rows * ldc];
                product(&a, rows, k, lda, &b, n, &mut whole, ldc, acc);
                let mut c64 = vec![0.5f64; rows * ldc];
                product(&a64, rows, k, lda, &b64, n, &mut c64, ldc, acc);
                for kc in [k, 128, 5] {
                    let part = |range: Range<usize>, c: &mut Vec<f32>| {
                        let len = c.len();
                        // SAFETY: `c` is borrowed mutably and holds `len` elements.
                        unsafe {
                            product_part(
                                &a,
                                rows,
                                k,
                                lda,
                                &b,
                                n,
                                range,
                                kc,
                                c.as_mut_ptr(),
                                len,
                                ldc,
                                acc,
                            )
                        }
                    };
                    let (mut c, mut split) = (vec![0.5f32; rows * ldc], vec![0.5f32; rows * ldc]);
                    part(0..strips, &mut c);
                    part(strips / 2..strips, &mut split);
                    part(0..strips / 2, &mut split);
                    assert_eq!(c, split, "[{rows},{k},{n}] kc {kc}: two strip ranges");
                    if kc == k {
                        assert_eq!(c, whole, "[{rows},{k},{n}]: one pass");
                    }
                    for i in 0..rows {
                        for j in 0..n {
                            let (w, mag) = want(i, j);
                            let got = c[i * ldc + j] as f64;
                            // the worst-case bound of summation in f32 and f64 (Higham, Accuracy
                            // and Stability, 3.1): (k + 1) u times the sum of magnitudes, u = eps / 2
                            let tol = |eps: f64| (k + 1) as f64 * eps * mag;
                            assert!(
                                (got - w).abs() <= tol(f32::EPSILON as f64),
                                "[{rows},{k},{n}] kc {kc} ({i},{j}): {got} vs {w}"
                            );
                            assert!((c64[i * ldc + j] - w).abs() <= tol(f64::EPSILON));
                        }
                        // the column past n is never written
                        assert_eq!(c[i * ldc + n], 0.5);
                    }
                }
            }
        }
    }

    /// An empty inner dimension writes zeros (or leaves `c` as it was when accumulating).
    #[test]
    fn empty_inner_dimension() {
        for acc in [false, true] {
            let mut c = vec![0.5f32; 3 * 20];
            product(&[], 3, 0, 0, &[], 20, &mut c, 20, acc);
            assert!(c.iter().all(|&x| x == if acc { 0.5 } else { 0.0 }));
        }
    }
}

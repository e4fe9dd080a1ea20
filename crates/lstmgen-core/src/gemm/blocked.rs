//! The engine's own f32 product `C [m, n] = A [m, k] x B [k, n]`, either operand row-major or a
//! transposed view, for every shape the engine uses (input projection, per-step recurrent product,
//! decoder, weight gradients). The loop structure is BLIS's (F. Van Zee, R. van de Geijn, "BLIS: A
//! Framework for Rapidly Instantiating BLAS Functionality", ACM TOMS 41(3), 2015): `B` is packed
//! into strips of `NR` columns (`[k][NR]` each, zero-padded), `A` into strips of `MR` rows per
//! `MC x KC` block, and a register-blocked micro-kernel computes one `MR x NR` tile of `C` per
//! strip pair. Loop order jc (NC columns) > pc (KC of the inner dimension) > ic (MC rows) > strip
//! of B > strip of A: a `KC x NR` strip of B stays in L1 while the packed `MC x KC` block of A
//! (L2) streams past it, and the `KC x NC` block of B is reused from L3 across row blocks.
//!
//! Kernels, picked once per process at run time: AVX2 + FMA (6 x 16 tile in 12 ymm registers;
//! CPUs with AVX-512 take it too) or a portable one that the compiler vectorises for the target's
//! baseline (4 x 8 tile), which `LSTMGEN_CPU_KERNELS=generic` selects everywhere; both are the
//! micro-kernels of `tile.rs`, which the fused recurrence shares. The output is
//! split into row and column blocks that rayon's threads compute independently; products below
//! [`PAR_MIN_MACS`] multiply-adds stay on the calling thread.
//!
//! Sums are accumulated in f32 in the order p = 0..k within each KC block, blocks added in
//! order: results agree with any other f32 product up to f32 rounding of the order of additions.

use super::{tile, Operand};
use rayon::prelude::*;

/// Inner-dimension block: a `KC x 16` strip of B is 16 KiB (half of a 32 KiB L1d).
const KC: usize = 256;
/// Row block: the packed `MC x KC` block of A is 120 KiB (L2 holds 512 KiB or more).
const MC: usize = 120;
/// Column block: the `KC x NC` block of B is 4 MiB (L3).
const NC: usize = 4096;
/// Multiply-adds below which a product is not split between threads: waking rayon's threads and
/// their spinning afterwards cost more than they save below ~4M (the threshold OpenBLAS's path in
/// `blas.rs` uses; the per-step recurrent product of a 128-unit model at batch 32 is 2M).
const PAR_MIN_MACS: usize = 1 << 22;
/// Floats below which `B` is packed on the calling thread.
const PAR_MIN_PACK: usize = 1 << 18;

/// The micro-kernel family in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX2 + FMA, `MR = 6`, `NR = 16`.
    Avx2,
    /// Plain Rust, `MR = 4`, `NR = 8`.
    Portable,
}

impl Isa {
    /// Rows of the C tile per micro-kernel call.
    const fn mr(self) -> usize {
        match self {
            Isa::Avx2 => tile::MR,
            Isa::Portable => 4,
        }
    }
    /// Columns of the C tile (width of a packed B strip).
    const fn nr(self) -> usize {
        match self {
            Isa::Avx2 => tile::NR,
            Isa::Portable => 8,
        }
    }
    /// Name for `engineInfo()`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx2 => "AVX2+FMA",
            Isa::Portable => "portable",
        }
    }
}

/// The kernels this CPU runs (`generic` forces the portable one). Read once.
pub fn isa(generic: bool) -> Isa {
    #[cfg(target_arch = "x86_64")]
    if !generic
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        return Isa::Avx2;
    }
    let _ = generic;
    Isa::Portable
}

/// `B` `[k, n]` as strips of `NR` columns, strip `s` at `data[s * k * NR..]` laid out `[k][NR]`
/// (columns past `n` are zero), for kernel family `isa`.
pub struct PackedB {
    data: Vec<f32>,
    k: usize,
    n: usize,
    isa: Isa,
}

impl PackedB {
    /// Inner dimension `k`.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Columns `n`.
    pub fn n(&self) -> usize {
        self.n
    }
}

/// Packs `b` (logical `[k, n]`, covered by `b.data`) for kernels `isa`; strips in parallel when
/// the operand is large.
pub fn pack_b(b: &Operand, k: usize, n: usize, isa: Isa) -> PackedB {
    let data = match isa.nr() {
        16 => pack_b_n::<16>(b, k, n),
        8 => pack_b_n::<8>(b, k, n),
        nr => unreachable!("no kernel has NR = {nr}"),
    };
    PackedB { data, k, n, isa }
}

/// [`pack_b`] for strips of `NR` columns (a constant, so that the copies are inlined moves).
fn pack_b_n<const NR: usize>(b: &Operand, k: usize, n: usize) -> Vec<f32> {
    let mut data = vec![0f32; n.div_ceil(NR) * k * NR];
    let fill = |(s, panel): (usize, &mut [f32])| {
        let cols = NR.min(n - s * NR);
        if b.trans {
            // B(p, j) = data[j * ld + p]: each column is contiguous in the source.
            let src: [&[f32]; NR] = std::array::from_fn(|c| {
                let j = s * NR + c.min(cols - 1);
                &b.data[j * b.ld..j * b.ld + k]
            });
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                for (c, x) in row[..cols].iter_mut().enumerate() {
                    *x = src[c][p];
                }
            }
        } else if cols == NR {
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                let at = p * b.ld + s * NR;
                row.copy_from_slice(&b.data[at..at + NR]);
            }
        } else {
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                let at = p * b.ld + s * NR;
                row[..cols].copy_from_slice(&b.data[at..at + cols]);
            }
        }
    };
    let strip = (k * NR).max(1);
    if k * n < PAR_MIN_PACK {
        data.chunks_mut(strip).enumerate().for_each(fill);
    } else {
        data.par_chunks_mut(strip).enumerate().for_each(fill);
    }
    data
}

/// `out[m, n] = a @ b` for `a` covering a logical `[m, b.k]` matrix (row-major or transposed);
/// `out` points to `m * n` writable floats, all of which are written (zeros when `k` is 0).
pub fn gemm(a: &Operand, m: usize, b: &PackedB, out: *mut f32) {
    let (k, n, isa) = (b.k, b.n, b.isa);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // SAFETY: `out` holds m * n floats (caller's contract).
        unsafe { std::ptr::write_bytes(out, 0, m * n) };
        return;
    }
    let (mr, nr) = (isa.mr(), isa.nr());
    let strips = n.div_ceil(nr);
    let threads = if m * n * k < PAR_MIN_MACS {
        1
    } else {
        rayon::current_num_threads().max(1)
    };
    // Up to 4 tasks per thread, so that a thread slowed by other work on its core is caught up
    // by the others; row tasks first (each reads all of B once), column tasks for few rows.
    let want = (4 * threads).min((m * n * k / (PAR_MIN_MACS / 4)).max(1));
    let row_tasks = m.div_ceil(MC).clamp(1, want);
    let col_tasks = (want / row_tasks).clamp(1, strips);
    let rows_per = m.div_ceil(row_tasks).next_multiple_of(mr);
    let strips_per = strips.div_ceil(col_tasks);
    let base = out as usize;
    let task = |t: usize| {
        let (ri, ci) = (t / col_tasks, t % col_tasks);
        let rows = ri * rows_per..((ri + 1) * rows_per).min(m);
        let cols = ci * strips_per..((ci + 1) * strips_per).min(strips);
        if !rows.is_empty() && !cols.is_empty() {
            // Disjoint tasks write disjoint blocks of `out`.
            block(a, b, rows, cols, base as *mut f32);
        }
    };
    let tasks = row_tasks * col_tasks;
    if tasks == 1 {
        task(0);
    } else {
        (0..tasks).into_par_iter().for_each(task);
    }
}

/// Rows `rows` x strips `strips` of the product, written into `out` (row stride `b.n`).
fn block(
    a: &Operand,
    b: &PackedB,
    rows: std::ops::Range<usize>,
    strips: std::ops::Range<usize>,
    out: *mut f32,
) {
    let (k, n, isa) = (b.k, b.n, b.isa);
    let (mr, nr) = (isa.mr(), isa.nr());
    let nc_strips = NC / nr;
    let mut apack = vec![0f32; MC.next_multiple_of(mr) * KC];
    let mut edge = vec![0f32; mr * nr];
    for jc in strips.clone().step_by(nc_strips) {
        let jend = (jc + nc_strips).min(strips.end);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            for ic in rows.clone().step_by(MC) {
                let mc = MC.min(rows.end - ic);
                pack_a(a, ic, mc, pc, kc, mr, &mut apack);
                for s in jc..jend {
                    let bp = b.data[s * k * nr + pc * nr..].as_ptr();
                    let cols = nr.min(n - s * nr);
                    for ir in 0..mc.div_ceil(mr) {
                        let r = mr.min(mc - ir * mr);
                        let ap = apack[ir * kc * mr..].as_ptr();
                        let cp = out.wrapping_add((ic + ir * mr) * n + s * nr);
                        // SAFETY: the packed strips hold kc x mr and kc x nr floats; a full tile
                        // lies inside `out`, and a partial one goes through `edge` (mr x nr).
                        unsafe {
                            if r == mr && cols == nr {
                                kernel(isa, kc, ap, bp, cp, n, pc > 0);
                            } else {
                                let e = edge.as_mut_ptr();
                                for i in 0..r {
                                    for j in 0..cols {
                                        *e.add(i * nr + j) =
                                            if pc > 0 { *cp.add(i * n + j) } else { 0.0 };
                                    }
                                }
                                kernel(isa, kc, ap, bp, e, nr, true);
                                for i in 0..r {
                                    for j in 0..cols {
                                        *cp.add(i * n + j) = *e.add(i * nr + j);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Packs rows `r0..r0 + mc` and inner indices `p0..p0 + kc` of `a` into strips of `mr` rows,
/// strip `t` at `dst[t * kc * mr..]` laid out `[kc][mr]`, rows past `mc` zero.
fn pack_a(a: &Operand, r0: usize, mc: usize, p0: usize, kc: usize, mr: usize, dst: &mut [f32]) {
    match mr {
        6 => pack_a_n::<6>(a, r0, mc, p0, kc, dst),
        4 => pack_a_n::<4>(a, r0, mc, p0, kc, dst),
        _ => unreachable!("no kernel has MR = {mr}"),
    }
}

/// [`pack_a`] for strips of `MR` rows (a constant, so that the copies are inlined moves).
fn pack_a_n<const MR: usize>(
    a: &Operand,
    r0: usize,
    mc: usize,
    p0: usize,
    kc: usize,
    dst: &mut [f32],
) {
    for t in 0..mc.div_ceil(MR) {
        let d = &mut dst[t * kc * MR..(t + 1) * kc * MR];
        let rows = MR.min(mc - t * MR);
        let i0 = r0 + t * MR;
        if a.trans && rows == MR {
            // A(i, p) = data[p * ld + i]: the strip's rows are contiguous for each p.
            for (p, col) in d.chunks_exact_mut(MR).enumerate() {
                let at = (p0 + p) * a.ld + i0;
                col.copy_from_slice(&a.data[at..at + MR]);
            }
        } else if a.trans {
            for (p, col) in d.chunks_exact_mut(MR).enumerate() {
                let at = (p0 + p) * a.ld + i0;
                col[..rows].copy_from_slice(&a.data[at..at + rows]);
                col[rows..].fill(0.0);
            }
        } else {
            // Row i of the strip is contiguous in the source; rows past `rows` repeat the last
            // one and are then zeroed, so that the gather loop has a constant trip count.
            let src: [&[f32]; MR] = std::array::from_fn(|i| {
                let at = (i0 + i.min(rows - 1)) * a.ld + p0;
                &a.data[at..at + kc]
            });
            for (p, col) in d.chunks_exact_mut(MR).enumerate() {
                for (i, x) in col.iter_mut().enumerate() {
                    *x = src[i][p];
                }
                col[rows..].fill(0.0);
            }
        }
    }
}

/// One `MR x NR` tile: `c = a_strip @ b_strip` (`acc`: `c +=`), `c` with row stride `ldc`, on
/// the micro-kernels of `tile.rs` (a packed strip of A: `A(i, p) = a[p * MR + i]`).
///
/// # Safety
/// `a` holds `kc * MR` and `b` `kc * NR` floats; `c` addresses an `MR x NR` block at stride `ldc`.
#[inline]
unsafe fn kernel(
    isa: Isa,
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    acc: bool,
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => tile::avx2_packed(kc, a, b, c, ldc, acc),
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 => unreachable!("isa() gives Avx2 only on x86_64"),
        Isa::Portable => tile::portable::<f32, 4, 8>(4, kc, a, 1, 4, b, c, ldc, acc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random matrix of `len` values in [-1, 1).
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// Every kernel family, plain and transposed operands, odd shapes (edge tiles in both
    /// directions, k across KC blocks, m across MC blocks and tasks): each element within f32
    /// summation error of an f64 product, relative to the sum of |a||b| over its inner index.
    #[test]
    fn matches_f64_product_on_odd_shapes() {
        let dims = [1usize, 3, 17, 65, 257];
        let mut isas = vec![Isa::Portable];
        if isa(false) != Isa::Portable {
            isas.push(isa(false));
        }
        let mut seed = 1;
        for &isa in &isas {
            for &m in &dims {
                for &k in &dims {
                    for &n in &dims {
                        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)]
                        {
                            seed += 1;
                            check(isa, m, k, n, ta, tb, seed);
                        }
                    }
                }
            }
            // Row blocks past MC, several column blocks past NC, k past 2 KC blocks.
            check(isa, 2 * MC + 7, 2 * KC + 3, NC + 33, false, true, 7);
            check(isa, 301, 515, 99, true, false, 8);
        }
    }

    fn check(isa: Isa, m: usize, k: usize, n: usize, ta: bool, tb: bool, seed: u64) {
        let av = values(m * k, seed);
        let bv = values(k * n, seed + 1000);
        // Logical A(i, p): row-major [m, k] or the transpose of a row-major [k, m].
        let a_at = |i: usize, p: usize| if ta { av[p * m + i] } else { av[i * k + p] };
        let b_at = |p: usize, j: usize| if tb { bv[j * k + p] } else { bv[p * n + j] };
        let a = Operand {
            data: &av,
            trans: ta,
            ld: if ta { m } else { k },
        };
        let b = Operand {
            data: &bv,
            trans: tb,
            ld: if tb { k } else { n },
        };
        let pb = pack_b(&b, k, n, isa);
        let mut out = vec![f32::NAN; m * n];
        gemm(&a, m, &pb, out.as_mut_ptr());
        for i in 0..m {
            for j in 0..n {
                let (mut want, mut mag) = (0f64, 0f64);
                for p in 0..k {
                    let x = a_at(i, p) as f64 * b_at(p, j) as f64;
                    want += x;
                    mag += x.abs();
                }
                let got = out[i * n + j] as f64;
                // the worst-case bound of f32 summation (Higham, Accuracy and Stability, 3.1): k u with u = eps / 2
                let tol = k as f64 * f32::EPSILON as f64 * mag;
                assert!(
                    (got - want).abs() <= tol,
                    "{isa:?} [{m}, {k}] x [{k}, {n}] (trans {ta}, {tb}) at ({i}, {j}): {got} vs {want} (tol {tol})"
                );
            }
        }
    }

    /// k = 0 writes zeros; m = 0 or n = 0 writes nothing.
    #[test]
    fn empty_inner_dimension_gives_zeros() {
        let b = Operand {
            data: &[],
            trans: false,
            ld: 5,
        };
        let pb = pack_b(&b, 0, 5, isa(false));
        let a = Operand {
            data: &[],
            trans: false,
            ld: 1,
        };
        let mut out = vec![f32::NAN; 15];
        gemm(&a, 3, &pb, out.as_mut_ptr());
        assert!(out.iter().all(|&x| x == 0.0));
    }
}

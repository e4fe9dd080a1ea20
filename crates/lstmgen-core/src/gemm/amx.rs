//! bf16 matrix products on Intel AMX (Sapphire Rapids and later): operands rounded to bf16
//! (round to nearest even), products accumulated in f32 by `TDPBF16PS`, as in PyTorch's CPU
//! autocast. Tiles are 16 rows x 64 bytes: an A tile holds 16 rows x 32 bf16 of `A`, a B tile
//! 16 pairs of `B`'s rows x 16 columns ("VNNI" layout: the two k values of a column adjacent), a C
//! tile 16 x 16 f32. The kernel keeps a 32 x 32 block of C in four tiles and walks K in steps of 32.
//! Linux needs the process to ask for the tile state first (`arch_prctl(ARCH_REQ_XCOMP_PERM)`);
//! [`available`] does that once.

use super::Operand;
use rayon::prelude::*;
use std::arch::asm;
use std::sync::OnceLock;

/// Rows and columns of a C block (two tiles each way), and K per tile step.
const BLK: usize = 32;
/// bf16 elements per packed 32 x 32 panel step (two 16 x 32 tiles).
const STEP: usize = BLK * BLK;

/// Whether this CPU and OS run AMX-BF16: CPUID leaf 7 (AMX-TILE, AMX-BF16) and the kernel's
/// permission for the tile data state. Checked once per process.
pub fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            let leaf = std::arch::x86_64::__cpuid_count(7, 0);
            let (amx_bf16, amx_tile) = (leaf.edx & (1 << 22) != 0, leaf.edx & (1 << 24) != 0);
            if !(amx_bf16 && amx_tile) {
                return false;
            }
            const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
            const XFEATURE_XTILEDATA: i64 = 18;
            const SYS_ARCH_PRCTL: i64 = 158;
            let ret: i64;
            // SAFETY: arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA) only changes this process's
            // permission to use the AMX state; it reads no memory.
            unsafe {
                asm!("syscall", inlateout("rax") SYS_ARCH_PRCTL => ret,
                     in("rdi") ARCH_REQ_XCOMP_PERM, in("rsi") XFEATURE_XTILEDATA,
                     lateout("rcx") _, lateout("r11") _, options(nostack));
            }
            ret == 0
        }
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        false
    })
}

/// f32 -> bf16 bits, round to nearest even; NaN stays NaN. Branch-free, so loops vectorize.
#[inline(always)]
pub fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    let rounded = (b.wrapping_add(0x7fff + ((b >> 16) & 1))) >> 16;
    let nan = (b & 0x7fff_ffff) > 0x7f80_0000;
    (if nan { (b >> 16) | 0x40 } else { rounded }) as u16
}

/// `dst[i] = to_bf16(src[i])`, vectorized (AVX-512 when present).
fn convert(src: &[f32], dst: &mut [u16]) {
    #[inline(always)]
    fn body(src: &[f32], dst: &mut [u16]) {
        for (d, &x) in dst.iter_mut().zip(src) {
            *d = to_bf16(x);
        }
    }
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn avx512(src: &[f32], dst: &mut [u16]) {
        body(src, dst)
    }
    if std::arch::is_x86_feature_detected!("avx512bw") {
        // SAFETY: the CPU has the features this copy was compiled for.
        return unsafe { avx512(src, dst) };
    }
    body(src, dst)
}

/// `B` `[k, n]` packed for the kernel: per 32-column block, per 32-row step, two B tiles.
pub struct PackedB {
    data: Vec<u16>,
    k: usize,
    n: usize,
}

impl PackedB {
    pub fn k(&self) -> usize {
        self.k
    }
    pub fn n(&self) -> usize {
        self.n
    }
    fn ksteps(&self) -> usize {
        self.k.div_ceil(BLK)
    }
    fn panel(&self, nb: usize) -> &[u16] {
        let len = self.ksteps() * STEP;
        &self.data[nb * len..(nb + 1) * len]
    }
}

/// Packs `b` (logical `[k, n]`), zero-padding k and n to multiples of 32. Parallel over columns.
/// Reads runs of contiguous source elements: rows of `B` when it is row-major, columns when it is
/// a transposed view.
#[inline(never)]
pub fn pack_b(b: &Operand, k: usize, n: usize) -> PackedB {
    let ks = k.div_ceil(BLK);
    let mut data = vec![0u16; n.div_ceil(BLK) * ks * STEP];
    data.par_chunks_mut(ks * STEP)
        .enumerate()
        .for_each(|(nb, panel)| {
            let cols = (n - nb * BLK).min(BLK);
            if b.trans {
                // Column j of B is contiguous: convert it, then scatter the k pairs.
                let mut col = vec![0u16; k];
                for c in 0..cols {
                    let j = nb * BLK + c;
                    let start = b.at(0, j);
                    convert(&b.data[start..start + k], &mut col);
                    let (t, cc) = (c / 16, c % 16);
                    for (kk, &v) in col.iter().enumerate() {
                        let (s, r) = (kk / BLK, kk % BLK);
                        panel[s * STEP + t * 512 + (r / 2) * 32 + cc * 2 + r % 2] = v;
                    }
                }
            }
        });
    if !b.trans {
        // Row kk of B is contiguous: convert it whole (sequential reads), then scatter it over
        // every column block's step kk / 32. Parallel over steps: disjoint parts of `data`.
        let base = data.as_mut_ptr() as usize;
        (0..ks).into_par_iter().for_each(|s| {
            let mut row = vec![0u16; n];
            for kk in s * BLK..(s * BLK + BLK).min(k) {
                let start = b.at(kk, 0);
                convert(&b.data[start..start + n], &mut row);
                let r = kk % BLK;
                for (j, &v) in row.iter().enumerate() {
                    let (nb, c) = (j / BLK, j % BLK);
                    let at = nb * ks * STEP
                        + s * STEP
                        + (c / 16) * 512
                        + (r / 2) * 32
                        + (c % 16) * 2
                        + r % 2;
                    // SAFETY: `at` < data.len() (nb < nbs, s < ks); step s is written only here.
                    unsafe { *(base as *mut u16).add(at) = v };
                }
            }
        });
    }
    PackedB { data, k, n }
}

/// Packs `a` (logical `[m, k]`): per 32-row block, per 32-column step, 32 rows x 32 bf16
/// (two A tiles of 16 rows, one after the other). Parallel over row blocks.
#[inline(never)]
fn pack_a(a: &Operand, m: usize, k: usize) -> Vec<u16> {
    let ks = k.div_ceil(BLK);
    let mut data = vec![0u16; m.div_ceil(BLK) * ks * STEP];
    if a.trans {
        // Column kk of the logical A is a contiguous row of the stored transpose: convert it
        // whole, then scatter it over every row block's step kk / 32. Parallel over steps.
        let base = data.as_mut_ptr() as usize;
        (0..ks).into_par_iter().for_each(|s| {
            let mut col = vec![0u16; m];
            for kk in s * BLK..(s * BLK + BLK).min(k) {
                let start = a.at(0, kk);
                convert(&a.data[start..start + m], &mut col);
                for (i, &v) in col.iter().enumerate() {
                    let at = (i / BLK) * ks * STEP + s * STEP + (i % BLK) * BLK + kk % BLK;
                    // SAFETY: `at` < data.len() (i < m, s < ks); step s is written only here.
                    unsafe { *(base as *mut u16).add(at) = v };
                }
            }
        });
        return data;
    }
    data.par_chunks_mut(ks * STEP)
        .enumerate()
        .for_each(|(mb, panel)| {
            let rows = (m - mb * BLK).min(BLK);
            let mut row = vec![0u16; k];
            for r in 0..rows {
                let start = a.at(mb * BLK + r, 0);
                convert(&a.data[start..start + k], &mut row);
                for (s, chunk) in row.chunks(BLK).enumerate() {
                    let d = s * STEP + r * BLK;
                    panel[d..d + chunk.len()].copy_from_slice(chunk);
                }
            }
        });
    data
}

/// Tile configuration (palette 1): eight tiles of 16 rows x 64 bytes.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

/// Loads the tile configuration for this thread; [`release`] undoes it.
unsafe fn configure() {
    let mut cfg = TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        colsb: [0; 16],
        rows: [0; 16],
    };
    for t in 0..8 {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    asm!("ldtilecfg [{}]", in(reg) &cfg, options(nostack));
}

unsafe fn release() {
    asm!("tilerelease", options(nostack, nomem));
}

/// C block `[32, 32]` at `c` with row stride `ldc` floats = A panel x B panel over `ksteps` steps
/// of 32. The next step's B tiles are prefetched while this step's products run.
unsafe fn kernel(a: *const u16, b: *const u16, ksteps: usize, c: *mut f32, ldc: usize) {
    asm!(
        "tilezero tmm0",
        "tilezero tmm1",
        "tilezero tmm2",
        "tilezero tmm3",
        options(nostack, nomem)
    );
    for s in 0..ksteps {
        let (ap, bp) = (a.add(s * STEP), b.add(s * STEP));
        let next = b.add((s + 1).min(ksteps - 1) * STEP) as *const i8;
        for line in 0..(STEP * 2 / 64) {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                next.add(line * 64),
            );
        }
        asm!(
            "tileloadd tmm4, [{a0} + {st}*1]",
            "tileloadd tmm5, [{a1} + {st}*1]",
            "tileloadd tmm6, [{b0} + {st}*1]",
            "tileloadd tmm7, [{b1} + {st}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            a0 = in(reg) ap, a1 = in(reg) ap.add(512),
            b0 = in(reg) bp, b1 = in(reg) bp.add(512),
            st = in(reg) 64usize,
            options(nostack, readonly),
        );
    }
    asm!(
        "tilestored [{c00} + {st}*1], tmm0",
        "tilestored [{c01} + {st}*1], tmm1",
        "tilestored [{c10} + {st}*1], tmm2",
        "tilestored [{c11} + {st}*1], tmm3",
        c00 = in(reg) c, c01 = in(reg) c.add(16),
        c10 = in(reg) c.add(16 * ldc), c11 = in(reg) c.add(16 * ldc + 16),
        st = in(reg) ldc * 4,
        options(nostack),
    );
}

/// `out[m, n] = a[m, k] @ b` with `a` rounded to bf16 and f32 accumulation. The caller has
/// checked [`available`], that `a` covers `[m, k]`, `b.k() == k`, and that `out` points to `m * n`
/// writable floats; every one of them is written.
pub fn gemm(a: &Operand, m: usize, b: &PackedB, out: *mut f32) {
    let (k, n) = (b.k, b.n);
    let pa = pack_a(a, m, k);
    let (mbs, nbs, ks) = (m.div_ceil(BLK), n.div_ceil(BLK), k.div_ceil(BLK));
    // Column blocks per cache chunk: keep the B panels a chunk uses within ~1 MiB of L2.
    let chunk = ((1 << 20) / (ks * STEP * 2)).clamp(1, nbs);
    let threads = rayon::current_num_threads().max(1);
    // Tasks: ranges of column blocks, or of row blocks when there are too few columns.
    let by_cols = nbs >= 2 * threads || nbs >= mbs;
    let tasks = if by_cols { nbs } else { mbs };
    let per = tasks.div_ceil(threads);
    let base = out as usize;
    (0..tasks.div_ceil(per)).into_par_iter().for_each(|t| {
        let r = t * per..((t + 1) * per).min(tasks);
        let (rows, cols) = if by_cols { (0..mbs, r) } else { (r, 0..nbs) };
        let mut c = [0f32; BLK * BLK];
        // SAFETY: `available()` granted the tile state; panels are ks steps long; each task
        // writes a disjoint block range of `out` (m x n, row stride n).
        unsafe {
            configure();
            let mut nb0 = cols.start;
            while nb0 < cols.end {
                let nb1 = (nb0 + chunk).min(cols.end);
                for mb in rows.clone() {
                    let ap = pa.as_ptr().add(mb * ks * STEP);
                    for nb in nb0..nb1 {
                        let (i0, j0) = (mb * BLK, nb * BLK);
                        let (h, w) = ((m - i0).min(BLK), (n - j0).min(BLK));
                        let dst = (base as *mut f32).add(i0 * n + j0);
                        if h == BLK && w == BLK {
                            // a whole block: the tiles go straight to the output
                            kernel(ap, b.panel(nb).as_ptr(), ks, dst, n);
                            continue;
                        }
                        kernel(ap, b.panel(nb).as_ptr(), ks, c.as_mut_ptr(), BLK);
                        for i in 0..h {
                            std::ptr::copy_nonoverlapping(
                                c.as_ptr().add(i * BLK),
                                dst.add(i * n),
                                w,
                            );
                        }
                    }
                }
                nb0 = nb1;
            }
            release();
        }
    });
}

//! The training recurrence of one LSTM layer on the CPU for small and mid hidden sizes, fused: per
//! timestep, the recurrent product and the cell in one pass over preallocated buffers, with the
//! recurrent weight packed once per call (4H x H floats: 256 KiB at H = 128, resident in L2).
//!
//! The per-step path of `lstm.rs` makes several candle tensors per timestep (the product, four
//! cell outputs, views), and the product packs its operands per call; at H = 128 that overhead
//! is as large as the arithmetic. Here every timestep writes straight into whole-sequence,
//! time-major buffers (`[T*B, 4H]` gates, `[T*B, H]` states), which then become the tensors the
//! backward pass and the weight-gradient products use, without a concatenation. The batch rows
//! are split into the same row groups as the per-step path (one per thread, no synchronisation
//! per timestep).
//!
//! Equations: those of `lstm.rs` and `ops/cell.rs` (PyTorch `nn.LSTM`, gates i, f, g, o; BPTT
//! after Graves 2013), resets as in `resets.rs`:
//! forward `z = x W_ih^T + b + h W_hh^T`, `c = f*c_prev + i*g`, `h = o*tanh(c)`;
//! backward `dc = dc_next + dh*o*(1-tanh(c)^2)`, `dz_i = dc*g*i(1-i)`, `dz_f = dc*c_prev*f(1-f)`,
//! `dz_g = dc*i*(1-g^2)`, `dz_o = dh*tanh(c)*o(1-o)`, `dc_prev = dc*f`, `dh_prev = dz W_hh`.
//!
//! The products run on `gemm/tile.rs`'s strip products (the weight packed into strips of 16
//! columns, the left operand read in place): the AVX2+FMA micro-kernel of `gemm/blocked.rs` for
//! f32 where the CPU has it and `LSTMGEN_CPU_KERNELS=generic` is not set; f64 (the gradient check)
//! and other CPUs on the portable tile of the same layout. `LSTMGEN_CPU_RECURRENCE=steps` turns the fused
//! path off (the per-step path then runs everywhere; the tests compare the two).

use crate::act::Act;
use crate::buf::{self, cpu_slice, on_cpu};
use crate::error::{Error, Result};
use crate::gemm::tile::{pack_strips, product};
use crate::gemm::Precision;
use crate::resets::Resets;
use candle_core::{DType, Device, Tensor};
use std::ops::Range;

/// Largest recurrent weight (4H x H floats, in bytes at f32) the fused path takes: H <= 512.
/// Measured on the 2-core EPYC (engine alone, CPU time fused / per-step path): 0.83x at H = 128
/// (batch 32; the weight stays in L2), 0.70x at H = 256, 0.72x at H = 512 (batch 64; from L3:
/// the tile has no K blocking). Larger layers take the per-step path, whose products block K.
const MAX_WEIGHT_BYTES: usize = 4 * 1024 * 1024;

/// Whether the fused path is turned off (`LSTMGEN_CPU_RECURRENCE=steps`, read once).
fn steps_only() -> bool {
    static STEPS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *STEPS.get_or_init(|| std::env::var("LSTMGEN_CPU_RECURRENCE").is_ok_and(|v| v == "steps"))
}

/// Whether the fused training recurrence computes a layer of `hidden` units in `dtype` on
/// `device` with products in `prec`: CPU, f32 or f64, f32 products, weight within
/// [`MAX_WEIGHT_BYTES`], not turned off.
pub(crate) fn applies(hidden: usize, dtype: DType, device: &Device, prec: Precision) -> bool {
    device.is_cpu()
        && matches!(dtype, DType::F32 | DType::F64)
        && prec == Precision::F32
        && 4 * hidden * hidden * 4 <= MAX_WEIGHT_BYTES
        && !steps_only()
}

/// What the fused forward pass keeps for [`backward`], all time-major (row `t * B + b`).
pub(crate) struct Cache {
    /// Activated gates (i, f, g, o) `[T*B, 4H]`.
    gates: Tensor,
    /// The cell state each step started from (zero where it reset) `[T*B, H]`.
    c_prev: Tensor,
    /// tanh of each step's cell state `[T*B, H]`.
    tanh_c: Tensor,
}

/// The outputs of [`forward`]: the layer output `[T*B, H]`, the hidden state each step used
/// `[T*B, H]` (h_{t-1}, zero where it reset: the left operand of W_hh's gradient), the final `h`
/// and `c` `[B, H]`, and the cache.
pub(crate) struct Forward {
    pub out: Tensor,
    pub h_prev: Tensor,
    pub h: Tensor,
    pub c: Tensor,
    pub cache: Cache,
}

/// A raw pointer to a whole-sequence buffer that the row groups write at disjoint rows.
#[derive(Clone, Copy)]
struct Shared<T>(*mut T);
// SAFETY: every group writes only its own rows of each buffer (disjoint ranges), and the buffers
// outlive the parallel section that writes them.
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// `len` elements from `start`.
    ///
    /// # Safety
    /// The range lies inside the buffer and no other thread accesses it meanwhile.
    #[allow(clippy::mut_from_ref)]
    unsafe fn at(&self, start: usize, len: usize) -> &mut [T] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

/// An uninitialised buffer of `len` elements as a vector of `T`. Every element is written before
/// it is read (each buffer's doc says by which step), and f32/f64 have no invalid bit patterns.
fn scratch<T: Act>(len: usize) -> Vec<T> {
    // SAFETY: f32 and f64 are plain data; the callers write every element before reading it.
    unsafe { buf::assume_init(buf::uninit::<T>(len)) }
}

/// Runs `f` with the contiguous CPU slice of `t` (made contiguous first when it is not).
fn with_slice<T: Act, R>(t: &Tensor, f: impl FnOnce(&[T]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (s, l) = t.storage_and_layout();
    let v = cpu_slice::<T>(&s, l)
        .ok_or_else(|| Error::Native("fused recurrence: operand is not a CPU tensor".into()))?;
    Ok(f(v))
}

/// The training forward pass of one layer: `xw` `[T*B, 4H]` (the input projection x W_ih^T),
/// `bias` `[4H]` (b_ih + b_hh, added here), `w_hh` `[4H, H]`, the state `h0`, `c0` `[B, H]`,
/// resets as in `lstm.rs`; `groups`: the row groups, one per thread.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    xw: &Tensor,
    bias: &Tensor,
    w_hh: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    seq_len: usize,
    resets: Option<&Resets>,
    groups: &[Range<usize>],
) -> Result<Forward> {
    match xw.dtype() {
        DType::F32 => forward_t::<f32>(xw, bias, w_hh, h0, c0, seq_len, resets, groups),
        DType::F64 => forward_t::<f64>(xw, bias, w_hh, h0, c0, seq_len, resets, groups),
        d => Err(Error::Native(format!("fused recurrence on {d:?}"))),
    }
}

#[allow(clippy::too_many_arguments)]
fn forward_t<T: Act + 'static>(
    xw: &Tensor,
    bias: &Tensor,
    w_hh: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    seq_len: usize,
    resets: Option<&Resets>,
    groups: &[Range<usize>],
) -> Result<Forward> {
    let (batch, hd) = h0.dims2()?;
    let h4 = 4 * hd;
    let rows = seq_len * batch;
    // W_hh^T [H, 4H] in strips: b(p, j) = w_hh[j, p]
    let w = with_slice::<T, _>(w_hh, |w| pack_strips(w, hd, h4, hd, true))?;
    let (h0, c0) = (
        with_slice::<T, _>(h0, |s| s.to_vec())?,
        with_slice::<T, _>(c0, |s| s.to_vec())?,
    );
    let bias = with_slice::<T, _>(bias, |s| s.to_vec())?;
    let xw = xw.contiguous()?;
    let (xs, xl) = xw.storage_and_layout();
    let xw_data = cpu_slice::<T>(&xs, xl)
        .ok_or_else(|| Error::Native("fused recurrence: xw is not a CPU tensor".into()))?;
    // Written by step t at rows t*B + group rows: every row of every step (the groups tile the
    // batch). `gates` receives the product, then xw and the bias, then the activations.
    let mut gates = scratch::<T>(rows * h4);
    let (mut h_prev, mut c_prev, mut tanh_c, mut out) = (
        scratch::<T>(rows * hd),
        scratch::<T>(rows * hd),
        scratch::<T>(rows * hd),
        scratch::<T>(rows * hd),
    );
    let (mut h_fin, mut c_fin) = (scratch::<T>(batch * hd), scratch::<T>(batch * hd));
    let ptr = |v: &mut Vec<T>| Shared(v.as_mut_ptr());
    let (pg, ph, pc, pt, po, phf, pcf) = (
        ptr(&mut gates),
        ptr(&mut h_prev),
        ptr(&mut c_prev),
        ptr(&mut tanh_c),
        ptr(&mut out),
        ptr(&mut h_fin),
        ptr(&mut c_fin),
    );
    crate::lstm::per_group(groups, |g| {
        let n = g.len();
        // the state of the group's rows: h (the product's left operand) and c
        let mut h = h0[g.start * hd..g.end * hd].to_vec();
        let mut c = c0[g.start * hd..g.end * hd].to_vec();
        for t in 0..seq_len {
            if let Some(r) = resets {
                for &b in r.rows_at(t).iter().filter(|b| g.contains(b)) {
                    let i = b - g.start;
                    h[i * hd..(i + 1) * hd].fill(T::zero());
                    c[i * hd..(i + 1) * hd].fill(T::zero());
                }
            }
            let r0 = t * batch + g.start;
            // SAFETY: rows r0..r0 + n of step t belong to this group alone.
            let (z, hp, cp, tc, o) = unsafe {
                (
                    pg.at(r0 * h4, n * h4),
                    ph.at(r0 * hd, n * hd),
                    pc.at(r0 * hd, n * hd),
                    pt.at(r0 * hd, n * hd),
                    po.at(r0 * hd, n * hd),
                )
            };
            hp.copy_from_slice(&h);
            cp.copy_from_slice(&c);
            product(&h, n, hd, hd, &w, h4, z, h4, false);
            for i in 0..n {
                let zr = &mut z[i * h4..(i + 1) * h4];
                let xr = &xw_data[(r0 + i) * h4..(r0 + i + 1) * h4];
                for ((z, &x), &b) in zr.iter_mut().zip(xr).zip(&bias) {
                    *z += x + b;
                }
                let (ifg, og) = zr.split_at_mut(3 * hd);
                let (if_, gg) = ifg.split_at_mut(2 * hd);
                T::sigmoid_in_place(if_);
                T::tanh_in_place(gg);
                T::sigmoid_in_place(og);
                let (ig, fg) = if_.split_at(hd);
                let cr = &mut c[i * hd..(i + 1) * hd];
                let tr = &mut tc[i * hd..(i + 1) * hd];
                for j in 0..hd {
                    cr[j] = fg[j] * cr[j] + ig[j] * gg[j];
                    tr[j] = cr[j];
                }
                T::tanh_in_place(tr);
                let hr = &mut h[i * hd..(i + 1) * hd];
                for j in 0..hd {
                    hr[j] = og[j] * tr[j];
                }
            }
            o.copy_from_slice(&h);
        }
        // SAFETY: the group's rows of the final state.
        unsafe {
            phf.at(g.start * hd, n * hd).copy_from_slice(&h);
            pcf.at(g.start * hd, n * hd).copy_from_slice(&c);
        }
        Ok(())
    })?;
    drop(xs);
    let dev = xw.device();
    Ok(Forward {
        out: Tensor::from_vec(out, (rows, hd), dev)?,
        h_prev: Tensor::from_vec(h_prev, (rows, hd), dev)?,
        h: Tensor::from_vec(h_fin, (batch, hd), dev)?,
        c: Tensor::from_vec(c_fin, (batch, hd), dev)?,
        cache: Cache {
            gates: Tensor::from_vec(gates, (rows, h4), dev)?,
            c_prev: Tensor::from_vec(c_prev, (rows, hd), dev)?,
            tanh_c: Tensor::from_vec(tanh_c, (rows, hd), dev)?,
        },
    })
}

/// Backpropagates `d_out` `[T*B, H]` through the recurrence of [`forward`] (same `w_hh`, resets
/// and groups); returns `dz` `[T*B, 4H]`, the gradient of the gates' pre-activations, time-major.
pub(crate) fn backward(
    cache: &Cache,
    w_hh: &Tensor,
    d_out: &Tensor,
    seq_len: usize,
    resets: Option<&Resets>,
    groups: &[Range<usize>],
) -> Result<Tensor> {
    match cache.gates.dtype() {
        DType::F32 => backward_t::<f32>(cache, w_hh, d_out, seq_len, resets, groups),
        DType::F64 => backward_t::<f64>(cache, w_hh, d_out, seq_len, resets, groups),
        d => Err(Error::Native(format!("fused recurrence on {d:?}"))),
    }
}

fn backward_t<T: Act + 'static>(
    cache: &Cache,
    w_hh: &Tensor,
    d_out: &Tensor,
    seq_len: usize,
    resets: Option<&Resets>,
    groups: &[Range<usize>],
) -> Result<Tensor> {
    let (rows, h4) = cache.gates.dims2()?;
    let hd = h4 / 4;
    let batch = rows / seq_len.max(1);
    // W_hh [4H, H] in strips: b(p, j) = w_hh[p, j]
    let w = with_slice::<T, _>(w_hh, |w| pack_strips(w, h4, hd, hd, false))?;
    let d_out = d_out.contiguous()?;
    let mut dz = scratch::<T>(rows * h4); // every row written by its step
    let ts = [&cache.gates, &cache.c_prev, &cache.tanh_c, &d_out];
    on_cpu::<T, _>(&ts, |s| {
        backward_groups(s, &w, &mut dz, hd, batch, seq_len, resets, groups)
    })
    .ok_or_else(|| Error::Native("fused recurrence: the cache is not on the CPU".into()))??;
    Ok(Tensor::from_vec(dz, (rows, h4), cache.gates.device())?)
}

/// The group loops of [`backward`] over the CPU slices `s` = (gates, c_prev, tanh_c, d_out) and
/// the packed `w`, writing every row of `dz`.
#[allow(clippy::too_many_arguments)]
fn backward_groups<T: Act + 'static>(
    s: &[&[T]],
    w: &[T],
    dz: &mut [T],
    hd: usize,
    batch: usize,
    seq_len: usize,
    resets: Option<&Resets>,
    groups: &[Range<usize>],
) -> Result<()> {
    let h4 = 4 * hd;
    let (gates, c_prev, tanh_c, dout) = (s[0], s[1], s[2], s[3]);
    let pdz = Shared(dz.as_mut_ptr());
    crate::lstm::per_group(groups, |g| {
        let n = g.len();
        let one = T::one();
        // dh flowing into step t from step t+1 (dz_{t+1} W_hh), and dc likewise; zero at the end
        let mut dh_rec = vec![T::zero(); n * hd];
        let mut dc = vec![T::zero(); n * hd];
        for t in (0..seq_len).rev() {
            let r0 = t * batch + g.start;
            // SAFETY: rows r0..r0 + n of step t belong to this group alone.
            let dzt = unsafe { pdz.at(r0 * h4, n * h4) };
            for i in 0..n {
                let (r, q) = ((r0 + i) * h4, (r0 + i) * hd);
                let a = &gates[r..r + h4];
                let dzr = &mut dzt[i * h4..(i + 1) * h4];
                for j in 0..hd {
                    let (ig, fg, gg, og) = (a[j], a[hd + j], a[2 * hd + j], a[3 * hd + j]);
                    let (tc, dh) = (tanh_c[q + j], dout[q + j] + dh_rec[i * hd + j]);
                    let dct = dc[i * hd + j] + dh * og * (one - tc * tc);
                    dzr[j] = dct * gg * ig * (one - ig);
                    dzr[hd + j] = dct * c_prev[q + j] * fg * (one - fg);
                    dzr[2 * hd + j] = dct * ig * (one - gg * gg);
                    dzr[3 * hd + j] = dh * tc * og * (one - og);
                    dc[i * hd + j] = dct * fg;
                }
            }
            if t > 0 {
                product(dzt, n, h4, h4, w, hd, &mut dh_rec, hd, false);
                if let Some(r) = resets {
                    for &b in r.rows_at(t).iter().filter(|b| g.contains(b)) {
                        let i = b - g.start;
                        dh_rec[i * hd..(i + 1) * hd].fill(T::zero());
                        dc[i * hd..(i + 1) * hd].fill(T::zero());
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lstm::{self, LayerState, LayerWeights};
    use crate::ops::cell::GateConsts;

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        let f = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
        crate::max_diff(&f(a), &f(b))
    }

    /// The fused path and the per-step path give the same layer outputs, final state and
    /// gradients (weights, bias, input), in f64 and f32, with and without resets (at the first
    /// and last steps, consecutive steps, both row groups), for hidden sizes that fill the
    /// product's strips and that leave partial ones.
    #[test]
    fn fused_matches_the_per_step_path() {
        let dev = Device::Cpu;
        let (batch, seq, inp) = (17, 6, 5);
        for dtype in [DType::F64, DType::F32] {
            for hd in [5, 16] {
                let r = |rows: usize, cols: usize, seed: f64| {
                    let v: Vec<f64> = (0..rows * cols)
                        .map(|i| (i as f64 * 0.737 + seed).sin() * 0.8)
                        .collect();
                    Tensor::from_vec(v, (rows, cols), &dev)
                        .unwrap()
                        .to_dtype(dtype)
                        .unwrap()
                };
                let (w_ih, w_hh) = (r(4 * hd, inp, 0.1), r(4 * hd, hd, 0.2));
                let (b_ih, b_hh) = (
                    r(1, 4 * hd, 0.3).flatten_all().unwrap(),
                    r(1, 4 * hd, 0.4).flatten_all().unwrap(),
                );
                let w = LayerWeights {
                    w_ih: &w_ih,
                    w_hh: &w_hh,
                    b_ih: &b_ih,
                    b_hh: &b_hh,
                    w_hr: None,
                    packed: None,
                };
                let consts = GateConsts::new(hd, dtype, &dev).unwrap();
                let x = r(seq * batch, inp, 0.5);
                let state = LayerState {
                    h: r(batch, hd, 0.6),
                    c: r(batch, hd, 0.7),
                };
                let d_out = r(seq * batch, hd, 0.8);
                let bias = (&b_ih + &b_hh).unwrap();
                let mut ids = vec![3u32; batch * seq];
                for (b, t) in [(0, 0), (2, 5), (9, 2), (9, 3), (16, 1), (16, 4)] {
                    ids[b * seq + t] = 1;
                }
                let found = Resets::find(&ids, batch, seq, Some(1), dtype, &dev)
                    .unwrap()
                    .unwrap();
                let tol = if dtype == DType::F64 { 1e-12 } else { 2e-5 };
                for resets in [None, Some(&found)] {
                    let (fo, fc) = lstm::fused(&w, &bias, &x, &state, seq, resets).unwrap();
                    let (so, sc) = lstm::run_steps(
                        &w,
                        &consts,
                        &bias,
                        &x,
                        &state,
                        seq,
                        Precision::F32,
                        resets,
                        true,
                    )
                    .unwrap();
                    for (a, b) in [
                        (&fo.out, &so.out),
                        (&fo.state.h, &so.state.h),
                        (&fo.state.c, &so.state.c),
                    ] {
                        assert!(
                            max_diff(a, b) < tol,
                            "{dtype:?} H={hd}: forward {}",
                            max_diff(a, b)
                        );
                    }
                    let back = |c| {
                        lstm::backward(&w, &consts, &c, &d_out, Precision::F32, resets).unwrap()
                    };
                    let (gf, gs) = (back(fc.unwrap()), back(sc.unwrap()));
                    for (a, b) in [
                        (&gf.w_ih, &gs.w_ih),
                        (&gf.w_hh, &gs.w_hh),
                        (&gf.bias, &gs.bias),
                        (&gf.dx, &gs.dx),
                    ] {
                        assert!(
                            max_diff(a, b) < tol,
                            "{dtype:?} H={hd}: gradient {}",
                            max_diff(a, b)
                        );
                    }
                }
            }
        }
    }
}

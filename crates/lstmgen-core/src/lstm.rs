//! One LSTM layer over a whole sequence: forward with the input projection as one GEMM before the
//! recurrent loop, and backward through time (BPTT) with the weight gradients as GEMMs after it.
//!
//! Equations (PyTorch `nn.LSTM`, gate order i, f, g, o; backward after Graves 2013):
//! `z = W_ih x + W_hh h + b_ih + b_hh`, `c' = f*c + i*g`, `h' = o*tanh(c')`; with a projection
//! (`nn.LSTM(proj_size=P)`), `h' = W_hr (o*tanh(c'))`, so `h` (the output, the recurrent input
//! and the next layer's input) is P wide while `c` stays H wide. Backward through the projection:
//! `dr = dh W_hr` for `r = o*tanh(c)`, `dW_hr = sum_t dh_t^T r_t`.
//! Tensors are time-major: a sequence is `[seqLen * batch, features]`, row `t * batch + b`.

use crate::cuda_recurrence;
use crate::error::{Error, Result};
use crate::gemm::{self, Precision};
use crate::ops::cell::{Backward, Forward, GateConsts};
use crate::ops::rows::{AddBias, SumRows};
use crate::ops::run;
use crate::recurrence;
use crate::resets::{masked, Resets};
use candle_core::{Device, Tensor};
use rayon::prelude::*;
use std::ops::Range;

/// The weights of one layer: `w_ih` `[4H, in]`, `w_hh` `[4H, out]`, `b_ih`, `b_hh` `[4H]`, and
/// the projection `w_hr` `[P, H]` (out = P) or None (out = H).
pub(crate) struct LayerWeights<'a> {
    pub w_ih: &'a Tensor,
    pub w_hh: &'a Tensor,
    pub b_ih: &'a Tensor,
    pub b_hh: &'a Tensor,
    pub w_hr: Option<&'a Tensor>,
    /// `w_ih^T` and `w_hh^T` already packed for the products (inference with unchanged weights),
    /// or None to pack them per call.
    pub packed: Option<&'a PackedLayer>,
}

/// A layer's transposed weights prepared once for many forward calls (sampling).
pub(crate) struct PackedLayer {
    pub w_ih_t: gemm::Packed,
    pub w_hh_t: gemm::Packed,
    pub w_hr_t: Option<gemm::Packed>,
}

impl PackedLayer {
    /// Packs `w_ih^T`, `w_hh^T` and `w_hr^T` of `w` for products in precision `prec`.
    pub(crate) fn new(w: &LayerWeights, prec: Precision) -> Result<Self> {
        Ok(Self {
            w_ih_t: gemm::pack(&w.w_ih.t()?, prec)?,
            w_hh_t: gemm::pack(&w.w_hh.t()?, prec)?,
            w_hr_t: w.w_hr.map(|r| gemm::pack(&r.t()?, prec)).transpose()?,
        })
    }
}

/// What the backward pass needs from the forward pass of one layer. O(seqLen * batch * 6H) floats.
pub(crate) struct LayerCache {
    /// Layer input `[T*B, in]`.
    x: Tensor,
    /// The recurrence's per-step values, from whichever path computed the forward pass.
    steps: Steps,
    /// Hidden state before each step, stacked `[T*B, out]` (h_{t-1}).
    h_prev: Tensor,
    seq_len: usize,
}

/// The per-step values of [`LayerCache`]: per row group of the per-step path, the whole-sequence
/// buffers of the fused CPU path (`recurrence.rs`) with its row groups, or the whole-sequence
/// tensors of the persistent CUDA recurrence (activated gates `[T*B, 4H]`, the cell state each
/// step used and tanh(c_t) `[T*B, H]`, as its backward takes them) with the same values as one
/// row group for the per-step backward where the persistent one does not fit.
enum Steps {
    Groups(Vec<GroupCache>),
    Fused(recurrence::Cache, Vec<Range<usize>>),
    Persistent([Tensor; 3], Vec<GroupCache>),
}

/// Per-step values of one group of batch rows.
struct GroupCache {
    rows: Range<usize>,
    /// Activated gates per step, each `[rows, 4H]`.
    gates: Vec<Tensor>,
    /// Cell state before each step, each `[rows, H]` (c_{t-1}).
    c_prev: Vec<Tensor>,
    /// tanh(c_t) per step, each `[rows, H]`.
    tanh_c: Vec<Tensor>,
    /// With a projection, `o_t * tanh(c_t)` per step (its input), each `[rows, H]`; else empty.
    r: Vec<Tensor>,
}

/// Smallest group of batch rows worth a thread of its own.
const MIN_GROUP_ROWS: usize = 8;

/// Contiguous groups of batch rows that run the recurrence independently, one per CPU thread:
/// rows do not interact within a layer, so each thread carries its rows through all timesteps
/// with no synchronisation per step. One group on other devices or for small batches.
fn row_groups(batch: usize, device: &Device) -> Vec<Range<usize>> {
    let threads = if device.is_cpu() {
        rayon::current_num_threads()
    } else {
        1
    };
    let groups = threads.min(batch / MIN_GROUP_ROWS).max(1);
    let per = batch.div_ceil(groups);
    (0..groups)
        .map(|g| g * per..((g + 1) * per).min(batch))
        .filter(|r| !r.is_empty())
        .collect()
}

/// Runs `f` on every group, in parallel when there is more than one; results in group order.
pub(crate) fn per_group<G: Sync, R: Send>(
    groups: &[G],
    f: impl Fn(&G) -> Result<R> + Sync + Send,
) -> Result<Vec<R>> {
    if groups.len() == 1 {
        return Ok(vec![f(&groups[0])?]);
    }
    groups.par_iter().map(f).collect()
}

/// The pieces `parts[g][t]` (group g, step t) as one time-major tensor `[T*B, ..]`.
fn time_major(parts: &[Vec<Tensor>], seq_len: usize) -> Result<Tensor> {
    let pieces: Vec<&Tensor> = (0..seq_len)
        .flat_map(|t| parts.iter().map(move |p| &p[t]))
        .collect();
    Ok(Tensor::cat(&pieces, 0)?)
}

/// Gradients of one layer's parameters and of its input.
pub(crate) struct LayerGrads {
    pub w_ih: Tensor,
    pub w_hh: Tensor,
    /// Gradient of `b_ih` and of `b_hh` (identical, since both enter z the same way).
    pub bias: Tensor,
    /// Gradient w.r.t. the layer input `[T*B, in]`.
    pub dx: Tensor,
    /// Gradient of the projection `w_hr` `[P, H]` (None without one).
    pub w_hr: Option<Tensor>,
}

/// Hidden and cell state of one layer: `h` `[batch, out]`, `c` `[batch, H]`.
#[derive(Clone)]
pub(crate) struct LayerState {
    pub h: Tensor,
    pub c: Tensor,
}

/// A layer's outputs over a sequence: `out` `[T*B, out]` (h of every step) and the final state.
pub(crate) struct LayerOutput {
    pub out: Tensor,
    pub state: LayerState,
}

/// Runs one layer over `x` `[T*B, in]` from `state` (inference: nothing kept for a backward pass),
/// the state reset where `resets` say (see [`crate::resets`]).
pub(crate) fn forward(
    w: &LayerWeights,
    consts: &GateConsts,
    x: &Tensor,
    state: &LayerState,
    seq_len: usize,
    prec: Precision,
    resets: Option<&Resets>,
) -> Result<LayerOutput> {
    Ok(run_layer(w, consts, x, state, seq_len, prec, resets, false)?.0)
}

/// Runs one layer over `x` `[T*B, in]` from `state` for training: also what [`backward`] needs.
/// The state resets where `resets` say; [`backward`] takes the same `resets`.
pub(crate) fn forward_train(
    w: &LayerWeights,
    consts: &GateConsts,
    x: &Tensor,
    state: &LayerState,
    seq_len: usize,
    prec: Precision,
    resets: Option<&Resets>,
) -> Result<(LayerOutput, LayerCache)> {
    let (output, cache) = run_layer(w, consts, x, state, seq_len, prec, resets, true)?;
    let cache =
        cache.ok_or_else(|| Error::Native("the training recurrence kept no cache".into()))?;
    Ok((output, cache))
}

/// The recurrence of [`forward`] and [`forward_train`]; with `keep`, the cache for [`backward`].
/// Training on the CPU with a small or mid hidden size and no projection takes the fused path
/// (`recurrence.rs`), the rest [`run_steps`].
#[allow(clippy::too_many_arguments)]
fn run_layer(
    w: &LayerWeights,
    consts: &GateConsts,
    x: &Tensor,
    state: &LayerState,
    seq_len: usize,
    prec: Precision,
    resets: Option<&Resets>,
    keep: bool,
) -> Result<(LayerOutput, Option<LayerCache>)> {
    let bias = (w.b_ih + w.b_hh)?;
    if keep
        && w.packed.is_none()
        && w.w_hr.is_none()
        && recurrence::applies(w.w_hh.dim(1)?, x.dtype(), x.device(), prec)
    {
        return fused(w, &bias, x, state, seq_len, resets);
    }
    run_steps(w, consts, &bias, x, state, seq_len, prec, resets, keep)
}

/// [`run_layer`] one timestep at a time on candle tensors (any device, dtype and precision).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_steps(
    w: &LayerWeights,
    consts: &GateConsts,
    bias: &Tensor,
    x: &Tensor,
    state: &LayerState,
    seq_len: usize,
    prec: Precision,
    resets: Option<&Resets>,
    keep: bool,
) -> Result<(LayerOutput, Option<LayerCache>)> {
    let batch = state.h.dim(0)?;
    // [T*B, 4H]: the input projection of all steps as one product
    let xw = run(&AddBias {
        x: &match w.packed {
            Some(p) => gemm::matmul_packed(x, &p.w_ih_t)?,
            None => gemm::matmul(x, &w.w_ih.t()?, prec)?,
        },
        b: bias,
    })?;
    // the persistent recurrence has no projection
    if w.w_hr.is_none() {
        if let Some(r) = persistent_layer(w, x, &xw, state, seq_len, resets, keep) {
            return r;
        }
    }
    let (own, own_hr);
    let (w_hh_t, w_hr_t) = match w.packed {
        Some(p) => (&p.w_hh_t, p.w_hr_t.as_ref()),
        None => {
            own = gemm::pack(&w.w_hh.t()?, prec)?; // packed once, used at every step
            own_hr = w.w_hr.map(|r| gemm::pack(&r.t()?, prec)).transpose()?;
            (&own, own_hr.as_ref())
        }
    };
    let groups = row_groups(batch, x.device());
    let runs = per_group(&groups, |rows| {
        let n = rows.len();
        let (mut h, mut c) = (
            state.h.narrow(0, rows.start, n)?,
            state.c.narrow(0, rows.start, n)?,
        );
        let mut outs = Vec::with_capacity(seq_len);
        let mut cache = GroupCache {
            rows: rows.clone(),
            gates: Vec::new(),
            c_prev: Vec::new(),
            tanh_c: Vec::new(),
            r: Vec::new(),
        };
        for t in 0..seq_len {
            let m = resets.map(|r| r.at(t, rows)).transpose()?.flatten();
            h = masked(h, m.as_ref())?;
            c = masked(c, m.as_ref())?;
            let zh = gemm::matmul_packed(&h, w_hh_t)?;
            let zx = xw.narrow(0, t * batch + rows.start, n)?;
            let step = run(&Forward {
                zx: &zx,
                zh: &zh,
                c_prev: &c,
                consts,
            })?;
            let h_next = match w_hr_t {
                Some(p) => gemm::matmul_packed(&step.h, p)?,
                None => step.h.clone(),
            };
            if keep {
                cache.gates.push(step.gates);
                cache.c_prev.push(c);
                cache.tanh_c.push(step.tanh_c);
                if w_hr_t.is_some() {
                    cache.r.push(step.h);
                }
            }
            outs.push(h_next.clone());
            h = h_next;
            c = step.c;
        }
        Ok((outs, LayerState { h, c }, cache))
    })?;
    let outs: Vec<Vec<Tensor>> = runs.iter().map(|r| r.0.clone()).collect();
    let out = time_major(&outs, seq_len)?;
    let h = Tensor::cat(&runs.iter().map(|r| &r.1.h).collect::<Vec<_>>(), 0)?;
    let c = Tensor::cat(&runs.iter().map(|r| &r.1.c).collect::<Vec<_>>(), 0)?;
    let cache = if keep {
        // Built while the per-step outputs are alive (freeing them first fragments the heap: +10%
        // peak memory).
        let h_prev = h_prev(&state.h, &out, seq_len, resets)?;
        let groups = runs.into_iter().map(|r| r.2).collect();
        Some(LayerCache {
            x: x.clone(),
            steps: Steps::Groups(groups),
            h_prev,
            seq_len,
        })
    } else {
        None
    };
    Ok((
        LayerOutput {
            out,
            state: LayerState { h, c },
        },
        cache,
    ))
}

/// h_{t-1} for every step `[T*B, out]`: `h0` followed by the outputs `out` of steps 0..T-1, zero
/// where the state reset (the state each step used).
fn h_prev(h0: &Tensor, out: &Tensor, seq_len: usize, resets: Option<&Resets>) -> Result<Tensor> {
    let batch = h0.dim(0)?;
    let h_prev = if seq_len > 1 {
        Tensor::cat(&[h0, &out.narrow(0, 0, (seq_len - 1) * batch)?], 0)?
    } else {
        h0.clone()
    };
    masked(h_prev, resets.map(Resets::keep))
}

/// The recurrence of [`run_layer`] as one persistent CUDA launch ([`crate::cuda_recurrence`]) from the
/// input projection `xw` `[T*B, 4H]`, or `None` where it does not apply. No projection (`w_hr`).
fn persistent_layer(
    w: &LayerWeights,
    x: &Tensor,
    xw: &Tensor,
    state: &LayerState,
    seq_len: usize,
    resets: Option<&Resets>,
    keep: bool,
) -> Option<Result<(LayerOutput, Option<LayerCache>)>> {
    let launched = cuda_recurrence::forward(
        xw,
        w.w_hh,
        &state.h,
        &state.c,
        resets.map(Resets::keep),
        seq_len,
        keep,
    )?;
    Some(launched.and_then(|r| {
        let cache = match r.cache {
            Some(seq) => {
                let batch = state.h.dim(0)?;
                let steps = |t: &Tensor| -> Result<Vec<Tensor>> {
                    (0..seq_len)
                        .map(|s| Ok(t.narrow(0, s * batch, batch)?))
                        .collect()
                };
                let group = GroupCache {
                    rows: 0..batch,
                    gates: steps(&seq[0])?,
                    c_prev: steps(&seq[1])?,
                    tanh_c: steps(&seq[2])?,
                    r: Vec::new(),
                };
                Some(LayerCache {
                    x: x.clone(),
                    h_prev: h_prev(&state.h, &r.out, seq_len, resets)?,
                    steps: Steps::Persistent(seq, vec![group]),
                    seq_len,
                })
            }
            None => None,
        };
        let state = LayerState { h: r.h, c: r.c };
        Ok((LayerOutput { out: r.out, state }, cache))
    }))
}

/// [`run_layer`] for training on the fused recurrence (`recurrence.rs`; no projection).
pub(crate) fn fused(
    w: &LayerWeights,
    bias: &Tensor,
    x: &Tensor,
    state: &LayerState,
    seq_len: usize,
    resets: Option<&Resets>,
) -> Result<(LayerOutput, Option<LayerCache>)> {
    let xw = gemm::matmul(x, &w.w_ih.t()?, Precision::F32)?; // [T*B, 4H], bias added per step
    let groups = row_groups(state.h.dim(0)?, x.device());
    let f = recurrence::forward(
        &xw, bias, w.w_hh, &state.h, &state.c, seq_len, resets, &groups,
    )?;
    let cache = LayerCache {
        x: x.clone(),
        steps: Steps::Fused(f.cache, groups),
        h_prev: f.h_prev,
        seq_len,
    };
    let state = LayerState { h: f.h, c: f.c };
    Ok((LayerOutput { out: f.out, state }, Some(cache)))
}

/// Backpropagates `d_out` `[T*B, out]` (gradient of the loss w.r.t. this layer's outputs) through
/// time. The state handed in from the previous batch is treated as a constant (truncated BPTT);
/// nothing flows back through a reset (`resets`: those of the forward pass).
pub(crate) fn backward(
    w: &LayerWeights,
    consts: &GateConsts,
    cache: &LayerCache,
    d_out: &Tensor,
    prec: Precision,
    resets: Option<&Resets>,
) -> Result<LayerGrads> {
    let seq_len = cache.seq_len;
    let (dz, w_hr) = match &cache.steps {
        Steps::Fused(fc, groups) => (
            recurrence::backward(fc, w.w_hh, d_out, seq_len, resets, groups)?,
            None,
        ),
        Steps::Persistent([gates, c_used, tanh_c], g) => {
            let keep = resets.map(Resets::keep);
            match cuda_recurrence::backward(w.w_hh, gates, c_used, tanh_c, d_out, keep, seq_len) {
                Some(dz) => (dz?, None),
                None => backward_steps(w, consts, g, d_out, seq_len, prec, resets)?,
            }
        }
        Steps::Groups(g) => backward_steps(w, consts, g, d_out, seq_len, prec, resets)?,
    };
    weight_grads(w, cache, &dz, w_hr, prec)
}

/// The per-step path of [`backward`]: `dz` `[T*B, 4H]` from the per-group caches, and the
/// projection's gradient when the layer has one.
fn backward_steps(
    w: &LayerWeights,
    consts: &GateConsts,
    groups: &[GroupCache],
    d_out: &Tensor,
    seq_len: usize,
    prec: Precision,
    resets: Option<&Resets>,
) -> Result<(Tensor, Option<Tensor>)> {
    let batch = d_out.dim(0)? / seq_len;
    let w_hh = gemm::pack(w.w_hh, prec)?;
    let w_hr = w.w_hr.map(|r| gemm::pack(r, prec)).transpose()?;
    let runs = per_group(groups, |gc| {
        let rows = &gc.rows;
        let n = rows.len();
        let mut dh_next: Option<Tensor> = None;
        let mut dc_next: Option<Tensor> = None;
        let mut dz_rev = Vec::with_capacity(seq_len);
        // with a projection: the gradient w.r.t. each step's projected h, for dW_hr
        let mut dh_rev = Vec::new();
        let zero_h = match &w_hr {
            Some(_) => Some(gc.tanh_c[0].zeros_like()?),
            None => None,
        };
        for t in (0..seq_len).rev() {
            let dh_out = d_out.narrow(0, t * batch + rows.start, n)?;
            let g = match &w_hr {
                None => run(&Backward {
                    gates: &gc.gates[t],
                    c_prev: &gc.c_prev[t],
                    tanh_c: &gc.tanh_c[t],
                    dh_out: &dh_out,
                    next: dh_next.as_ref().zip(dc_next.as_ref()),
                    consts,
                })?,
                Some(hr) => {
                    let dh = match &dh_next {
                        Some(d) => (dh_out + d)?,
                        None => dh_out,
                    };
                    let dr = gemm::matmul_packed(&dh, hr)?; // [rows, H]
                    dh_rev.push(dh);
                    let zero = zero_h.as_ref().ok_or_else(|| {
                        Error::Native("the projection's backward has no zero state".into())
                    })?;
                    run(&Backward {
                        gates: &gc.gates[t],
                        c_prev: &gc.c_prev[t],
                        tanh_c: &gc.tanh_c[t],
                        dh_out: &dr,
                        next: dc_next.as_ref().map(|dc| (zero, dc)),
                        consts,
                    })?
                }
            };
            if t > 0 {
                let m = resets.map(|r| r.at(t, rows)).transpose()?.flatten();
                dh_next = Some(masked(gemm::matmul_packed(&g.dz, &w_hh)?, m.as_ref())?);
                dc_next = Some(masked(g.dc_prev, m.as_ref())?);
            }
            dz_rev.push(g.dz);
        }
        dz_rev.reverse();
        dh_rev.reverse();
        Ok((dz_rev, dh_rev))
    })?;
    let (dzs, dhs): (Vec<_>, Vec<_>) = runs.into_iter().unzip();
    let dz = time_major(&dzs, seq_len)?; // [T*B, 4H]
    let w_hr = match w.w_hr {
        Some(_) => {
            let dh = time_major(&dhs, seq_len)?; // [T*B, P]
            let rs: Vec<Vec<Tensor>> = groups.iter().map(|g| g.r.clone()).collect();
            let r = time_major(&rs, seq_len)?; // [T*B, H]
            Some(gemm::matmul(&dh.t()?, &r, prec)?)
        }
        None => None,
    };
    Ok((dz, w_hr))
}

/// The layer's gradients from `dz` `[T*B, 4H]`, the gradient w.r.t. the pre-activations of every
/// step (the two weight gradients as one product, the input's gradient and a row sum), and the
/// projection's gradient `w_hr` when it has one.
fn weight_grads(
    w: &LayerWeights,
    cache: &LayerCache,
    dz: &Tensor,
    w_hr: Option<Tensor>,
    prec: Precision,
) -> Result<LayerGrads> {
    let (w_ih, w_hh) = input_and_recurrent_grads(dz, &cache.x, &cache.h_prev, prec)?;
    Ok(LayerGrads {
        w_ih,
        w_hh,
        bias: run(&SumRows(dz))?,
        dx: gemm::matmul(dz, w.w_ih, prec)?,
        w_hr,
    })
}

/// `dW_ih = dz^T x` `[4H, in]` and `dW_hh = dz^T h_prev` `[4H, out]` as one product `dz^T [x |
/// h_prev]`, for `dz` `[T*B, 4H]`, `x` `[T*B, in]`, `h_prev` `[T*B, out]`: `dz^T`, the operand
/// packed transposed (a few floats of every row of `dz` at a time, the costly copy), is read and
/// packed once for both instead of twice. Each element is the same sum over the T*B rows in the
/// same order as in two separate products, so the gradients are the same bit for bit.
fn input_and_recurrent_grads(
    dz: &Tensor,
    x: &Tensor,
    h_prev: &Tensor,
    prec: Precision,
) -> Result<(Tensor, Tensor)> {
    let (inp, out) = (x.dim(1)?, h_prev.dim(1)?);
    let xh = Tensor::cat(&[x, h_prev], 1)?;
    let dw = gemm::matmul(&dz.t()?, &xh, prec)?; // [4H, in + out]
    Ok((
        dw.narrow(1, 0, inp)?.contiguous()?,
        dw.narrow(1, inp, out)?.contiguous()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one product of [`input_and_recurrent_grads`] gives the bits of the two separate
    /// products `dz^T x` and `dz^T h_prev` on the engine's own kernels (with OpenBLAS, the same
    /// values within f32 summation error: its kernels depend on the product's width): odd widths, T*B across the products' 256-deep K
    /// blocks and not a multiple of one, and the shape of a small model's step (several tasks).
    #[test]
    fn joint_weight_gradients_equal_the_separate_products() {
        let dev = Device::Cpu;
        for (rows, h4, inp, out) in [(515, 28, 5, 7), (2051, 512, 64, 128), (37, 20, 3, 1)] {
            let r = |cols: usize, seed: u64| {
                let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let v: Vec<f32> = (0..rows * cols)
                    .map(|_| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
                    })
                    .collect();
                Tensor::from_vec(v, (rows, cols), &dev).unwrap()
            };
            let (dz, x, h) = (r(h4, 1), r(inp, 2), r(out, 3));
            let (w_ih, w_hh) = input_and_recurrent_grads(&dz, &x, &h, Precision::F32).unwrap();
            let bits = |t: &Tensor| -> Vec<u32> {
                let v: Vec<Vec<f32>> = t.to_vec2().unwrap();
                v.concat().iter().map(|x| x.to_bits()).collect()
            };
            let dz_t = dz.t().unwrap();
            for (got, other, name) in [(&w_ih, &x, "W_ih"), (&w_hh, &h, "W_hh")] {
                let want = gemm::matmul(&dz_t, other, Precision::F32).unwrap();
                assert_eq!(got.dims(), want.dims());
                if cfg!(lstmgen_blas) {
                    // OpenBLAS picks its kernels by the product's width: within twice the
                    // worst-case bound of f32 summation (Higham, Accuracy and Stability, 3.1)
                    let mag =
                        gemm::matmul(&dz_t.abs().unwrap(), &other.abs().unwrap(), Precision::F32)
                            .unwrap();
                    let tol = (mag * (2.0 * rows as f64 * f32::EPSILON as f64)).unwrap();
                    let over = ((got - &want).unwrap().abs().unwrap() - tol).unwrap();
                    let worst = over
                        .flatten_all()
                        .unwrap()
                        .max(0)
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap();
                    assert!(
                        worst <= 0.0,
                        "[{rows} rows, 4H {h4}]: d{name} {worst} past the bound"
                    );
                } else {
                    assert!(
                        bits(got) == bits(&want),
                        "[{rows} rows, 4H {h4}, in {inp}, out {out}]: d{name} differs from its own product"
                    );
                }
            }
        }
    }
}

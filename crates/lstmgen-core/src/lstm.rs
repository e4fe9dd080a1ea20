//! One LSTM layer over a whole sequence: forward with the input projection as one GEMM before the
//! recurrent loop, and backward through time (BPTT) with the weight gradients as GEMMs after it.
//!
//! Equations (PyTorch `nn.LSTM`, gate order i, f, g, o; backward after Graves 2013):
//! `z = W_ih x + W_hh h + b_ih + b_hh`, `c' = f*c + i*g`, `h' = o*tanh(c')`.
//! Tensors are time-major: a sequence is `[seqLen * batch, features]`, row `t * batch + b`.

use crate::cell;
use crate::error::Result;
use crate::gemm::{self, Precision};
use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use std::ops::Range;

/// Per-gate constants that let all four activations run as one pass over `z` `[batch, 4H]`:
/// sigmoid(x) = 0.5 * tanh(0.5 x) + 0.5, so `a = tanh(z * scale) * scale + shift` with
/// scale = 0.5 (i, f, o) or 1 (g) and shift = 0.5 (i, f, o) or 0 (g).
pub struct GateConsts {
    scale: Tensor,
    shift: Tensor,
    /// da/dz = k1 + k2*a - a^2: sigmoid gives a - a^2 (k1 = 0, k2 = 1), tanh 1 - a^2 (k1 = 1, k2 = 0).
    k1: Tensor,
    k2: Tensor,
}

impl GateConsts {
    pub fn new(hidden: usize, dtype: DType, device: &Device) -> Result<Self> {
        let per_gate = |vals: [f32; 4]| -> Result<Tensor> {
            let v: Vec<f32> = vals
                .iter()
                .flat_map(|&x| std::iter::repeat_n(x, hidden))
                .collect();
            Ok(Tensor::from_vec(v, 4 * hidden, device)?.to_dtype(dtype)?)
        };
        Ok(Self {
            scale: per_gate([0.5, 0.5, 1.0, 0.5])?,
            shift: per_gate([0.5, 0.5, 0.0, 0.5])?,
            k1: per_gate([0.0, 0.0, 1.0, 0.0])?,
            k2: per_gate([1.0, 1.0, 0.0, 1.0])?,
        })
    }

    /// Activated gates `[rows, 4H]` = (sigmoid i, sigmoid f, tanh g, sigmoid o) from pre-activations.
    pub(crate) fn activate(&self, z: &Tensor) -> Result<Tensor> {
        Ok(z.broadcast_mul(&self.scale)?
            .tanh()?
            .broadcast_mul(&self.scale)?
            .broadcast_add(&self.shift)?)
    }

    /// Derivative of each activation w.r.t. its pre-activation, from the activations `a`.
    pub(crate) fn derivative(&self, a: &Tensor) -> Result<Tensor> {
        Ok((a.broadcast_mul(&self.k2)?.broadcast_add(&self.k1)? - a.sqr()?)?)
    }
}

/// The weights of one layer: `w_ih` `[4H, in]`, `w_hh` `[4H, H]`, `b_ih`, `b_hh` `[4H]`.
pub struct LayerWeights<'a> {
    pub w_ih: &'a Tensor,
    pub w_hh: &'a Tensor,
    pub b_ih: &'a Tensor,
    pub b_hh: &'a Tensor,
    /// `w_ih^T` and `w_hh^T` already packed for the products (inference with unchanged weights),
    /// or None to pack them per call.
    pub packed: Option<&'a PackedLayer>,
}

/// A layer's transposed weights prepared once for many forward calls (sampling).
pub struct PackedLayer {
    pub w_ih_t: gemm::Packed,
    pub w_hh_t: gemm::Packed,
}

impl PackedLayer {
    /// Packs `w_ih^T` and `w_hh^T` of `w` for products in precision `prec`.
    pub fn new(w: &LayerWeights, prec: Precision) -> Result<Self> {
        Ok(Self {
            w_ih_t: gemm::pack(&w.w_ih.t()?, prec)?,
            w_hh_t: gemm::pack(&w.w_hh.t()?, prec)?,
        })
    }
}

/// What the backward pass needs from the forward pass of one layer. O(seqLen * batch * 6H) floats.
pub struct LayerCache {
    /// Layer input `[T*B, in]`.
    x: Tensor,
    /// Per row group (see [`row_groups`]): the recurrence's per-step values for those rows.
    groups: Vec<GroupCache>,
    /// Hidden state before each step, stacked `[T*B, H]` (h_{t-1}).
    h_prev: Tensor,
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
fn per_group<G: Sync, R: Send>(
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
pub struct LayerGrads {
    pub w_ih: Tensor,
    pub w_hh: Tensor,
    /// Gradient of `b_ih` and of `b_hh` (identical, since both enter z the same way).
    pub bias: Tensor,
    /// Gradient w.r.t. the layer input `[T*B, in]`.
    pub dx: Tensor,
}

/// Runs one layer over `x` `[T*B, in]` from state `(h0, c0)` `[B, H]`.
/// Returns the outputs `[T*B, H]`, the final `(h, c)`, and the cache when `keep_cache`.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    w: &LayerWeights,
    consts: &GateConsts,
    x: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    seq_len: usize,
    keep_cache: bool,
    prec: Precision,
) -> Result<(Tensor, Tensor, Tensor, Option<LayerCache>)> {
    let batch = h0.dim(0)?;
    let bias = (w.b_ih + w.b_hh)?;
    // [T*B, 4H]: the input projection of all steps as one product
    let xw = gemm::add_bias(
        &match w.packed {
            Some(p) => gemm::matmul_packed(x, &p.w_ih_t)?,
            None => gemm::matmul(x, &w.w_ih.t()?, prec)?,
        },
        &bias,
    )?;
    let own;
    let w_hh_t = match w.packed {
        Some(p) => &p.w_hh_t,
        None => {
            own = gemm::pack(&w.w_hh.t()?, prec)?; // packed once, used at every step
            &own
        }
    };
    let groups = row_groups(batch, x.device());
    let runs = per_group(&groups, |rows| {
        let n = rows.len();
        let (mut h, mut c) = (h0.narrow(0, rows.start, n)?, c0.narrow(0, rows.start, n)?);
        let mut outs = Vec::with_capacity(seq_len);
        let mut cache = GroupCache {
            rows: rows.clone(),
            gates: Vec::new(),
            c_prev: Vec::new(),
            tanh_c: Vec::new(),
        };
        for t in 0..seq_len {
            let zh = gemm::matmul_packed(&h, w_hh_t)?;
            let step = cell::forward(&xw.narrow(0, t * batch + rows.start, n)?, &zh, &c, consts)?;
            if keep_cache {
                cache.gates.push(step.gates);
                cache.c_prev.push(c);
                cache.tanh_c.push(step.tanh_c);
            }
            outs.push(step.h.clone());
            h = step.h;
            c = step.c;
        }
        Ok((outs, h, c, cache))
    })?;
    let outs: Vec<Vec<Tensor>> = runs.iter().map(|r| r.0.clone()).collect();
    let out = time_major(&outs, seq_len)?;
    let h = Tensor::cat(&runs.iter().map(|r| &r.1).collect::<Vec<_>>(), 0)?;
    let c = Tensor::cat(&runs.iter().map(|r| &r.2).collect::<Vec<_>>(), 0)?;
    let cache = if keep_cache {
        // h_{t-1} for every step: h0 followed by the outputs of steps 0..T-1.
        let h_prev = if seq_len > 1 {
            Tensor::cat(&[h0, &out.narrow(0, 0, (seq_len - 1) * batch)?], 0)?
        } else {
            h0.clone()
        };
        Some(LayerCache {
            x: x.clone(),
            groups: runs.into_iter().map(|r| r.3).collect(),
            h_prev,
        })
    } else {
        None
    };
    Ok((out, h, c, cache))
}

/// Backpropagates `d_out` `[T*B, H]` (gradient of the loss w.r.t. this layer's outputs) through
/// time. The state handed in from the previous batch is treated as a constant (truncated BPTT).
pub fn backward(
    w: &LayerWeights,
    consts: &GateConsts,
    cache: &LayerCache,
    d_out: &Tensor,
    prec: Precision,
) -> Result<LayerGrads> {
    let seq_len = cache.groups[0].gates.len();
    let batch = cache.h_prev.dim(0)? / seq_len;
    let w_hh = gemm::pack(w.w_hh, prec)?;
    let dzs = per_group(&cache.groups, |gc| {
        let rows = &gc.rows;
        let n = rows.len();
        let mut dh_next: Option<Tensor> = None;
        let mut dc_next: Option<Tensor> = None;
        let mut dz_rev = Vec::with_capacity(seq_len);
        for t in (0..seq_len).rev() {
            let g = cell::backward(
                &gc.gates[t],
                &gc.c_prev[t],
                &gc.tanh_c[t],
                &d_out.narrow(0, t * batch + rows.start, n)?,
                dh_next.as_ref().zip(dc_next.as_ref()),
                consts,
            )?;
            if t > 0 {
                dh_next = Some(gemm::matmul_packed(&g.dz, &w_hh)?);
                dc_next = Some(g.dc_prev);
            }
            dz_rev.push(g.dz);
        }
        dz_rev.reverse();
        Ok(dz_rev)
    })?;
    let dz = time_major(&dzs, seq_len)?; // [T*B, 4H]
    let dz_t = dz.t()?;
    Ok(LayerGrads {
        w_ih: gemm::matmul(&dz_t, &cache.x, prec)?,
        w_hh: gemm::matmul(&dz_t, &cache.h_prev, prec)?,
        bias: gemm::sum_rows(&dz)?,
        dx: gemm::matmul(&dz, w.w_ih, prec)?,
    })
}

//! The fused ops of the optimizer: one parameter tensor's AdamW update ([`AdamStep`]) and the sum
//! of squares of one gradient ([`SumSq`], for the global norm). See [`crate::adam`] for the
//! optimizer that uses them and [`crate::ops`] for the dispatch.

use super::FusedOp;
use crate::act::Act;
use crate::buf::{self, cpu_slice, on_cpu, CpuFloat};
use crate::error::{Error, Result};
use candle_core::{DType, Tensor};
use rayon::prelude::*;

/// Elements per parallel chunk of the CPU loops.
const CHUNK: usize = 1 << 15;

/// Hyper-parameters of one update (with clipping scale and bias corrections resolved).
pub(crate) struct Hyper {
    /// Factor applied to the gradient (global-norm clipping; 1 when not clipping).
    pub scale: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub lr: f64,
    pub weight_decay: f64,
    /// Bias corrections 1 - beta1^t and 1 - beta2^t.
    pub bc1: f64,
    pub bc2: f64,
    /// 1-based number of the step being taken (for messages).
    pub step: u64,
}

impl Hyper {
    /// The coefficients the fused loops use, in the CUDA kernel's argument order: gradient scale,
    /// beta1, 1 - beta1, beta2, 1 - beta2, bc2, eps, lr / bc1 (step size), 1 - lr * weight_decay.
    fn coefficients(&self) -> [f64; 9] {
        [
            self.scale,
            self.beta1,
            1.0 - self.beta1,
            self.beta2,
            1.0 - self.beta2,
            self.bc2,
            self.eps,
            self.lr / self.bc1,
            1.0 - self.lr * self.weight_decay,
        ]
    }

    /// The error for an update that made parameter tensor `k` non-finite.
    pub(crate) fn non_finite(&self, k: usize) -> Error {
        Error::Numeric(format!(
            "the update at step {} made parameter tensor {k} non-finite (lr {}); parameters were not updated",
            self.step, self.lr
        ))
    }
}

/// The AdamW update of parameter tensor `k`, `p`, from its gradient `g` and moments `m`, `v` (all
/// the same shape).
pub(crate) struct AdamStep<'a> {
    pub k: usize,
    pub p: &'a Tensor,
    pub g: &'a Tensor,
    pub m: &'a Tensor,
    pub v: &'a Tensor,
    pub h: &'a Hyper,
}

/// New (param, m, v) of one tensor.
pub(crate) struct Updated {
    pub p: Tensor,
    pub m: Tensor,
    pub v: Tensor,
    /// Whether the op already refused a non-finite result (the CPU loop checks on the way); the
    /// others leave it to the caller, which reads the checks of all tensors back at once.
    pub checked: bool,
}

impl FusedOp for AdamStep<'_> {
    type Output = Updated;

    fn dtype(&self) -> DType {
        self.p.dtype()
    }

    #[cfg(feature = "cuda")]
    fn cuda(&self) -> Option<Result<Updated>> {
        let coef = self.h.coefficients().map(|x| x as f32);
        let r = crate::cuda::adam::step(self.p, self.g, self.m, self.v, coef)?;
        Some(r.map(|[p, m, v]| Updated {
            p,
            m,
            v,
            checked: false,
        }))
    }

    fn cpu<T: Act>(&self) -> Option<Result<Updated>> {
        let n = self.p.elem_count();
        if [self.g, self.m, self.v].iter().any(|t| t.elem_count() != n) {
            return None;
        }
        let r = on_cpu::<T, _>(&[self.p, self.g, self.m, self.v], |s| update_cpu(s, self.h))?;
        let Some([p, m, v]) = r else {
            return Some(Err(self.h.non_finite(self.k)));
        };
        let (dims, dev) = (self.p.dims(), self.p.device());
        Some((|| {
            Ok(Updated {
                p: Tensor::from_vec(p, dims, dev)?,
                m: Tensor::from_vec(m, dims, dev)?,
                v: Tensor::from_vec(v, dims, dev)?,
                checked: true,
            })
        })())
    }

    fn ops(&self) -> Result<Updated> {
        let h = self.h;
        let g = if h.scale != 1.0 {
            (self.g * h.scale)?
        } else {
            self.g.clone()
        };
        let m = ((self.m * h.beta1)? + (&g * (1.0 - h.beta1))?)?;
        let v = ((self.v * h.beta2)? + (g.sqr()? * (1.0 - h.beta2))?)?;
        let denom = ((&v / h.bc2)?.sqrt()? + h.eps)?;
        let upd = ((&m / denom)? * (h.lr / h.bc1))?;
        let mut p = self.p.clone();
        if h.weight_decay > 0.0 {
            p = (&p * (1.0 - h.lr * h.weight_decay))?;
        }
        let p = (p - upd)?;
        Ok(Updated {
            p,
            m,
            v,
            checked: false,
        })
    }
}

/// The update over the slices `[p, g, m, v]` (equal lengths), in parallel chunks, computing
/// exactly the formulas of the candle-op path with no intermediate tensors: new `[p, m, v]`, or
/// `None` when a new parameter is not finite.
fn update_cpu<T: CpuFloat>(s: &[&[T]], h: &Hyper) -> Option<[Vec<T>; 3]> {
    let (xp, xg, xm, xv) = (s[0], s[1], s[2], s[3]);
    let [scale, b1, one_b1, b2, one_b2, bc2, eps, step_size, decay] =
        h.coefficients().map(T::from_f64);
    let (use_scale, use_decay) = (h.scale != 1.0, h.weight_decay > 0.0);
    let n = xp.len();
    let (mut np, mut nm, mut nv) = (
        buf::uninit::<T>(n),
        buf::uninit::<T>(n),
        buf::uninit::<T>(n),
    );
    let finite = np
        .par_chunks_mut(CHUNK)
        .zip(nm.par_chunks_mut(CHUNK))
        .zip(nv.par_chunks_mut(CHUNK))
        .enumerate()
        .map(|(ci, ((op, om), ov))| {
            let o = ci * CHUNK;
            let mut ok = true;
            for i in 0..op.len() {
                let j = o + i;
                let gi = if use_scale { xg[j] * scale } else { xg[j] };
                let mi = xm[j] * b1 + gi * one_b1;
                let vi = xv[j] * b2 + gi * gi * one_b2;
                let upd = mi / ((vi / bc2).sqrt() + eps) * step_size;
                let pi = if use_decay { xp[j] * decay } else { xp[j] };
                let pn = pi - upd;
                ok &= pn.is_finite();
                op[i].write(pn);
                om[i].write(mi);
                ov[i].write(vi);
            }
            ok
        })
        .reduce(|| true, |a, b| a && b);
    // SAFETY: the chunk loop above wrote every element i of every chunk.
    finite.then(|| unsafe {
        [
            buf::assume_init(np),
            buf::assume_init(nm),
            buf::assume_init(nv),
        ]
    })
}

/// Sum of squares of one gradient tensor, for the global norm.
pub(crate) struct SumSq<'a>(pub &'a Tensor);

/// A sum of squares: on the host already (CPU loop, f64 accumulation), or a scalar f64 tensor on
/// the gradient's device, for the caller to read back together with the others.
pub(crate) enum Sq {
    Host(f64),
    Device(Tensor),
}

impl FusedOp for SumSq<'_> {
    type Output = Sq;

    fn dtype(&self) -> DType {
        self.0.dtype()
    }

    fn cpu<T: Act>(&self) -> Option<Result<Sq>> {
        sum_sq_cpu::<T>(self.0).map(|s| Ok(Sq::Host(s)))
    }

    fn ops(&self) -> Result<Sq> {
        Ok(Sq::Device(self.0.sqr()?.sum_all()?.to_dtype(DType::F64)?))
    }
}

fn sum_sq_cpu<T: CpuFloat>(g: &Tensor) -> Option<f64> {
    let (s, l) = g.storage_and_layout();
    let x = cpu_slice::<T>(&s, l)?;
    Some(
        x.par_chunks(CHUNK)
            .map(|c| {
                c.iter()
                    .map(|&v| {
                        let v = v.to_f64();
                        v * v
                    })
                    .sum::<f64>()
            })
            .sum(),
    )
}

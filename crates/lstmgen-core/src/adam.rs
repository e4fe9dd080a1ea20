//! Adam with bias correction (Kingma & Ba 2015), optional decoupled weight decay (AdamW,
//! Loshchilov & Hutter 2019), and clipping by the global L2 norm of all gradients. The moments
//! live here, in the engine, so they can be saved and restored.

use crate::config::AdamConfig;
use crate::error::{Error, Result};
use candle_core::{DType, Tensor};

pub(crate) use fused::Hyper;

/// Adam's first and second moments for every parameter, and the step count.
pub struct Adam {
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: u64,
}

impl Adam {
    /// Zero moments shaped like `params`.
    pub fn new(params: &[Tensor]) -> Result<Self> {
        let zeros = params
            .iter()
            .map(|p| p.zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            m: zeros.clone(),
            v: zeros,
            step: 0,
        })
    }

    /// Steps taken so far.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The moments `(m, v)` in parameter order, for checkpoints.
    pub fn moments(&self) -> (&[Tensor], &[Tensor]) {
        (&self.m, &self.v)
    }

    /// Restores moments and step count from a checkpoint (shapes checked by the caller).
    pub fn restore(m: Vec<Tensor>, v: Vec<Tensor>, step: u64) -> Self {
        Self { m, v, step }
    }

    /// Global L2 norm sqrt(sum over all gradients of g^2), in f64. Gradients on a GPU are summed
    /// there and read back once.
    pub fn global_norm(grads: &[Tensor]) -> Result<f64> {
        let mut sq = 0f64;
        let mut on_device = Vec::new();
        for g in grads {
            match fused::sum_sq(g) {
                Some(v) => sq += v,
                None => on_device.push(g.sqr()?.sum_all()?.to_dtype(DType::F64)?),
            }
        }
        if !on_device.is_empty() {
            sq += Tensor::stack(&on_device, 0)?
                .sum_all()?
                .to_scalar::<f64>()?;
        }
        Ok(sq.sqrt())
    }

    /// New (param, m, v) of tensor `k` off the CPU: one CUDA kernel where it applies, else candle
    /// ops. Finiteness is checked by the caller, for all tensors at once.
    fn step_on_device(
        &self,
        p: &Tensor,
        g: &Tensor,
        k: usize,
        h: &Hyper,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        #[cfg(feature = "cuda")]
        if let Some(r) = crate::cuda::adam::step(p, g, &self.m[k], &self.v[k], h) {
            return r;
        }
        self.step_ops(p, g, k, h)
    }

    /// One parameter tensor's AdamW update with candle ops (any device): new (param, m, v).
    fn step_ops(
        &self,
        p: &Tensor,
        g: &Tensor,
        k: usize,
        h: &Hyper,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let g = if h.scale != 1.0 {
            (g * h.scale)?
        } else {
            g.clone()
        };
        let m = ((&self.m[k] * h.beta1)? + (&g * (1.0 - h.beta1))?)?;
        let v = ((&self.v[k] * h.beta2)? + (g.sqr()? * (1.0 - h.beta2))?)?;
        let denom = ((&v / h.bc2)?.sqrt()? + h.eps)?;
        let upd = ((&m / denom)? * (h.lr / h.bc1))?;
        let mut p = p.clone();
        if h.weight_decay > 0.0 {
            p = (&p * (1.0 - h.lr * h.weight_decay))?;
        }
        let p = (p - upd)?;
        Ok((p, m, v))
    }

    pub fn update(
        &mut self,
        params: &mut [Tensor],
        grads: &[Tensor],
        opt: &AdamConfig,
    ) -> Result<f64> {
        let norm = Self::global_norm(grads)?;
        if !norm.is_finite() {
            return Err(Error::Numeric(format!(
                "gradient norm is {norm} at step {}; parameters were not updated",
                self.step + 1
            )));
        }
        let scale = if opt.clip_norm > 0.0 && norm > opt.clip_norm {
            opt.clip_norm / (norm + 1e-6)
        } else {
            1.0
        };
        let t = (self.step + 1) as i32;
        let bc1 = 1.0 - opt.beta1.powi(t);
        let bc2 = 1.0 - opt.beta2.powi(t);
        let (mut new_p, mut new_m, mut new_v) = (Vec::new(), Vec::new(), Vec::new());
        let h = Hyper {
            scale,
            beta1: opt.beta1,
            beta2: opt.beta2,
            eps: opt.eps,
            lr: opt.lr,
            weight_decay: opt.weight_decay,
            bc1,
            bc2,
            step: self.step + 1,
        };
        // sum |p| of each tensor updated off the CPU (NaN and inf survive the sum), read back once
        let mut sums = Vec::new();
        for (k, g) in grads.iter().enumerate() {
            let (p, m, v) = match fused::step(k, &params[k], g, &self.m[k], &self.v[k], &h) {
                Some(r) => r?, // checked for finiteness on the way
                None => {
                    let r = self.step_on_device(&params[k], g, k, &h)?;
                    sums.push((k, r.0.abs()?.sum_all()?.to_dtype(DType::F64)?));
                    r
                }
            };
            new_p.push(p);
            new_m.push(m);
            new_v.push(v);
        }
        if !sums.is_empty() {
            let all = Tensor::stack(&sums.iter().map(|s| &s.1).collect::<Vec<_>>(), 0)?;
            let bad = all.to_vec1::<f64>()?.iter().position(|x| !x.is_finite());
            if let Some(i) = bad {
                return Err(fused::non_finite(h.step, sums[i].0, h.lr));
            }
        }
        params.clone_from_slice(&new_p);
        self.m = new_m;
        self.v = new_v;
        self.step += 1;
        Ok(norm)
    }
}

/// The CPU form of the update: one pass per tensor over contiguous f32/f64 slices, in parallel
/// chunks, computing exactly the formulas of [`Adam::step_ops`] (no intermediate tensors).
mod fused {
    use crate::act::Act;
    use crate::buf;
    use crate::cell::cpu_slice;
    use crate::error::{Error, Result};
    use candle_core::{DType, Tensor};
    use rayon::prelude::*;

    /// Elements per parallel chunk.
    const CHUNK: usize = 1 << 15;

    /// Hyper-parameters of one update (with clipping scale and bias corrections resolved).
    pub struct Hyper {
        pub scale: f64,
        pub beta1: f64,
        pub beta2: f64,
        pub eps: f64,
        pub lr: f64,
        pub weight_decay: f64,
        pub bc1: f64,
        pub bc2: f64,
        /// 1-based number of the step being taken (for messages).
        pub step: u64,
    }

    pub fn non_finite(step: u64, k: usize, lr: f64) -> Error {
        Error::Numeric(format!(
            "the update at step {step} made parameter tensor {k} non-finite (lr {lr}); parameters were not updated"
        ))
    }

    /// Sum of squares of a contiguous CPU tensor (f64 accumulation), or None elsewhere.
    pub fn sum_sq(g: &Tensor) -> Option<f64> {
        fn go<T: Act>(g: &Tensor) -> Option<f64> {
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
        match g.dtype() {
            DType::F32 => go::<f32>(g),
            DType::F64 => go::<f64>(g),
            _ => None,
        }
    }

    /// New (param, m, v) for one tensor, or None when the tensors are not contiguous CPU f32/f64.
    pub fn step(
        k: usize,
        p: &Tensor,
        g: &Tensor,
        m: &Tensor,
        v: &Tensor,
        h: &Hyper,
    ) -> Option<Result<(Tensor, Tensor, Tensor)>> {
        match p.dtype() {
            DType::F32 => run::<f32>(k, p, g, m, v, h),
            DType::F64 => run::<f64>(k, p, g, m, v, h),
            _ => None,
        }
    }

    fn run<T: Act>(
        k: usize,
        p: &Tensor,
        g: &Tensor,
        m: &Tensor,
        v: &Tensor,
        h: &Hyper,
    ) -> Option<Result<(Tensor, Tensor, Tensor)>> {
        let guards = [p, g, m, v].map(|t| t.storage_and_layout());
        let [xp, xg, xm, xv] = [0, 1, 2, 3].map(|i| cpu_slice::<T>(&guards[i].0, guards[i].1));
        let (xp, xg, xm, xv) = (xp?, xg?, xm?, xv?);
        if xg.len() != xp.len() || xm.len() != xp.len() || xv.len() != xp.len() {
            return None;
        }
        let c = |x: f64| T::from_f64(x);
        let (scale, b1, b2, eps) = (c(h.scale), c(h.beta1), c(h.beta2), c(h.eps));
        let (one_b1, one_b2, bc2) = (c(1.0 - h.beta1), c(1.0 - h.beta2), c(h.bc2));
        let (step_size, decay) = (c(h.lr / h.bc1), c(1.0 - h.lr * h.weight_decay));
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
        if !finite {
            return Some(Err(non_finite(h.step, k, h.lr)));
        }
        let (dims, dev) = (p.dims().to_vec(), p.device().clone());
        drop(guards);
        // SAFETY: the chunk loop above wrote every element i of every chunk.
        let (np, nm, nv) = unsafe {
            (
                buf::assume_init(np),
                buf::assume_init(nm),
                buf::assume_init(nv),
            )
        };
        Some((|| {
            Ok((
                Tensor::from_vec(np, dims.clone(), &dev)?,
                Tensor::from_vec(nm, dims.clone(), &dev)?,
                Tensor::from_vec(nv, dims, &dev)?,
            ))
        })())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Two steps on a 2-element parameter match Adam/AdamW written out by hand in f64, and
    /// clipping rescales by clip_norm / norm.
    #[test]
    fn matches_hand_computed_adamw_with_clipping() {
        let dev = Device::Cpu;
        let mut params = vec![Tensor::new(&[1.0f64, -2.0], &dev).unwrap()];
        let grads = [[3.0f64, 4.0], [0.5, -1.0]]; // norms 5 and ~1.118
        let opt = AdamConfig {
            lr: 0.1,
            beta1: 0.8,
            beta2: 0.9,
            eps: 1e-3,
            weight_decay: 0.01,
            clip_norm: 2.0,
        };
        let mut adam = Adam::new(&params).unwrap();
        let (mut p, mut m, mut v) = ([1.0f64, -2.0], [0.0f64; 2], [0.0f64; 2]);
        for (step, g) in grads.iter().enumerate() {
            let norm = (g[0] * g[0] + g[1] * g[1]).sqrt();
            let got = adam
                .update(&mut params, &[Tensor::new(g, &dev).unwrap()], &opt)
                .unwrap();
            assert!((got - norm).abs() < 1e-12);
            let s = if norm > opt.clip_norm {
                opt.clip_norm / (norm + 1e-6)
            } else {
                1.0
            };
            let t = (step + 1) as i32;
            for k in 0..2 {
                let gk = g[k] * s;
                m[k] = opt.beta1 * m[k] + (1.0 - opt.beta1) * gk;
                v[k] = opt.beta2 * v[k] + (1.0 - opt.beta2) * gk * gk;
                let mhat = m[k] / (1.0 - opt.beta1.powi(t));
                let vhat = v[k] / (1.0 - opt.beta2.powi(t));
                p[k] = p[k] * (1.0 - opt.lr * opt.weight_decay)
                    - opt.lr * mhat / (vhat.sqrt() + opt.eps);
            }
            let got = params[0].to_vec1::<f64>().unwrap();
            assert!(
                (got[0] - p[0]).abs() < 1e-12 && (got[1] - p[1]).abs() < 1e-12,
                "step {step}: {got:?} vs {p:?}"
            );
        }
        assert_eq!(adam.step(), 2);
    }

    #[test]
    fn overflowing_update_changes_nothing() {
        let dev = Device::Cpu;
        let mut params = vec![Tensor::new(&[1.0f32, 2.0], &dev).unwrap()];
        let mut adam = Adam::new(&params).unwrap();
        let opt = AdamConfig {
            lr: 1e39,
            ..AdamConfig::default()
        };
        let err = adam
            .update(
                &mut params,
                &[Tensor::new(&[1.0f32, 1.0], &dev).unwrap()],
                &opt,
            )
            .unwrap_err();
        assert!(err.to_string().contains("non-finite"), "{err}");
        assert_eq!(params[0].to_vec1::<f32>().unwrap(), vec![1.0, 2.0]);
        assert_eq!(adam.step(), 0);
    }

    #[test]
    fn non_finite_gradient_changes_nothing() {
        let dev = Device::Cpu;
        let mut params = vec![Tensor::new(&[1.0f32, 2.0], &dev).unwrap()];
        let mut adam = Adam::new(&params).unwrap();
        let err = adam
            .update(
                &mut params,
                &[Tensor::new(&[f32::NAN, 1.0], &dev).unwrap()],
                &AdamConfig::default(),
            )
            .unwrap_err();
        assert!(err.to_string().starts_with("E_NUMERIC"), "{err}");
        assert_eq!(params[0].to_vec1::<f32>().unwrap(), vec![1.0, 2.0]);
        assert_eq!(adam.step(), 0);
    }

    /// The path taken off the CPU (candle ops, finiteness read back once for all tensors) gives
    /// the fused CPU loop's results; a non-contiguous (transposed) gradient makes the CPU take it.
    #[test]
    fn device_path_matches_fused_and_refuses_overflow() {
        let dev = Device::Cpu;
        let p0 = Tensor::new(&[[1.0f64, -2.0, 0.5], [0.25, 3.0, -1.5]], &dev).unwrap();
        let g = Tensor::new(&[[0.3f64, -0.1], [0.7, 0.2], [-0.4, 0.9]], &dev).unwrap();
        let opt = AdamConfig {
            lr: 0.05,
            weight_decay: 0.01,
            clip_norm: 1.0,
            ..AdamConfig::default()
        };
        let (mut fused_p, mut ops_p) = (vec![p0.clone()], vec![p0.clone()]);
        let (mut fused, mut ops) = (Adam::new(&fused_p).unwrap(), Adam::new(&ops_p).unwrap());
        for _ in 0..3 {
            let nf = fused
                .update(&mut fused_p, &[g.t().unwrap().contiguous().unwrap()], &opt)
                .unwrap();
            let no = ops.update(&mut ops_p, &[g.t().unwrap()], &opt).unwrap();
            assert!((nf - no).abs() < 1e-12);
            assert!(crate::max_diff(&fused_p[0], &ops_p[0]) < 1e-12);
        }
        let mut p32 = vec![p0.to_dtype(DType::F32).unwrap()];
        let mut adam32 = Adam::new(&p32).unwrap();
        let big = AdamConfig {
            lr: 1e39,
            ..AdamConfig::default()
        };
        let g32 = g.to_dtype(DType::F32).unwrap();
        let err = adam32
            .update(&mut p32, &[g32.t().unwrap()], &big)
            .unwrap_err();
        assert!(err.to_string().contains("non-finite"), "{err}");
        assert_eq!(
            p32[0].to_vec2::<f32>().unwrap(),
            p0.to_dtype(DType::F32).unwrap().to_vec2::<f32>().unwrap()
        );
        assert_eq!(adam32.step(), 0);
        assert_eq!(ops.step(), 3);
    }
}

//! Adam with bias correction (Kingma & Ba 2015), optional decoupled weight decay (AdamW,
//! Loshchilov & Hutter 2019), and clipping by the global L2 norm of all gradients. The moments
//! live here, in the engine, so they can be saved and restored.

use crate::config::AdamConfig;
use crate::error::{Error, Result};
use crate::ops::adam::{AdamStep, Hyper, Sq, SumSq};
use crate::ops::run;
use candle_core::Tensor;

/// Adam's first and second moments for every parameter, and the step count.
pub(crate) struct Adam {
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: u64,
}

impl Adam {
    /// Zero moments shaped like `params`.
    pub(crate) fn new(params: &[Tensor]) -> Result<Self> {
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
    pub(crate) fn step(&self) -> u64 {
        self.step
    }

    /// The moments `(m, v)` in parameter order, for checkpoints.
    pub(crate) fn moments(&self) -> (&[Tensor], &[Tensor]) {
        (&self.m, &self.v)
    }

    /// Restores moments and step count from a checkpoint (shapes checked by the caller).
    pub(crate) fn restore(m: Vec<Tensor>, v: Vec<Tensor>, step: u64) -> Self {
        Self { m, v, step }
    }

    /// Global L2 norm sqrt(sum over all gradients of g^2), in f64. Gradients off the CPU are
    /// summed on their device and read back once.
    pub(crate) fn global_norm(grads: &[Tensor]) -> Result<f64> {
        let mut sq = 0f64;
        let mut on_device = Vec::new();
        for g in grads {
            match run(&SumSq(g))? {
                Sq::Host(v) => sq += v,
                Sq::Device(t) => on_device.push(t),
            }
        }
        if !on_device.is_empty() {
            sq += Tensor::stack(&on_device, 0)?
                .sum_all()?
                .to_scalar::<f64>()?;
        }
        Ok(sq.sqrt())
    }

    /// The global norm of `grads` and the factor that clips them to `opt.clip_norm` (1 when
    /// clipping is off or not needed); `Error::Numeric` for a non-finite norm.
    fn clip(&self, grads: &[Tensor], opt: &AdamConfig) -> Result<(f64, f64)> {
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
        Ok((norm, scale))
    }

    /// Clips `grads` by their global norm and takes one AdamW step on `params`; returns the norm
    /// before clipping. A non-finite norm or update returns `Error::Numeric` and changes nothing.
    pub(crate) fn update(
        &mut self,
        params: &mut [Tensor],
        grads: &[Tensor],
        opt: &AdamConfig,
    ) -> Result<f64> {
        let (norm, scale) = self.clip(grads, opt)?;
        let t = (self.step + 1) as i32;
        let h = Hyper {
            scale,
            beta1: opt.beta1,
            beta2: opt.beta2,
            eps: opt.eps,
            lr: opt.lr,
            weight_decay: opt.weight_decay,
            bc1: 1.0 - opt.beta1.powi(t),
            bc2: 1.0 - opt.beta2.powi(t),
            step: self.step + 1,
        };
        let (mut new_p, mut new_m, mut new_v) = (Vec::new(), Vec::new(), Vec::new());
        // sum |p| of each tensor not checked on the way (NaN and inf survive the sum), read back once
        let mut sums = Vec::new();
        for (k, g) in grads.iter().enumerate() {
            let u = run(&AdamStep {
                k,
                p: &params[k],
                g,
                m: &self.m[k],
                v: &self.v[k],
                h: &h,
            })?;
            if !u.checked {
                sums.push((k, u.p.abs()?.sum_all()?.to_dtype(candle_core::DType::F64)?));
            }
            new_p.push(u.p);
            new_m.push(u.m);
            new_v.push(u.v);
        }
        if !sums.is_empty() {
            let all = Tensor::stack(&sums.iter().map(|s| &s.1).collect::<Vec<_>>(), 0)?;
            let bad = all.to_vec1::<f64>()?.iter().position(|x| !x.is_finite());
            if let Some(i) = bad {
                return Err(h.non_finite(sums[i].0));
            }
        }
        params.clone_from_slice(&new_p);
        self.m = new_m;
        self.v = new_v;
        self.step += 1;
        Ok(norm)
    }
    /// Clips `grads` by their global norm and takes one SGD step (see [`crate::sgd`]) on `params`,
    /// keeping the momentum buffers in the first moments' place (so checkpoints hold them);
    /// returns the norm before clipping. A non-finite norm or update changes nothing.
    pub(crate) fn sgd_update(
        &mut self,
        params: &mut [Tensor],
        grads: &[Tensor],
        opt: &AdamConfig,
        momentum: f64,
    ) -> Result<f64> {
        let (norm, scale) = self.clip(grads, opt)?;
        let (p, m) = crate::sgd::step(params, &self.m, grads, opt, momentum, scale, self.step + 1)?;
        params.clone_from_slice(&p);
        self.m = m;
        self.step += 1;
        Ok(norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

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
        assert!(matches!(err, Error::Numeric(_)), "{err}");
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

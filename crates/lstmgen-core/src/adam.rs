//! Adam with bias correction (Kingma & Ba 2015), optional decoupled weight decay (AdamW,
//! Loshchilov & Hutter 2019), and clipping by the global L2 norm of all gradients. The moments
//! live here, in the engine, so they can be saved and restored.

use crate::config::AdamConfig;
use crate::error::{Error, Result};
use candle_core::{DType, Tensor};

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

    /// Global L2 norm sqrt(sum over all gradients of g^2), in f64.
    pub fn global_norm(grads: &[Tensor]) -> Result<f64> {
        let mut sq = 0f64;
        for g in grads {
            sq += g
                .sqr()?
                .sum_all()?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?;
        }
        Ok(sq.sqrt())
    }

    /// Clips `grads` to `opt.clip_norm` (if > 0) and applies one update to `params` in place.
    /// Returns the norm before clipping. A non-finite gradient norm, or an update that would make a
    /// parameter non-finite, returns `Error::Numeric` and changes nothing.
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
        for (k, g) in grads.iter().enumerate() {
            let g = if scale != 1.0 {
                (g * scale)?
            } else {
                g.clone()
            };
            let m = ((&self.m[k] * opt.beta1)? + (&g * (1.0 - opt.beta1))?)?;
            let v = ((&self.v[k] * opt.beta2)? + (g.sqr()? * (1.0 - opt.beta2))?)?;
            // p -= lr * (m / bc1) / (sqrt(v / bc2) + eps)
            let denom = ((&v / bc2)?.sqrt()? + opt.eps)?;
            let upd = ((&m / denom)? * (opt.lr / bc1))?;
            let mut p = params[k].clone();
            if opt.weight_decay > 0.0 {
                p = (&p * (1.0 - opt.lr * opt.weight_decay))?;
            }
            let p = (p - upd)?;
            // An update can overflow even from finite gradients (e.g. an absurd lr): refuse it.
            let peak = p
                .flatten_all()?
                .abs()?
                .max(0)?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?;
            if !peak.is_finite() {
                return Err(Error::Numeric(format!(
                    "the update at step {} made parameter tensor {k} non-finite (lr {}); parameters were not updated",
                    self.step + 1,
                    opt.lr
                )));
            }
            new_p.push(p);
            new_m.push(m);
            new_v.push(v);
        }
        params.clone_from_slice(&new_p);
        self.m = new_m;
        self.v = new_v;
        self.step += 1;
        Ok(norm)
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
}

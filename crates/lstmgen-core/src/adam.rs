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
        let zeros = params.iter().map(|p| p.zeros_like()).collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self { m: zeros.clone(), v: zeros, step: 0 })
    }

    /// Steps taken so far.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Global L2 norm sqrt(sum over all gradients of g^2), in f64.
    pub fn global_norm(grads: &[Tensor]) -> Result<f64> {
        let mut sq = 0f64;
        for g in grads {
            sq += g.sqr()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        }
        Ok(sq.sqrt())
    }

    /// Clips `grads` to `opt.clip_norm` (if > 0) and applies one update to `params` in place.
    /// Returns the norm before clipping. A non-finite norm returns `Error::Numeric` and changes nothing.
    pub fn update(&mut self, params: &mut [Tensor], grads: &[Tensor], opt: &AdamConfig) -> Result<f64> {
        let norm = Self::global_norm(grads)?;
        if !norm.is_finite() {
            return Err(Error::Numeric(format!(
                "gradient norm is {norm} at step {}; parameters were not updated",
                self.step + 1
            )));
        }
        let scale = if opt.clip_norm > 0.0 && norm > opt.clip_norm { opt.clip_norm / (norm + 1e-6) } else { 1.0 };
        let t = (self.step + 1) as i32;
        let bc1 = 1.0 - opt.beta1.powi(t);
        let bc2 = 1.0 - opt.beta2.powi(t);
        for (k, g) in grads.iter().enumerate() {
            let g = if scale != 1.0 { (g * scale)? } else { g.clone() };
            let m = ((&self.m[k] * opt.beta1)? + (&g * (1.0 - opt.beta1))?)?;
            let v = ((&self.v[k] * opt.beta2)? + (g.sqr()? * (1.0 - opt.beta2))?)?;
            // p -= lr * (m / bc1) / (sqrt(v / bc2) + eps)
            let denom = ((&v / bc2)?.sqrt()? + opt.eps)?;
            let upd = ((&m / denom)? * (opt.lr / bc1))?;
            let mut p = params[k].clone();
            if opt.weight_decay > 0.0 {
                p = (&p * (1.0 - opt.lr * opt.weight_decay))?;
            }
            params[k] = (p - upd)?;
            self.m[k] = m;
            self.v[k] = v;
        }
        self.step += 1;
        Ok(norm)
    }
}

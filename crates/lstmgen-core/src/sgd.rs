//! Stochastic gradient descent with optional momentum, beside Adam: the update rule of the Penn
//! Treebank anchors (Zaremba et al. 2014: plain SGD with clipping; Merity et al. 2017: SGD, then
//! averaged SGD). PyTorch `torch.optim.SGD` semantics: `g' = g + weight_decay * p` (L2, coupled),
//! `buf = momentum * buf + g'` (`buf = g'` at the first step), `p -= lr * buf` (`lr * g'` without
//! momentum).

use crate::config::AdamConfig;
use crate::error::{ensure, Error, Result};
use candle_core::{DType, Tensor};

/// The update rule of a training step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// Adam / AdamW with the step's [`AdamConfig`] (the default).
    Adam,
    /// SGD with momentum in [0, 1) (0: plain SGD); uses the step's `lr`, `weight_decay` (coupled
    /// L2) and `clip_norm`.
    Sgd { momentum: f64 },
    /// NT-ASGD ([`crate::asgd`]): plain SGD steps (the step's `lr`, `weight_decay`, `clip_norm`),
    /// averaged from the validation at which the loss stops improving over `nonmono` evaluations
    /// (Merity et al. 2017 use 5).
    NtAsgd { nonmono: usize },
}

impl Optimizer {
    /// Checks the momentum and the non-monotone interval; `Error::Data` naming the one that is
    /// out of range (momentum outside [0, 1), nonmono 0).
    pub fn validate(&self) -> Result<()> {
        if let Optimizer::Sgd { momentum } = *self {
            ensure(
                momentum.is_finite() && (0.0..1.0).contains(&momentum),
                || format!("momentum must be in [0, 1), got {momentum}"),
            )?;
        }
        if let Optimizer::NtAsgd { nonmono } = *self {
            ensure((1..=1_000_000).contains(&nonmono), || {
                format!("nonmono must be an integer in [1, 1000000], got {nonmono}")
            })?;
        }
        Ok(())
    }
}

/// One SGD step on `params` with gradients `grads` already scaled by `scale` (clipping) and the
/// momentum buffers `buf` (zeros before the first step, then updated in place). Returns the new
/// parameters and buffers, or `Error::Numeric` naming the step when one is not finite.
pub(crate) fn step(
    params: &[Tensor],
    buf: &[Tensor],
    grads: &[Tensor],
    opt: &AdamConfig,
    momentum: f64,
    scale: f64,
    step: u64,
) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
    let (mut new_p, mut new_b) = (Vec::new(), Vec::new());
    let mut sums = Vec::new();
    for ((p, b), g) in params.iter().zip(buf).zip(grads) {
        let mut g = (g * scale)?;
        if opt.weight_decay > 0.0 {
            g = (g + (p * opt.weight_decay)?)?;
        }
        let b = if momentum > 0.0 {
            ((b * momentum)? + g)?
        } else {
            g
        };
        let p = (p - (&b * opt.lr)?)?;
        sums.push(p.abs()?.sum_all()?.to_dtype(DType::F64)?);
        new_p.push(p);
        new_b.push(if momentum > 0.0 {
            b
        } else {
            buf[new_b.len()].clone()
        });
    }
    let all = Tensor::stack(&sums, 0)?.to_vec1::<f64>()?;
    if let Some(k) = all.iter().position(|x| !x.is_finite()) {
        return Err(Error::Numeric(format!(
            "the SGD update of parameter {k} is non-finite at step {step} (lr {} too large?); \
             parameters were not updated",
            opt.lr
        )));
    }
    Ok((new_p, new_b))
}

#[cfg(test)]
mod tests {
    use crate::adam::Adam;
    use crate::config::AdamConfig;
    use candle_core::{Device, Tensor};

    /// Two clipped steps of SGD with momentum and L2 weight decay match torch.optim.SGD's rule
    /// written out by hand in f64; the momentum buffer lives where Adam keeps its first moment.
    #[test]
    fn matches_hand_computed_sgd_with_momentum() {
        let dev = Device::Cpu;
        let mut params = vec![Tensor::new(&[1.0f64, -2.0], &dev).unwrap()];
        let grads = [[3.0f64, 4.0], [0.5, -1.0]];
        let opt = AdamConfig {
            lr: 0.1,
            weight_decay: 0.01,
            clip_norm: 2.0,
            ..AdamConfig::default()
        };
        let momentum = 0.9;
        let mut state = Adam::new(&params).unwrap();
        let (mut p, mut buf) = ([1.0f64, -2.0], [0.0f64; 2]);
        for g in grads {
            let norm = (g[0] * g[0] + g[1] * g[1]).sqrt();
            let s = if norm > opt.clip_norm {
                opt.clip_norm / (norm + 1e-6)
            } else {
                1.0
            };
            state
                .sgd_update(
                    &mut params,
                    &[Tensor::new(&g, &dev).unwrap()],
                    &opt,
                    momentum,
                )
                .unwrap();
            for k in 0..2 {
                let gk = g[k] * s + opt.weight_decay * p[k];
                buf[k] = momentum * buf[k] + gk;
                p[k] -= opt.lr * buf[k];
            }
            let got = params[0].to_vec1::<f64>().unwrap();
            assert!(
                (got[0] - p[0]).abs() < 1e-12 && (got[1] - p[1]).abs() < 1e-12,
                "{got:?} vs {p:?}"
            );
        }
        assert_eq!(state.step(), 2);
    }

    #[test]
    fn overflowing_update_changes_nothing() {
        let dev = Device::Cpu;
        let mut params = vec![Tensor::new(&[1.0f32, 2.0], &dev).unwrap()];
        let mut state = Adam::new(&params).unwrap();
        let opt = AdamConfig {
            lr: 1e39,
            clip_norm: 0.0,
            ..AdamConfig::default()
        };
        let err = state
            .sgd_update(
                &mut params,
                &[Tensor::new(&[1.0f32, 1.0], &dev).unwrap()],
                &opt,
                0.0,
            )
            .unwrap_err();
        assert!(err.to_string().contains("non-finite"), "{err}");
        assert_eq!(params[0].to_vec1::<f32>().unwrap(), vec![1.0, 2.0]);
        assert_eq!(state.step(), 0);
    }
}

//! Non-monotonically triggered averaged SGD (NT-ASGD; Merity et al. 2017, "Regularizing and
//! Optimizing LSTM Language Models", Algorithm 1). Training takes plain SGD steps; each validation
//! loss is observed, and when one is worse than the best of all those observed before the last
//! `nonmono` (`t > n` and `v > min_{l < t - n} logs[l]`, with `t` the losses seen so far), the
//! average starts: from then on the model's weights are the mean of the SGD iterates after every
//! step since the trigger, `avg_k = avg_{k-1} + (w_k - avg_{k-1}) / k` (`torch.optim.ASGD`'s
//! running form), while SGD goes on updating the iterates. Evaluation, sampling and the files
//! written use the average; a checkpoint also keeps the iterates and the trigger state, so a
//! resumed run continues exactly.

use crate::error::Result;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// The trigger's state: every validation loss observed (nats/token, in order) and the optimizer
/// step at which averaging started (None: not yet). Saved in checkpoints as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    pub losses: Vec<f64>,
    pub start: Option<u64>,
    /// SGD steps averaged so far (0 until the first step after the trigger).
    pub count: u64,
}

impl Trigger {
    /// Records the validation loss `loss` observed after optimizer step `step`; returns true when
    /// this loss starts the averaging (once: later losses change nothing but the log). The rule of
    /// Algorithm 1: with `t` losses seen before this one, it fires when `t > nonmono` and `loss`
    /// is above the minimum of the first `t - nonmono`. A NaN loss never fires.
    pub fn observe(&mut self, loss: f64, nonmono: usize, step: u64) -> bool {
        let t = self.losses.len();
        let fire = self.start.is_none()
            && t > nonmono
            && self.losses[..t - nonmono].iter().any(|&best| loss > best);
        if fire {
            self.start = Some(step);
        }
        self.losses.push(loss);
        fire
    }
}

/// The averaging of a model: the trigger and, once SGD has stepped after it, the SGD iterates
/// (`live`, in parameter order) while the model's parameters hold their average.
#[derive(Default)]
pub(crate) struct Averaging {
    pub trigger: Trigger,
    pub live: Option<Vec<Tensor>>,
}

impl Averaging {
    /// Whether the trigger has fired.
    pub(crate) fn on(&self) -> bool {
        self.trigger.start.is_some()
    }

    /// Puts the SGD iterates into `params` for a training step and returns the average they
    /// held (None before the first averaged step).
    pub(crate) fn swap_in(&mut self, params: &mut Vec<Tensor>) -> Option<Vec<Tensor>> {
        self.live.take().map(|live| std::mem::replace(params, live))
    }

    /// After a training step on the iterates in `params`: when `stepped` and averaging is on,
    /// folds them into the average (`avg` from [`Averaging::swap_in`]), keeps them as the live
    /// iterates and leaves the new average in `params`; when the step failed, puts `avg` back.
    pub(crate) fn swap_out(
        &mut self,
        params: &mut Vec<Tensor>,
        avg: Option<Vec<Tensor>>,
        stepped: bool,
    ) -> Result<()> {
        if !stepped || !self.on() {
            if let Some(avg) = avg {
                self.live = Some(std::mem::replace(params, avg));
            }
            return Ok(());
        }
        let k = self.trigger.count + 1;
        let new_avg = match avg {
            None => params.clone(),
            Some(avg) => avg
                .iter()
                .zip(params.iter())
                .map(|(a, w)| Ok((a + ((w - a)? / k as f64)?)?))
                .collect::<Result<Vec<_>>>()?,
        };
        self.trigger.count = k;
        self.live = Some(std::mem::replace(params, new_avg));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fires when and only when the loss is above the best of the losses older than the last
    /// `nonmono`, and never again after that.
    #[test]
    fn fires_on_the_non_monotone_rule_only() {
        let n = 2;
        let mut t = Trigger::default();
        // t = 0, 1, 2 losses before: never fires (t > n needed), however bad the loss
        assert!(!t.observe(5.0, n, 10));
        assert!(!t.observe(9.0, n, 20));
        assert!(!t.observe(9.0, n, 30));
        // t = 3: min of the first 1 loss = 5.0; 4.0 is better: no
        assert!(!t.observe(4.0, n, 40));
        // t = 4: min of [5, 9] = 5; 5.0 is not above it: no
        assert!(!t.observe(5.0, n, 50));
        // t = 5: min of [5, 9, 9] = 5; 4.5 is better (even though worse than the recent 4.0): no
        assert!(!t.observe(4.5, n, 60));
        // t = 6: min of [5, 9, 9, 4] = 4; 4.2 > 4: fires
        assert!(t.observe(4.2, n, 70));
        assert_eq!(t.start, Some(70));
        assert!(!t.observe(100.0, n, 80), "fires once");
        assert_eq!(t.start, Some(70));
        assert_eq!(t.losses.len(), 8);
        let mut nan = Trigger {
            losses: vec![1.0; 6],
            ..Trigger::default()
        };
        assert!(!nan.observe(f64::NAN, n, 1));
    }

    /// AWD-LSTM's default interval of 5: the sixth loss is the first that can fire.
    #[test]
    fn interval_five_waits_for_six_losses() {
        let mut t = Trigger::default();
        for (i, l) in [3.0, 2.9, 2.8, 2.7, 2.6].iter().enumerate() {
            assert!(!t.observe(*l, 5, i as u64));
        }
        assert!(!t.observe(2.95, 5, 5), "t = 5 is not > 5");
        assert!(t.observe(3.1, 5, 6), "3.1 > min(3.0)");
    }

    use crate::config::{AdamConfig, ModelConfig};
    use crate::io::{from_safetensors, to_safetensors};
    use crate::model::Model;
    use crate::sgd::Optimizer;
    use candle_core::{DType, Device};
    use std::collections::HashMap;

    const CFG: ModelConfig = ModelConfig {
        vocab_size: 7,
        embedding_dim: 4,
        hidden_size: 5,
        num_layers: 2,
        dropout: 0.1,
        proj_size: 0,
    };
    const OPT: AdamConfig = AdamConfig {
        lr: 0.5,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 1e-4,
        clip_norm: 1.0,
    };

    fn model(optimizer: Optimizer, dtype: DType) -> Model {
        let params = crate::params::init_params(&CFG, 5, &Device::Cpu)
            .unwrap()
            .iter()
            .map(|p| p.to_dtype(dtype).unwrap())
            .collect();
        let mut m = Model::from_params(CFG, params, Device::Cpu).unwrap();
        m.set_optimizer(optimizer).unwrap();
        m
    }

    /// Training step `k` (1-based): a batch of its own, dropout seeded by k.
    fn step(m: &mut Model, k: u64) {
        let (b, t) = (3, 4);
        let ids: Vec<u32> = (0..b * t + 1)
            .map(|i| ((i as u64 * 5 + k * 3) % 7) as u32)
            .collect();
        m.train_step(&ids[..b * t], &ids[1..], b, t, &OPT, k, None)
            .unwrap();
    }

    fn flat(ts: &[Tensor]) -> Vec<f64> {
        ts.iter()
            .flat_map(|t| {
                t.flatten_all()
                    .unwrap()
                    .to_dtype(DType::F64)
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap()
            })
            .collect()
    }

    /// Until the trigger NT-ASGD is plain SGD; after it the parameters are the mean of the SGD
    /// iterates after each step since, computed here by hand from a plain-SGD twin (f64).
    #[test]
    fn the_average_is_the_mean_of_the_iterates_since_the_trigger() {
        let mut asgd = model(Optimizer::NtAsgd { nonmono: 1 }, DType::F64);
        let mut sgd = model(Optimizer::Sgd { momentum: 0.0 }, DType::F64);
        for k in 1..=2 {
            step(&mut asgd, k);
            step(&mut sgd, k);
            assert_eq!(flat(asgd.params()), flat(sgd.params()), "step {k}");
        }
        assert!(!asgd.observe_validation(3.0));
        assert!(!asgd.observe_validation(2.0), "t = 1 is not > nonmono 1");
        assert!(asgd.observe_validation(3.5), "3.5 > min(3.0)");
        assert_eq!(asgd.averaging().start, Some(2));
        let mut iterates: Vec<Vec<f64>> = Vec::new();
        for k in 3..=5 {
            step(&mut asgd, k);
            step(&mut sgd, k);
            iterates.push(flat(sgd.params()));
            assert_eq!(
                flat(asgd.averaged_iterates().unwrap()),
                flat(sgd.params()),
                "the iterates are SGD's at step {k}"
            );
            let n = iterates.len() as f64;
            let mean: Vec<f64> = (0..iterates[0].len())
                .map(|j| iterates.iter().map(|w| w[j]).sum::<f64>() / n)
                .collect();
            let got = flat(asgd.params());
            let worst = got
                .iter()
                .zip(&mean)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(worst < 1e-12, "step {k}: average off the mean by {worst}");
        }
        assert_eq!(asgd.averaging().count, 3);
        assert_ne!(flat(asgd.params()), flat(sgd.params()));
    }

    /// Adam and SGD do not record validation losses.
    #[test]
    fn other_optimizers_never_average() {
        let mut m = model(Optimizer::Adam, DType::F32);
        for loss in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0] {
            assert!(!m.observe_validation(loss));
        }
        assert_eq!(*m.averaging(), Trigger::default());
    }

    /// The run of `steps` steps with validation losses observed after steps 2 to 6, resumed from
    /// a checkpoint written after step `resume_at` when given.
    fn run(steps: u64, resume_at: Option<u64>) -> Model {
        let losses = HashMap::from([(2, 2.0), (3, 1.5), (4, 1.8), (5, 2.1), (6, 1.0)]);
        let opt = Optimizer::NtAsgd { nonmono: 2 };
        let mut m = model(opt, DType::F32);
        for k in 1..=steps {
            step(&mut m, k);
            if let Some(&l) = losses.get(&k) {
                m.observe_validation(l);
            }
            if resume_at == Some(k) {
                let bytes = to_safetensors(&m, &HashMap::new(), true).unwrap();
                m = from_safetensors(&bytes, &Device::Cpu).unwrap().model;
                m.set_optimizer(opt).unwrap();
            }
        }
        m
    }

    /// Resuming from a checkpoint before the trigger, right after it and while averaging gives
    /// the parameters, iterates and trigger state of the uninterrupted run, bit for bit.
    #[test]
    fn resume_in_the_middle_is_exact() {
        let whole = run(8, None);
        // nonmono 2: after step 4, t = 2 is not > 2; after step 5, t = 3 and 2.1 > min(2.0)
        assert_eq!(whole.averaging().losses, vec![2.0, 1.5, 1.8, 2.1, 1.0]);
        assert_eq!(whole.averaging().start, Some(5));
        assert_eq!(whole.averaging().count, 3);
        for at in [3, 5, 6] {
            let resumed = run(8, Some(at));
            assert_eq!(
                flat(resumed.params()),
                flat(whole.params()),
                "resumed at {at}"
            );
            assert_eq!(
                flat(resumed.averaged_iterates().unwrap()),
                flat(whole.averaged_iterates().unwrap()),
                "resumed at {at}"
            );
            assert_eq!(resumed.averaging(), whole.averaging(), "resumed at {at}");
        }
    }
}

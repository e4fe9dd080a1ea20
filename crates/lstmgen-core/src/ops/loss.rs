//! Softmax cross-entropy over the vocabulary as a fused op ([`CrossEntropy`]): summed loss
//! (nats), correct argmax predictions and, for training, dL/dlogits of the *mean* loss. The
//! decoder's bias can be added on the way in and its gradient (the column sums of dL/dlogits)
//! taken on the way out, so the logits-sized tensor is read once and written once per step.
//! Log-softmax subtracts the row max first. One row-parallel pass on the CPU, one kernel on CUDA
//! (cuda/loss.cu, after candle adds the bias), candle ops elsewhere (see [`crate::ops`]).
//!
//! loss_r = logsumexp(z_r) - z_r[t_r];  dL/dz_r = (softmax(z_r) - onehot(t_r)) / N;
//! z_r = x_r + b (b = 0 without a bias);  dL/db = sum_r dL/dz_r.

use super::rows::SumRows;
use super::{run, FusedOp};
use crate::act::Act;
use crate::buf::{self, cpu_slice};
use crate::error::{Error, Result};
use candle_core::{DType, Tensor, WithDType, D};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// The loss of `logits` `[N, V]` (plus `bias` `[V]` on every row, when given) against `targets`
/// `[N]` (u32), with the gradient when `want_grad`.
pub(crate) struct CrossEntropy<'a> {
    pub logits: &'a Tensor,
    pub bias: Option<&'a Tensor>,
    pub targets: &'a Tensor,
    pub want_grad: bool,
}

/// What [`CrossEntropy`] computes.
pub(crate) struct Loss {
    /// Sum over rows of -log softmax(logits)[target], nats.
    pub loss_sum: f64,
    /// Rows whose argmax equals the target.
    pub correct: u64,
    /// dL/dlogits `[N, V]` for the mean loss, when asked for.
    pub grad: Option<Tensor>,
    /// dL/dbias `[V]` (the column sums of `grad`), when asked for and there is a bias.
    pub bias_grad: Option<Tensor>,
}

impl CrossEntropy<'_> {
    /// The loss computed by `loss` on the logits with the bias added by candle, and the bias
    /// gradient from [`SumRows`]: the path of the implementations that take finished logits.
    fn around_bias(
        &self,
        loss: impl FnOnce(&Tensor) -> Option<Result<(f64, u64, Option<Tensor>)>>,
    ) -> Option<Result<Loss>> {
        let biased;
        let logits = match self.bias {
            None => self.logits,
            Some(b) => {
                biased = match self.logits.broadcast_add(b) {
                    Ok(t) => t,
                    Err(e) => return Some(Err(e.into())),
                };
                &biased
            }
        };
        let r = loss(logits)?;
        Some(r.and_then(|(loss_sum, correct, grad)| {
            let bias_grad = match (&grad, self.bias) {
                (Some(g), Some(_)) => Some(run(&SumRows(g))?),
                _ => None,
            };
            Ok(Loss {
                loss_sum,
                correct,
                grad,
                bias_grad,
            })
        }))
    }
}

impl FusedOp for CrossEntropy<'_> {
    type Output = Loss;

    fn dtype(&self) -> DType {
        self.logits.dtype()
    }

    #[cfg(feature = "cuda")]
    fn cuda(&self) -> Option<Result<Loss>> {
        if !self.logits.device().is_cuda() {
            return None;
        }
        self.around_bias(|logits| {
            crate::cuda::loss::cross_entropy(logits, self.targets, self.want_grad)
        })
    }

    fn cpu<T: Act>(&self) -> Option<Result<Loss>> {
        fused::<T>(self.logits, self.bias, self.targets, self.want_grad)
    }

    fn ops(&self) -> Result<Loss> {
        self.around_bias(|logits| Some(with_ops(logits, self.targets, self.want_grad)))
            .unwrap_or_else(|| Err(Error::Native("the candle-op loss did not run".into())))
    }
}

/// The CPU pass: rows in blocks, one block per rayon task; each block adds its rows' gradients
/// into its own bias-gradient accumulator, and the blocks' sums are added in block order, so the
/// result does not depend on which thread ran which block.
fn fused<T: Act>(
    logits: &Tensor,
    bias: Option<&Tensor>,
    targets: &Tensor,
    want_grad: bool,
) -> Option<Result<Loss>> {
    let (n, v) = logits.dims2().ok()?;
    if v == 0 {
        return None;
    }
    let (ls, ll) = logits.storage_and_layout();
    let (ts, tl) = targets.storage_and_layout();
    let x = cpu_slice::<T>(&ls, ll)?;
    let t = cpu_slice::<u32>(&ts, tl)?;
    let bias_storage = bias.map(|b| b.storage_and_layout());
    let b = match &bias_storage {
        Some((bs, bl)) => Some(cpu_slice::<T>(bs, bl)?),
        None => None,
    };
    if b.is_some_and(|b| b.len() != v) || t.len() != n {
        return None;
    }
    let want_bias_grad = want_grad && b.is_some();
    Some((|| {
        let inv_n = <T as WithDType>::from_f64(1.0 / n as f64);
        // One row: z = x + b into `dst` (the gradient row, or scratch), then its loss and
        // argmax hit, and (training) softmax(z)/N - onehot/N in place, added into `acc`.
        let row_stats = |r: usize, dst: &mut [MaybeUninit<T>], acc: &mut [T]| -> (f64, u64) {
            let row = &x[r * v..(r + 1) * v];
            let z: &mut [T] = match b {
                Some(b) => buf::fill(dst, row.iter().zip(b).map(|(&a, &c)| a + c)),
                None => buf::fill(dst, row.iter().copied()),
            };
            let (mut max, mut arg) = (z[0], 0);
            for (j, &e) in z.iter().enumerate() {
                if e > max {
                    max = e;
                    arg = j;
                }
            }
            let target = t[r] as usize;
            let picked = z[target];
            z.iter_mut().for_each(|e| *e -= max);
            T::exp_in_place(z);
            let sum: T = z.iter().fold(T::zero(), |acc, &e| acc + e);
            let lse = sum.ln() + max;
            if want_grad {
                let scale = inv_n / sum; // softmax / N
                z.iter_mut().for_each(|e| *e *= scale);
                z[target] -= inv_n;
                if want_bias_grad {
                    acc.iter_mut().zip(z.iter()).for_each(|(a, &g)| *a += g);
                }
            }
            (WithDType::to_f64(lse - picked), (arg == target) as u64)
        };
        let block = n.div_ceil(rayon::current_num_threads().max(1) * 4).max(1);
        let acc_len = if want_bias_grad { v } else { 0 };
        let mut grad = if want_grad {
            buf::uninit::<T>(n * v)
        } else {
            Vec::new()
        };
        let blocks: Vec<(f64, u64, Vec<T>)> = if want_grad {
            grad.par_chunks_mut(block * v)
                .enumerate()
                .map(|(k, g)| {
                    let mut acc = vec![T::zero(); acc_len];
                    let (mut loss, mut correct) = (0.0, 0);
                    for (i, dst) in g.chunks_mut(v).enumerate() {
                        let (l, c) = row_stats(k * block + i, dst, &mut acc);
                        loss += l;
                        correct += c;
                    }
                    (loss, correct, acc)
                })
                .collect()
        } else {
            (0..n.div_ceil(block))
                .into_par_iter()
                .map(|k| {
                    let mut scratch = buf::uninit::<T>(v);
                    let (mut loss, mut correct) = (0.0, 0);
                    for r in k * block..((k + 1) * block).min(n) {
                        let (l, c) = row_stats(r, &mut scratch, &mut []);
                        loss += l;
                        correct += c;
                    }
                    (loss, correct, Vec::new())
                })
                .collect()
        };
        let mut bias_sum = vec![T::zero(); acc_len];
        let (mut loss_sum, mut correct) = (0.0, 0);
        for (l, c, acc) in &blocks {
            loss_sum += l;
            correct += c;
            bias_sum.iter_mut().zip(acc).for_each(|(s, &a)| *s += a);
        }
        let grad = if want_grad {
            // SAFETY: every row chunk of `grad` went through `buf::fill` in row_stats.
            let grad = unsafe { buf::assume_init(grad) };
            Some(Tensor::from_vec(grad, (n, v), logits.device())?)
        } else {
            None
        };
        let bias_grad = if want_bias_grad {
            Some(Tensor::from_vec(bias_sum, v, logits.device())?)
        } else {
            None
        };
        Ok(Loss {
            loss_sum,
            correct,
            grad,
            bias_grad,
        })
    })())
}

/// The same computation with candle ops (any device).
fn with_ops(
    logits: &Tensor,
    targets: &Tensor,
    want_grad: bool,
) -> Result<(f64, u64, Option<Tensor>)> {
    let n = logits.dim(0)?;
    let max = logits.max_keepdim(D::Minus1)?;
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?; // [N, 1]
    let idx = targets.reshape((n, 1))?;
    let picked = shifted.gather(&idx, D::Minus1)?; // [N, 1]
    let loss_sum = (lse.clone() - picked)?
        .sum_all()?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?;
    let pred = logits.argmax_keepdim(D::Minus1)?.reshape(n)?;
    let correct = pred
        .eq(targets)?
        .to_dtype(DType::F32)?
        .sum_all()?
        .to_scalar::<f32>()? as u64;
    let grad = if want_grad {
        let softmax = shifted.broadcast_sub(&lse)?.exp()?;
        let minus_one = Tensor::full(-1f32, (n, 1), logits.device())?.to_dtype(logits.dtype())?;
        Some((softmax.scatter_add(&idx, &minus_one, D::Minus1)? / n as f64)?)
    } else {
        None
    };
    Ok((loss_sum, correct, grad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn inputs() -> (Tensor, Tensor, Tensor) {
        let dev = Device::Cpu;
        let (n, v) = (11, 7);
        let x = Tensor::from_vec(
            (0..n * v)
                .map(|i| (i as f64 * 0.61).sin() * 3.0)
                .collect::<Vec<_>>(),
            (n, v),
            &dev,
        )
        .unwrap();
        let b = Tensor::from_vec(
            (0..v).map(|j| (j as f64 * 1.3).cos()).collect::<Vec<_>>(),
            v,
            &dev,
        )
        .unwrap();
        let t = Tensor::from_vec(vec![0u32, 6, 3, 3, 1, 2, 5, 4, 0, 6, 1], n, &dev).unwrap();
        (x, b, t)
    }

    /// The fused CPU pass and the candle-op path agree on loss, accuracy, gradient and bias
    /// gradient, with and without a bias, with and without the gradient.
    #[test]
    fn fused_matches_ops() {
        let (x, b, t) = inputs();
        for bias in [None, Some(&b)] {
            for want_grad in [true, false] {
                let op = CrossEntropy {
                    logits: &x,
                    bias,
                    targets: &t,
                    want_grad,
                };
                let (a, o) = (op.cpu::<f64>().unwrap().unwrap(), op.ops().unwrap());
                assert!((a.loss_sum - o.loss_sum).abs() < 1e-12);
                assert_eq!(a.correct, o.correct);
                assert_eq!(a.grad.is_some(), want_grad);
                assert_eq!(a.bias_grad.is_some(), want_grad && bias.is_some());
                if let (Some(ga), Some(go)) = (a.grad, o.grad) {
                    assert!(crate::max_diff(&ga, &go) < 1e-12);
                }
                if let (Some(ga), Some(go)) = (a.bias_grad, o.bias_grad) {
                    assert!(crate::max_diff(&ga, &go) < 1e-12);
                }
            }
        }
    }

    /// With a bias, the loss is the loss of the logits with the bias added beforehand.
    #[test]
    fn bias_is_added_to_every_row() {
        let (x, b, t) = inputs();
        let added = x.broadcast_add(&b).unwrap();
        let with = |logits, bias| {
            CrossEntropy {
                logits,
                bias,
                targets: &t,
                want_grad: true,
            }
            .cpu::<f64>()
            .unwrap()
            .unwrap()
        };
        let (fused, plain) = (with(&x, Some(&b)), with(&added, None));
        assert_eq!(fused.loss_sum, plain.loss_sum);
        assert_eq!(fused.correct, plain.correct);
        assert_eq!(
            crate::max_diff(&fused.grad.unwrap(), &plain.grad.unwrap()),
            0.0
        );
    }
}

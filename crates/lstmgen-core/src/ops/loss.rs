//! Softmax cross-entropy over the vocabulary as a fused op ([`CrossEntropy`]): summed loss
//! (nats), correct argmax predictions and, for training, dL/dlogits of the *mean* loss.
//! Log-softmax subtracts the row max first. One row-parallel pass on the CPU, one kernel on CUDA
//! (cuda/loss.cu), candle ops elsewhere (see [`crate::ops`]).
//!
//! loss_r = logsumexp(x_r) - x_r[t_r];  dL/dx_r = (softmax(x_r) - onehot(t_r)) / N.

use super::FusedOp;
use crate::act::Act;
use crate::buf::{self, cpu_slice};
use crate::error::Result;
use candle_core::{DType, Tensor, WithDType, D};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// The loss of `logits` `[N, V]` against `targets` `[N]` (u32), with the gradient when `want_grad`.
pub(crate) struct CrossEntropy<'a> {
    pub logits: &'a Tensor,
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
}

impl FusedOp for CrossEntropy<'_> {
    type Output = Loss;

    fn dtype(&self) -> DType {
        self.logits.dtype()
    }

    #[cfg(feature = "cuda")]
    fn cuda(&self) -> Option<Result<Loss>> {
        let r = crate::cuda::loss::cross_entropy(self.logits, self.targets, self.want_grad)?;
        Some(r.map(|(loss_sum, correct, grad)| Loss {
            loss_sum,
            correct,
            grad,
        }))
    }

    fn cpu<T: Act>(&self) -> Option<Result<Loss>> {
        fused::<T>(self.logits, self.targets, self.want_grad)
    }

    fn ops(&self) -> Result<Loss> {
        with_ops(self.logits, self.targets, self.want_grad)
    }
}

fn fused<T: Act>(logits: &Tensor, targets: &Tensor, want_grad: bool) -> Option<Result<Loss>> {
    let (ls, ll) = logits.storage_and_layout();
    let (ts, tl) = targets.storage_and_layout();
    let x = cpu_slice::<T>(&ls, ll)?;
    let t = cpu_slice::<u32>(&ts, tl)?;
    Some((|| {
        let (n, v) = logits.dims2()?;
        let inv_n = <T as WithDType>::from_f64(1.0 / n as f64);
        let mut grad = if want_grad {
            buf::uninit::<T>(n * v)
        } else {
            Vec::new()
        };
        let row_stats = |r: usize, g: Option<&mut [MaybeUninit<T>]>| -> (f64, u64) {
            let row = &x[r * v..(r + 1) * v];
            let (mut max, mut arg) = (row[0], 0);
            for (j, &e) in row.iter().enumerate() {
                if e > max {
                    max = e;
                    arg = j;
                }
            }
            let target = t[r] as usize;
            // e^(x - max) once, into the gradient row when there is one.
            let mut scratch;
            let shifted = row.iter().map(|&xv| xv - max);
            let ex: &mut [T] = match g {
                Some(g) => buf::fill(g, shifted),
                None => {
                    scratch = shifted.collect::<Vec<T>>();
                    &mut scratch
                }
            };
            T::exp_in_place(ex);
            let sum: T = ex.iter().fold(T::zero(), |acc, &e| acc + e);
            let lse = sum.ln() + max;
            if want_grad {
                let scale = inv_n / sum; // softmax / N
                ex.iter_mut().for_each(|e| *e *= scale);
                ex[target] -= inv_n;
            }
            (WithDType::to_f64(lse - row[target]), (arg == target) as u64)
        };
        let (loss_sum, correct) = if want_grad {
            grad.par_chunks_mut(v)
                .enumerate()
                .map(|(r, g)| row_stats(r, Some(g)))
                .reduce(|| (0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        } else {
            (0..n)
                .into_par_iter()
                .map(|r| row_stats(r, None))
                .reduce(|| (0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        };
        let grad = if want_grad {
            // SAFETY: every row chunk of `grad` went through `buf::fill` in row_stats.
            let grad = unsafe { buf::assume_init(grad) };
            Some(Tensor::from_vec(grad, (n, v), logits.device())?)
        } else {
            None
        };
        Ok(Loss {
            loss_sum,
            correct,
            grad,
        })
    })())
}

/// The same computation with candle ops (any device).
fn with_ops(logits: &Tensor, targets: &Tensor, want_grad: bool) -> Result<Loss> {
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
    Ok(Loss {
        loss_sum,
        correct,
        grad,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The fused CPU pass and the candle-op path agree on loss, accuracy and gradient.
    #[test]
    fn fused_matches_ops() {
        let dev = Device::Cpu;
        let (n, v) = (5, 7);
        let x = Tensor::from_vec(
            (0..n * v)
                .map(|i| (i as f64 * 0.61).sin() * 3.0)
                .collect::<Vec<_>>(),
            (n, v),
            &dev,
        )
        .unwrap();
        let t = Tensor::from_vec(vec![0u32, 6, 3, 3, 1], n, &dev).unwrap();
        let op = CrossEntropy {
            logits: &x,
            targets: &t,
            want_grad: true,
        };
        let (a, b) = (op.cpu::<f64>().unwrap().unwrap(), op.ops().unwrap());
        assert!((a.loss_sum - b.loss_sum).abs() < 1e-12);
        assert_eq!(a.correct, b.correct);
        assert!(crate::max_diff(&a.grad.unwrap(), &b.grad.unwrap()) < 1e-12);
    }
}

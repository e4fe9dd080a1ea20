//! Softmax cross-entropy as one CUDA kernel (loss.cu), the GPU counterpart of the engine's fused
//! CPU loop: per-row losses and hits computed in one launch, their sums read back together.

use super::{alloc, applies, function, per_row, tensor, view};
use crate::error::Result;
use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::WrapErr;
use candle_core::{DType, Tensor};

/// Softmax cross-entropy of `logits` `[N, V]` (contiguous f32 on CUDA) against `targets` `[N]`
/// (u32, on the same device; ids checked by the caller): the summed loss in nats, the rows whose
/// argmax is the target and, with `want_grad`, dL/dlogits `[N, V]` of the mean loss; or `None` when
/// the kernel does not apply.
// (loss_sum, correct, grad): plain values, named in the doc above.
#[allow(clippy::type_complexity)]
pub(crate) fn cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    want_grad: bool,
) -> Option<Result<(f64, u64, Option<Tensor>)>> {
    let dev = applies(&[logits])?;
    let (n, vocab) = logits.dims2().ok()?;
    let ok = targets.dtype() == DType::U32
        && targets.is_contiguous()
        && targets.device().same_device(logits.device())
        && targets.elem_count() == n;
    if !ok {
        return None;
    }
    Some((|| {
        let (sl, ll) = logits.storage_and_layout();
        let (st, lt) = targets.storage_and_layout();
        let (vl, vt) = (view::<f32>(&sl, ll)?, view::<u32>(&st, lt)?);
        // SAFETY: block r writes row_loss[r], row_correct[r] and, when asked, all of grad's row r.
        let (grad, row_loss, row_correct) = unsafe {
            (
                alloc(dev, if want_grad { n * vocab } else { 1 })?,
                alloc(dev, n)?,
                alloc(dev, n)?,
            )
        };
        let (v, inv_n, wg) = (vocab as u32, 1.0f32 / n as f32, want_grad as i32);
        let func = function(dev, "loss", "softmax_xent_f32")?;
        let stream = dev.cuda_stream();
        let mut args = stream.launch_builder(&func);
        args.arg(&vl)
            .arg(&vt)
            .arg(&grad)
            .arg(&row_loss)
            .arg(&row_correct);
        args.arg(&v).arg(&inv_n).arg(&wg);
        // SAFETY: argument types and order match softmax_xent_f32; logits and grad (when used)
        // hold n*vocab f32, targets n u32, row_loss and row_correct n f32.
        unsafe { args.launch(per_row(n)) }.w()?;
        let sums = Tensor::stack(
            &[
                tensor(row_loss, dev, n).to_dtype(DType::F64)?.sum_all()?,
                tensor(row_correct, dev, n)
                    .to_dtype(DType::F64)?
                    .sum_all()?,
            ],
            0,
        )?
        .to_vec1::<f64>()?;
        Ok((
            sums[0],
            sums[1] as u64,
            want_grad.then(|| tensor(grad, dev, (n, vocab))),
        ))
    })())
}

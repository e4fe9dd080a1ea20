//! Sampling on the GPU (kernels in sample.cu): top-k / top-p filtering of next-token logits (the
//! kept tokens keep their logits, the others become -inf) and the Gumbel-max draw of one token per
//! row, so that only the ids leave the device; and the per-row Philox uniforms of that draw.

use super::{alloc, applies, function, per_row, tensor, view};
use crate::error::Result;
use candle_core::cuda_backend::cudarc::driver::PushKernelArg;
use candle_core::cuda_backend::{CudaDevice, WrapErr};
use candle_core::Tensor;

/// `logits` `[n, V]` (contiguous f32 on CUDA) with every token outside the row's top-`top_k`
/// (0: no limit) and then outside its top-`top_p` nucleus under softmax(logits / `temperature`)
/// set to -inf; `None` when the kernel does not apply (other dtype or device, or
/// `LSTMGEN_CUDA_KERNELS=candle`).
pub(crate) fn filter(
    logits: &Tensor,
    top_k: usize,
    top_p: f64,
    temperature: f64,
) -> Option<Result<Tensor>> {
    let dev = applies(&[logits])?;
    Some(filter_on(dev, logits, top_k, top_p, temperature))
}

fn filter_on(
    dev: &CudaDevice,
    logits: &Tensor,
    top_k: usize,
    top_p: f64,
    temperature: f64,
) -> Result<Tensor> {
    let (n, vocab) = logits.dims2()?;
    let (s, l) = logits.storage_and_layout();
    let src = view::<f32>(&s, l)?;
    // SAFETY: block r writes all `vocab` entries of row r, for every row.
    let out = unsafe { alloc(dev, n * vocab)? };
    let (v, k) = (vocab as u32, top_k.min(u32::MAX as usize) as u32);
    let (p, inv_t) = (top_p as f32, (1.0 / temperature) as f32);
    let func = function(dev, "sample", "topk_topp_filter_f32")?;
    let stream = dev.cuda_stream();
    let mut args = stream.launch_builder(&func);
    args.arg(&src).arg(&out).arg(&v).arg(&k).arg(&p).arg(&inv_t);
    // SAFETY: argument types and order match topk_topp_filter_f32; both buffers hold n*vocab f32.
    unsafe { args.launch(per_row(n)) }.w()?;
    Ok(tensor(out, dev, (n, vocab)))
}

/// One token id per row of `logits` `[n, V]`: argmax of `logits / t - ln(-ln u)` with `u` `[n, V]`
/// uniform in (0, 1] (clamped to [2^-126, 1 - 2^-24], as on the CPU), as a u32 tensor `[n]`;
/// `None` when the kernel does not apply.
pub(crate) fn gumbel_argmax(logits: &Tensor, u: &Tensor, t: f64) -> Option<Result<Tensor>> {
    let dev = applies(&[logits, u])?;
    if logits.dims() != u.dims() || logits.rank() != 2 {
        return None;
    }
    Some((|| {
        let (n, vocab) = logits.dims2()?;
        let (sl, ll) = logits.storage_and_layout();
        let (su, lu) = u.storage_and_layout();
        let (vl, vu) = (view::<f32>(&sl, ll)?, view::<f32>(&su, lu)?);
        // SAFETY: block r writes ids[r], for every row.
        let ids = unsafe { dev.alloc::<u32>(n)? };
        let (v, tf) = (vocab as u32, t as f32);
        let func = function(dev, "sample", "gumbel_argmax_f32")?;
        let stream = dev.cuda_stream();
        let mut args = stream.launch_builder(&func);
        args.arg(&vl).arg(&vu).arg(&ids).arg(&v).arg(&tf);
        // SAFETY: argument types and order match gumbel_argmax_f32; logits and u hold n*vocab
        // f32, ids n u32.
        unsafe { args.launch(per_row(n)) }.w()?;
        Ok(tensor(ids, dev, n))
    })())
}

/// Uniforms `[n, vocab]` in (0, 1) on `device`: row r from Philox4x32-10 under `seed` with stream
/// `first_stream + r` at `step` (see `philox_uniform_f32` in sample.cu); `None` off CUDA or with
/// the kernels off.
pub(crate) fn philox_uniform(
    device: &candle_core::Device,
    n: usize,
    vocab: usize,
    seed: u64,
    first_stream: u32,
    step: u64,
) -> Option<Result<Tensor>> {
    let candle_core::Device::Cuda(dev) = device else {
        return None;
    };
    if !super::enabled() {
        return None;
    }
    Some((|| {
        // SAFETY: block r writes all `vocab` entries of row r, for every row.
        let out = unsafe { alloc(dev, n * vocab)? };
        let v = vocab as u32;
        let (seed_lo, seed_hi) = (seed as u32, (seed >> 32) as u32);
        let (step_lo, step_hi) = (step as u32, (step >> 32) as u32);
        let func = function(dev, "sample", "philox_uniform_f32")?;
        let stream = dev.cuda_stream();
        let mut args = stream.launch_builder(&func);
        args.arg(&out)
            .arg(&v)
            .arg(&seed_lo)
            .arg(&seed_hi)
            .arg(&first_stream)
            .arg(&step_lo)
            .arg(&step_hi);
        // SAFETY: argument types and order match philox_uniform_f32; out holds n*vocab f32.
        unsafe { args.launch(per_row(n)) }.w()?;
        Ok(tensor(out, dev, (n, vocab)))
    })())
}

//! The AdamW update of one parameter tensor as one CUDA kernel (adam.cu), where candle ops take
//! ~12 launches: the same formulas as the engine's CPU loop, new (param, m, v) in fresh buffers.

use super::{alloc, applies, function, tensor, view};
use crate::error::Result;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaDevice, WrapErr};
use candle_core::Tensor;

/// New `[param, m, v]` of `p` from its gradient `g` and moments `m`, `v` (all the same shape), or
/// `None` when the kernel does not apply. `coef` are the update's coefficients in adam_f32's
/// argument order: gradient scale, beta1, 1 - beta1, beta2, 1 - beta2, bias correction 2, eps,
/// step size lr / (bias correction 1), 1 - lr * weight_decay. Finiteness is the caller's check.
pub(crate) fn step(
    p: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    coef: [f32; 9],
) -> Option<Result<[Tensor; 3]>> {
    let dev = applies(&[p, g, m, v])?;
    let n = p.elem_count();
    if [g, m, v].iter().any(|t| t.elem_count() != n) {
        return None;
    }
    Some(step_on(dev, [p, g, m, v], coef))
}

fn step_on(dev: &CudaDevice, ts: [&Tensor; 4], coef: [f32; 9]) -> Result<[Tensor; 3]> {
    let n = ts[0].elem_count();
    let guards: Vec<_> = ts.iter().map(|t| t.storage_and_layout()).collect();
    let views = guards
        .iter()
        .map(|(s, l)| view::<f32>(s, l))
        .collect::<Result<Vec<_>>>()?;
    // SAFETY: one thread per element writes its p, m and v.
    let (np, nm, nv) = unsafe { (alloc(dev, n)?, alloc(dev, n)?, alloc(dev, n)?) };
    let nu = n as u32;
    let func = function(dev, "adam", "adam_f32")?;
    let stream = dev.cuda_stream();
    let mut args = stream.launch_builder(&func);
    for v in &views {
        args.arg(v);
    }
    args.arg(&np).arg(&nm).arg(&nv).arg(&nu);
    for x in &coef {
        args.arg(x);
    }
    // SAFETY: argument types and order match adam_f32; every buffer holds n f32.
    unsafe { args.launch(LaunchConfig::for_num_elems(nu)) }.w()?;
    let dims = ts[0].dims().to_vec();
    Ok([
        tensor(np, dev, dims.clone()),
        tensor(nm, dev, dims.clone()),
        tensor(nv, dev, dims),
    ])
}

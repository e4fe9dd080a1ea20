//! The engine's fused operations, one type per op, each with up to three implementations that
//! compute the same equations:
//!
//! 1. one CUDA kernel (`cuda`, feature `cuda`: contiguous f32 CUDA tensors),
//! 2. one fused pass over contiguous CPU slices (`cpu`, f32 and f64), in rayon's pool,
//! 3. candle tensor ops (`ops`, any device and dtype; the reference the others are tested against).
//!
//! [`run`] is the one place that picks among them, in that order: the first that applies computes
//! the op. An implementation that does not apply to its inputs (wrong device, dtype or layout)
//! returns `None`. The op types are plain borrowed inputs; the CUDA kernels they call
//! (`crate::cuda`) take and return tensors and scalars only.

pub(crate) mod adam;
pub(crate) mod cell;
pub(crate) mod loss;
pub(crate) mod rows;
pub(crate) mod sample;

use crate::act::Act;
use crate::error::Result;
use candle_core::DType;

/// One fused operation; see the module docs for the order [`run`] tries its implementations in.
pub(crate) trait FusedOp {
    type Output;

    /// The dtype that selects the element type of the CPU loop (f32 or f64; others skip it).
    fn dtype(&self) -> DType;

    /// The op as one CUDA kernel, or `None` where it does not apply (the default: no kernel).
    fn cuda(&self) -> Option<Result<Self::Output>> {
        None
    }

    /// The op as one fused loop over CPU slices of element type `T`, or `None` where it does not
    /// apply (not on the CPU, not contiguous; the default: no CPU loop).
    fn cpu<T: Act>(&self) -> Option<Result<Self::Output>> {
        None
    }

    /// The op with candle ops, on any device.
    fn ops(&self) -> Result<Self::Output>;
}

/// Computes `op` with its first implementation that applies: CUDA kernel, fused CPU loop, candle ops.
pub(crate) fn run<O: FusedOp>(op: &O) -> Result<O::Output> {
    if let Some(r) = op.cuda() {
        return r;
    }
    let fused = match op.dtype() {
        DType::F32 => op.cpu::<f32>(),
        DType::F64 => op.cpu::<f64>(),
        _ => None,
    };
    fused.unwrap_or_else(|| op.ops())
}

//! CPU tensor data for the fused CPU loops: the element types they run on ([`CpuFloat`]), the
//! slices of contiguous CPU tensors ([`cpu_slice`], [`on_cpu`]), and output buffers that are
//! written once, element by element, without being zeroed first: the large per-step results
//! (logits gradients, Adam's new moments, gate activations) cost a memset each when allocated
//! with `vec![0; n]`, ~10% of a training step.

use candle_core::{Layout, Storage, Tensor, WithDType};
use num_traits::{Float, NumAssign};
use std::mem::{ManuallyDrop, MaybeUninit};

/// Float types the fused CPU loops run on: f32 (fast path) and f64 (reference precision, the
/// gradient check). Loops that need activations use [`crate::act::Act`], which extends this.
pub(crate) trait CpuFloat: Float + NumAssign + WithDType + Send + Sync {}

impl CpuFloat for f32 {}
impl CpuFloat for f64 {}

/// The contiguous slice of a CPU tensor of dtype `T`, or `None` (not on the CPU, not contiguous,
/// or another dtype).
pub(crate) fn cpu_slice<'a, T: WithDType>(
    storage: &'a Storage,
    layout: &Layout,
) -> Option<&'a [T]> {
    match storage {
        Storage::Cpu(s) => {
            let (start, end) = layout.contiguous_offsets()?;
            s.as_slice::<T>().ok().map(|v| &v[start..end])
        }
        _ => None,
    }
}

/// Runs `f` on the CPU slices of `ts` when all are contiguous CPU tensors of dtype `T`.
pub(crate) fn on_cpu<T: WithDType, R>(ts: &[&Tensor], f: impl FnOnce(&[&[T]]) -> R) -> Option<R> {
    let guards: Vec<_> = ts.iter().map(|t| t.storage_and_layout()).collect();
    let slices: Option<Vec<&[T]>> = guards.iter().map(|(s, l)| cpu_slice::<T>(s, l)).collect();
    slices.map(|s| f(&s))
}

/// A vector of `len` uninitialised slots.
pub(crate) fn uninit<T>(len: usize) -> Vec<MaybeUninit<T>> {
    let mut v = Vec::with_capacity(len);
    // SAFETY: MaybeUninit<T> needs no initialisation; the capacity is `len`.
    unsafe { v.set_len(len) };
    v
}

/// Writes `src` into every slot of `dst` and returns it as initialised.
/// Panics if `src` yields fewer items than `dst` has slots.
pub(crate) fn fill<T>(dst: &mut [MaybeUninit<T>], src: impl IntoIterator<Item = T>) -> &mut [T] {
    let mut n = 0;
    for (d, s) in dst.iter_mut().zip(src) {
        d.write(s);
        n += 1;
    }
    assert_eq!(n, dst.len(), "output buffer not fully written");
    // SAFETY: every slot was written just above; MaybeUninit<T> has T's layout.
    unsafe { &mut *(dst as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// The vector as initialised.
///
/// # Safety
/// Every slot must have been written (by [`fill`] over chunks that cover it, or `write`).
pub(crate) unsafe fn assume_init<T>(v: Vec<MaybeUninit<T>>) -> Vec<T> {
    let mut v = ManuallyDrop::new(v);
    Vec::from_raw_parts(v.as_mut_ptr() as *mut T, v.len(), v.capacity())
}

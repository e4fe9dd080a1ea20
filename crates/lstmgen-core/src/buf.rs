//! Output buffers that are written once, element by element, without being zeroed first: the
//! large per-step results (logits gradients, Adam's new moments, gate activations) cost a memset
//! each when allocated with `vec![0; n]`, ~10% of a training step.

use std::mem::{ManuallyDrop, MaybeUninit};

/// A vector of `len` uninitialised slots.
pub fn uninit<T>(len: usize) -> Vec<MaybeUninit<T>> {
    let mut v = Vec::with_capacity(len);
    // SAFETY: MaybeUninit<T> needs no initialisation; the capacity is `len`.
    unsafe { v.set_len(len) };
    v
}

/// Writes `src` into every slot of `dst` and returns it as initialised.
/// Panics if `src` yields fewer items than `dst` has slots.
pub fn fill<T>(dst: &mut [MaybeUninit<T>], src: impl IntoIterator<Item = T>) -> &mut [T] {
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
pub unsafe fn assume_init<T>(v: Vec<MaybeUninit<T>>) -> Vec<T> {
    let mut v = ManuallyDrop::new(v);
    Vec::from_raw_parts(v.as_mut_ptr() as *mut T, v.len(), v.capacity())
}

//! lstmgen's own CUDA kernels (feature `cuda`): the LSTM cell step (cell.rs), the AdamW update
//! (adam.rs) and softmax cross-entropy (loss.rs), each one launch where candle ops take ten or
//! more, and sampling (sample.rs: top-k/top-p filtering, which otherwise needs the logits on the
//! host, and the Gumbel-max draw), and the persistent recurrence (recurrence.rs: a layer's whole
//! sequence in one launch, behind `LSTMGEN_CUDA_RECURRENCE=persistent`; README.md beside this file).
//! The `.cu` sources beside this file are compiled to PTX (the recurrence to a fatbin) by build.rs
//! and loaded once per device.
//!
//! A leaf: the functions take and return tensors and scalars and know no engine type; the fused
//! ops in `crate::ops` call them first and fall back to their CPU loop or candle ops when a kernel
//! returns `None` (it applies to contiguous f32 CUDA tensors only, and not at all when
//! `LSTMGEN_CUDA_KERNELS=candle`, for comparison and as an escape hatch). Correctness is checked on
//! a GPU by `scripts/gpu/check.sh` (CUDA against the CPU build: loss, logits, every gradient,
//! sampling distributions).

pub(crate) mod adam;
pub(crate) mod cell;
pub(crate) mod loss;
pub(crate) mod recurrence;
pub(crate) mod sample;

use crate::error::{Error, Result};
use candle_core::cuda_backend::cudarc::driver::{CudaFunction, CudaSlice, CudaView, LaunchConfig};
use candle_core::cuda_backend::{CudaDType, CudaDevice, CudaStorage};
use candle_core::op::BackpropOp;
use candle_core::{DType, Device, Layout, Shape, Storage, Tensor};
use std::sync::OnceLock;

/// Whether the kernels are on (`LSTMGEN_CUDA_KERNELS` other than `candle`; read once).
pub(crate) fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("LSTMGEN_CUDA_KERNELS").as_deref() != Ok("candle"))
}

/// The CUDA device of `ts` when the kernels apply to all of them: f32, on CUDA, contiguous.
fn applies<'a>(ts: &[&'a Tensor]) -> Option<&'a CudaDevice> {
    let Device::Cuda(dev) = ts[0].device() else {
        return None;
    };
    let ok = enabled()
        && ts
            .iter()
            .all(|t| t.dtype() == DType::F32 && t.device().is_cuda() && t.is_contiguous());
    ok.then_some(dev)
}

/// Kernel `name` of the PTX module `module` (compiled by build.rs), loaded on first use; launch
/// it with `dev.cuda_stream().launch_builder(&f)` (candle's stream, so it orders with candle ops).
fn function(dev: &CudaDevice, module: &'static str, name: &str) -> Result<CudaFunction> {
    let ptx = match module {
        "lstm_cell" => include_str!(concat!(env!("OUT_DIR"), "/lstm_cell.ptx")),
        "adam" => include_str!(concat!(env!("OUT_DIR"), "/adam.ptx")),
        "sample" => include_str!(concat!(env!("OUT_DIR"), "/sample.ptx")),
        "loss" => include_str!(concat!(env!("OUT_DIR"), "/loss.ptx")),
        _ => return Err(Error::Native(format!("no CUDA module {module}"))),
    };
    Ok(dev
        .get_or_load_custom_func(name, &format!("lstmgen_{module}"), ptx)?
        .into_cuda_function())
}

/// The elements of a contiguous CUDA tensor's storage (dtype `T`), from its layout's offset.
fn view<'a, T: CudaDType>(storage: &'a Storage, layout: &Layout) -> Result<CudaView<'a, T>> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| Error::Native("CUDA kernel input is not contiguous".into()))?;
    match storage {
        Storage::Cuda(s) => Ok(s.as_cuda_slice::<T>()?.slice(start..end)),
        _ => Err(Error::Native("CUDA kernel input is not on CUDA".into())),
    }
}

/// Threads per block of the kernels that give each row of a matrix one block (loss.cu, sample.cu):
/// a multiple of 32, as their block reductions (reduce.cuh) need.
const ROW_THREADS: u32 = 256;

/// Launch shape of a one-block-per-row kernel over `rows` rows.
fn per_row(rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows as u32, 1, 1),
        block_dim: (ROW_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Fresh device memory for `n` f32 outputs.
///
/// # Safety
/// The memory is uninitialised: the caller's kernel must write every element before it is read.
unsafe fn alloc(dev: &CudaDevice, n: usize) -> Result<CudaSlice<f32>> {
    Ok(unsafe { dev.alloc::<f32>(n) }?)
}

/// A tensor of `shape` owning `slice` (no gradient tracking: the engine's backward is explicit).
fn tensor<T: CudaDType>(slice: CudaSlice<T>, dev: &CudaDevice, shape: impl Into<Shape>) -> Tensor {
    let storage = Storage::Cuda(CudaStorage::wrap_cuda_slice(slice, dev.clone()));
    Tensor::from_storage(storage, shape, BackpropOp::none(), false)
}

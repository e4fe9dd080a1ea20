//! Launches of the persistent LSTM recurrence (recurrence.cu): a layer's whole sequence forward, or
//! its whole backward recurrence, in one cooperative launch with `W_hh` resident in shared memory.
//!
//! The kernels' grid barrier needs every block resident at once. That holds because (1) the grid
//! has at most one block per SM (the tiling's `blocks <= SMs`), (2) the occupancy API confirms that
//! one block of this size fits an SM (registers, shared memory, threads) before the launch, and
//! (3) `cuLaunchCooperativeKernel` refuses a grid that cannot be co-resident instead of running it.
//!
//! The module is a fatbin built by build.rs: machine code for the build's compute capability
//! (`CUDA_COMPUTE_CAP`, default 90: the H200) and compute_75 PTX that the driver compiles for any
//! other GPU. A leaf like the rest of `cuda/`: tensors and scalars in, tensors out.

use super::{alloc, tensor, view};
use crate::error::{Error, Result};
use candle_core::cuda_backend::cudarc::driver::sys::{CUdevice_attribute, CUfunction_attribute};
use candle_core::cuda_backend::cudarc::driver::{
    CudaFunction, CudaModule, CudaSlice, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::cudarc::nvrtc::Ptx;
use candle_core::cuda_backend::{CudaDevice, WrapErr};
use candle_core::{DType, Device, Tensor};
use std::sync::{Arc, Mutex};

/// The tiling of one launch (the engine's plan, as scalars).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tiling {
    /// Hidden units per block.
    pub units: u32,
    /// Blocks in the grid (`hidden / units`).
    pub blocks: u32,
    /// Batch rows per thread in a product tile (at most 8).
    pub rows_per_thread: u32,
    /// Columns of the streamed operand per shared-memory chunk (a multiple of 4).
    pub k_chunk: u32,
    /// Dynamic shared memory per block, bytes.
    pub shared_bytes: u32,
}

/// Threads per block (`THREADS` in recurrence.cu).
const THREADS: u32 = 256;

/// Streaming multiprocessors and per-block opt-in shared memory (bytes) of `dev`, or a sentence
/// saying why the persistent kernels cannot run there (no cooperative launch).
pub(crate) fn limits(dev: &CudaDevice) -> Result<std::result::Result<(usize, usize), String>> {
    let ctx = dev.cuda_stream().context().clone();
    let attr = |a| ctx.attribute(a).w();
    if attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH)? == 0 {
        return Ok(Err("the GPU does not support cooperative launches".into()));
    }
    let sms = attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?;
    let shared = attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)?;
    Ok(Ok((sms.max(0) as usize, shared.max(0) as usize)))
}

/// Kernel `name` of the recurrence fatbin, its module loaded once per device.
fn function(dev: &CudaDevice, name: &str) -> Result<CudaFunction> {
    static MODULES: Mutex<Vec<(candle_core::cuda_backend::DeviceId, Arc<CudaModule>)>> =
        Mutex::new(Vec::new());
    let mut modules = MODULES.lock().unwrap_or_else(|p| p.into_inner());
    let module = match modules.iter().find(|(id, _)| *id == dev.id()) {
        Some((_, m)) => m.clone(),
        None => {
            let image = include_bytes!(concat!(env!("OUT_DIR"), "/recurrence.fatbin")).to_vec();
            let m = dev
                .cuda_stream()
                .context()
                .load_module(Ptx::from_binary(image))
                .w()?;
            modules.push((dev.id(), m.clone()));
            m
        }
    };
    Ok(module.load_function(name).w()?)
}

/// Sets `func`'s dynamic shared memory to `tiling.shared_bytes` and checks that one block of it is
/// resident per SM and the grid fits the device at once; `Err` with the reason where not.
fn check_residency(
    dev: &CudaDevice,
    func: &CudaFunction,
    tiling: &Tiling,
) -> Result<std::result::Result<(), String>> {
    let smem = tiling.shared_bytes;
    func.set_attribute(
        CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
        smem as i32,
    )
    .w()?;
    let per_sm = func
        .occupancy_max_active_blocks_per_multiprocessor(THREADS, smem as usize, None)
        .w()?;
    let sms = match limits(dev)? {
        Ok((sms, _)) => sms as u32,
        Err(why) => return Ok(Err(why)),
    };
    if per_sm == 0 || tiling.blocks > sms.saturating_mul(per_sm) {
        return Ok(Err(format!(
            "{} blocks of {} KB shared memory cannot be resident at once ({per_sm} per SM, {sms} SMs)",
            tiling.blocks,
            smem.div_ceil(1024)
        )));
    }
    Ok(Ok(()))
}

fn launch_config(tiling: &Tiling) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (tiling.blocks, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: tiling.shared_bytes,
    }
}

/// `t` with its data starting on a 16-byte boundary (the kernels read it as float4): `t` itself,
/// or a copy when a view starts mid-way.
fn aligned(t: &Tensor) -> Result<Tensor> {
    let t = t.contiguous()?;
    Ok(if t.layout().start_offset() % 4 == 0 {
        t
    } else {
        t.copy()?
    })
}

/// Whether `ts` are all contiguous f32 tensors on the CUDA device `dev`.
fn on_device(dev: &CudaDevice, ts: &[&Tensor]) -> bool {
    ts.iter().all(|t| {
        t.dtype() == DType::F32
            && t.is_contiguous()
            && matches!(t.device(), Device::Cuda(d) if d.id() == dev.id())
    })
}

/// A zeroed barrier counter for one launch.
fn barrier(dev: &CudaDevice) -> Result<CudaSlice<u32>> {
    Ok(dev.alloc_zeros::<u32>(1)?)
}

/// The outputs of [`forward`]: `out` `[T*B, H]` (h of every step), the final `h` and `c` `[B, H]`,
/// and, when asked for, the backward pass's cache: activated gates `[T*B, 4H]`, the cell state each
/// step used (`c_{t-1}` after its reset) and `tanh(c_t)`, each `[T*B, H]`.
pub(crate) struct Forward {
    pub out: Tensor,
    pub h: Tensor,
    pub c: Tensor,
    pub cache: Option<[Tensor; 3]>,
}

/// The forward recurrence of one layer over `seq_len` steps from `xw` `[T*B, 4H]` (the input
/// projection plus both biases), `w_hh` `[4H, H]`, the state `h0`, `c0` `[B, H]` and the keep mask
/// `keep` `[T*B, 1]` of the record resets, all contiguous f32 on `dev`. `Ok(Err(why))` where the
/// tiling cannot be resident on this GPU (the caller runs the standard recurrence).
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    dev: &CudaDevice,
    xw: &Tensor,
    w_hh: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    keep: Option<&Tensor>,
    seq_len: usize,
    want_cache: bool,
    tiling: &Tiling,
) -> Result<std::result::Result<Forward, String>> {
    let (batch, hidden) = h0.dims2()?;
    let n = seq_len * batch;
    let shapes_ok = xw.dims() == [n, 4 * hidden]
        && w_hh.dims() == [4 * hidden, hidden]
        && c0.dims() == [batch, hidden]
        && keep.is_none_or(|k| k.elem_count() == n)
        && (tiling.blocks * tiling.units) as usize == hidden;
    if !shapes_ok {
        return Err(Error::Native(format!(
            "persistent recurrence: inconsistent shapes xw {:?}, w_hh {:?}, h0 {:?}, c0 {:?} for {seq_len} steps",
            xw.dims(),
            w_hh.dims(),
            h0.dims(),
            c0.dims()
        )));
    }
    let (w_hh, h0) = (aligned(w_hh)?, aligned(h0)?);
    let mut ts = vec![xw, &w_hh, &h0, c0];
    ts.extend(keep);
    if !on_device(dev, &ts) {
        return Ok(Err(
            "its inputs are not contiguous f32 tensors on this GPU".into()
        ));
    }
    let func = function(dev, "lstm_recurrence_fwd_f32")?;
    if let Err(why) = check_residency(dev, &func, tiling)? {
        return Ok(Err(why));
    }
    let guards: Vec<_> = ts.iter().map(|t| t.storage_and_layout()).collect();
    let views = guards
        .iter()
        .map(|(s, l)| view::<f32>(s, l))
        .collect::<Result<Vec<_>>>()?;
    let cached = if want_cache { n } else { 1 };
    // SAFETY: the kernel writes every element of out, h_last, c_last and, with want_cache, of
    // gates, c_used and tanh_c (one thread per (row, unit) and step); unused ones are never read.
    let (out, h, c, gates, c_used, tanh_c) = unsafe {
        (
            alloc(dev, n * hidden)?,
            alloc(dev, batch * hidden)?,
            alloc(dev, batch * hidden)?,
            alloc(dev, cached * 4 * hidden)?,
            alloc(dev, cached * hidden)?,
            alloc(dev, cached * hidden)?,
        )
    };
    let counter = barrier(dev)?;
    let (t, b, hd) = (seq_len as u32, batch as u32, hidden as u32);
    let (has_keep, cache_flag) = (keep.is_some() as i32, want_cache as i32);
    let stream = dev.cuda_stream();
    let mut args = stream.launch_builder(&func);
    args.arg(&views[0])
        .arg(&views[1])
        .arg(&views[2])
        .arg(&views[3]);
    // without a mask the kernel never reads `keep`: any valid pointer stands in
    args.arg(views.get(4).unwrap_or(&views[0]));
    args.arg(&out).arg(&gates).arg(&c_used).arg(&tanh_c);
    args.arg(&h).arg(&c).arg(&counter);
    args.arg(&t).arg(&b).arg(&hd).arg(&tiling.units);
    args.arg(&tiling.rows_per_thread).arg(&tiling.k_chunk);
    args.arg(&has_keep).arg(&cache_flag);
    // SAFETY: argument types and order match lstm_recurrence_fwd_f32; the sizes are checked above;
    // the grid is co-resident (check_residency, and the cooperative launch refuses it otherwise).
    unsafe { args.launch_cooperative(launch_config(tiling)) }.w()?;
    let cache = want_cache.then(|| {
        [
            tensor(gates, dev, (n, 4 * hidden)),
            tensor(c_used, dev, (n, hidden)),
            tensor(tanh_c, dev, (n, hidden)),
        ]
    });
    Ok(Ok(Forward {
        out: tensor(out, dev, (n, hidden)),
        h: tensor(h, dev, (batch, hidden)),
        c: tensor(c, dev, (batch, hidden)),
        cache,
    }))
}

/// The backward recurrence of one layer: `dz` `[T*B, 4H]`, the gradient of the loss w.r.t. the
/// pre-activations of every step, from the forward cache (`gates` `[T*B, 4H]`, `c_used` and `tanh_c`
/// `[T*B, H]`), `d_out` `[T*B, H]` (the gradient w.r.t. every step's h from above), `w_hh` `[4H, H]`
/// and the keep mask of the resets. Nothing flows into the initial state (truncated BPTT).
/// `Ok(Err(why))` where the tiling cannot be resident on this GPU.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    dev: &CudaDevice,
    w_hh: &Tensor,
    gates: &Tensor,
    c_used: &Tensor,
    tanh_c: &Tensor,
    d_out: &Tensor,
    keep: Option<&Tensor>,
    seq_len: usize,
    tiling: &Tiling,
) -> Result<std::result::Result<Tensor, String>> {
    let (n, hidden) = tanh_c.dims2()?;
    let batch = n / seq_len.max(1);
    let shapes_ok = batch * seq_len == n
        && gates.dims() == [n, 4 * hidden]
        && c_used.dims() == [n, hidden]
        && d_out.dims() == [n, hidden]
        && w_hh.dims() == [4 * hidden, hidden]
        && keep.is_none_or(|k| k.elem_count() == n)
        && (tiling.blocks * tiling.units) as usize == hidden;
    if !shapes_ok {
        return Err(Error::Native(format!(
            "persistent recurrence: inconsistent backward shapes gates {:?}, tanh_c {:?}, d_out {:?} for {seq_len} steps",
            gates.dims(),
            tanh_c.dims(),
            d_out.dims()
        )));
    }
    let d_out = d_out.contiguous()?;
    let mut ts = vec![w_hh, gates, c_used, tanh_c, &d_out];
    ts.extend(keep);
    if !on_device(dev, &ts) {
        return Ok(Err(
            "its inputs are not contiguous f32 tensors on this GPU".into()
        ));
    }
    let func = function(dev, "lstm_recurrence_bwd_f32")?;
    if let Err(why) = check_residency(dev, &func, tiling)? {
        return Ok(Err(why));
    }
    let guards: Vec<_> = ts.iter().map(|t| t.storage_and_layout()).collect();
    let views = guards
        .iter()
        .map(|(s, l)| view::<f32>(s, l))
        .collect::<Result<Vec<_>>>()?;
    // SAFETY: the kernel writes all of dz (one thread per (row, unit) and step, four gates each).
    let dz = unsafe { alloc(dev, n * 4 * hidden)? };
    let counter = barrier(dev)?;
    let (t, b, hd) = (seq_len as u32, batch as u32, hidden as u32);
    let has_keep = keep.is_some() as i32;
    let stream = dev.cuda_stream();
    let mut args = stream.launch_builder(&func);
    for v in &views[..5] {
        args.arg(v);
    }
    args.arg(views.get(5).unwrap_or(&views[0]));
    args.arg(&dz).arg(&counter);
    args.arg(&t).arg(&b).arg(&hd).arg(&tiling.units);
    args.arg(&tiling.rows_per_thread)
        .arg(&tiling.k_chunk)
        .arg(&has_keep);
    // SAFETY: argument types and order match lstm_recurrence_bwd_f32; sizes checked above; the grid
    // is co-resident as in `forward`.
    unsafe { args.launch_cooperative(launch_config(tiling)) }.w()?;
    Ok(Ok(tensor(dz, dev, (n, 4 * hidden))))
}

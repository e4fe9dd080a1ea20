//! The LSTM cell's elementwise work as one CUDA kernel per step and direction (kernels in
//! lstm_cell.cu; the equations are in the engine's cell op): the forward step reads
//! `zx`, `zh`, `c_prev` and writes the gates, `c`, `tanh(c)` and `h`; the backward step writes
//! `dz` and `dc_prev`. With candle ops the same work is ~10 launches forward, ~15 backward.

use super::{alloc, applies, function, tensor, view};
use crate::error::Result;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaDevice, WrapErr};
use candle_core::Tensor;

/// One forward step from the pre-activations `zx + zh` `[B, 4H]` and `c_prev` `[B, H]`: the
/// activated gates `[B, 4H]`, `c`, `tanh(c)` and `h` `[B, H]`, or `None` when the kernel does not
/// apply.
pub(crate) fn forward(zx: &Tensor, zh: &Tensor, c_prev: &Tensor) -> Option<Result<[Tensor; 4]>> {
    let dev = applies(&[zx, zh, c_prev])?;
    Some(forward_on(dev, zx, zh, c_prev))
}

fn forward_on(dev: &CudaDevice, zx: &Tensor, zh: &Tensor, c_prev: &Tensor) -> Result<[Tensor; 4]> {
    let (b, h4) = zx.dims2()?;
    let hd = h4 / 4;
    let n = b * hd;
    let (sx, lx) = zx.storage_and_layout();
    let (sh, lh) = zh.storage_and_layout();
    let (sc, lc) = c_prev.storage_and_layout();
    let (vx, vh, vc) = (
        view::<f32>(&sx, lx)?,
        view::<f32>(&sh, lh)?,
        view::<f32>(&sc, lc)?,
    );
    // SAFETY: one thread per (row, unit) writes its four gates and its c, tanh(c) and h.
    let (gates, c, tc, h) = unsafe {
        (
            alloc(dev, b * h4)?,
            alloc(dev, n)?,
            alloc(dev, n)?,
            alloc(dev, n)?,
        )
    };
    let (bu, hu) = (b as u32, hd as u32);
    let func = function(dev, "lstm_cell", "lstm_cell_fwd_f32")?;
    let stream = dev.cuda_stream();
    let mut args = stream.launch_builder(&func);
    args.arg(&vx).arg(&vh).arg(&vc);
    args.arg(&gates).arg(&c).arg(&tc).arg(&h);
    args.arg(&bu).arg(&hu);
    // SAFETY: argument types and order match lstm_cell_fwd_f32; sizes are b*4*hd and b*hd.
    unsafe { args.launch(LaunchConfig::for_num_elems(n as u32)) }.w()?;
    Ok([
        tensor(gates, dev, (b, h4)),
        tensor(c, dev, (b, hd)),
        tensor(tc, dev, (b, hd)),
        tensor(h, dev, (b, hd)),
    ])
}

/// One backward step from the step's activated `gates` `[B, 4H]`, `c_prev` and `tanh_c` `[B, H]`,
/// the gradient `dh_out` `[B, H]` from the layer above and, except at the last step, `next` =
/// `(dh_rec, dc_next)` from the next step: `dz` `[B, 4H]` and `dc_prev` `[B, H]`, or `None` when
/// the kernel does not apply.
pub(crate) fn backward(
    gates: &Tensor,
    c_prev: &Tensor,
    tanh_c: &Tensor,
    dh_out: &Tensor,
    next: Option<(&Tensor, &Tensor)>,
) -> Option<Result<[Tensor; 2]>> {
    // Without a next step, dh_out stands in for dh_rec and dc_next: the kernel does not read them.
    let (dh_rec, dc_next) = next.unwrap_or((dh_out, dh_out));
    let ts = [gates, c_prev, tanh_c, dh_out, dh_rec, dc_next];
    let dev = applies(&ts)?;
    Some(backward_on(dev, ts, next.is_some()))
}

fn backward_on(dev: &CudaDevice, ts: [&Tensor; 6], has_next: bool) -> Result<[Tensor; 2]> {
    let (b, h4) = ts[0].dims2()?;
    let hd = h4 / 4;
    let n = b * hd;
    let guards: Vec<_> = ts.iter().map(|t| t.storage_and_layout()).collect();
    let views = guards
        .iter()
        .map(|(s, l)| view::<f32>(s, l))
        .collect::<Result<Vec<_>>>()?;
    // SAFETY: one thread per (row, unit) writes its four sections of dz and its dc_prev.
    let (dz, dc_prev) = unsafe { (alloc(dev, b * h4)?, alloc(dev, n)?) };
    let (bu, hu, next) = (b as u32, hd as u32, has_next as i32);
    let func = function(dev, "lstm_cell", "lstm_cell_bwd_f32")?;
    let stream = dev.cuda_stream();
    let mut args = stream.launch_builder(&func);
    for v in &views {
        args.arg(v);
    }
    args.arg(&dz).arg(&dc_prev);
    args.arg(&bu).arg(&hu).arg(&next);
    // SAFETY: argument types and order match lstm_cell_bwd_f32; sizes are b*4*hd and b*hd.
    unsafe { args.launch(LaunchConfig::for_num_elems(n as u32)) }.w()?;
    Ok([tensor(dz, dev, (b, h4)), tensor(dc_prev, dev, (b, hd))])
}

//! One LSTM time step's elementwise work (the four gates, the cell update and their derivatives).
//! On the CPU it runs as one fused pass over contiguous slices (one allocation per output), on
//! CUDA as one kernel (cuda_cell.rs); elsewhere it falls back to candle tensor ops, which compute
//! the same equations.
//!
//! Forward (PyTorch `nn.LSTM`, gates i, f, g, o): `c = f*c_prev + i*g`, `h = o*tanh(c)`.
//! Backward (Graves 2013): `dc = dc_next + dh*o*(1-tanh(c)^2)`; `dz_i = dc*g*i(1-i)`,
//! `dz_f = dc*c_prev*f(1-f)`, `dz_g = dc*i*(1-g^2)`, `dz_o = dh*tanh(c)*o(1-o)`; `dc_prev = dc*f`.

use crate::act::Act;
use crate::buf;
use crate::error::Result;
use crate::lstm::GateConsts;
use candle_core::{DType, Layout, Storage, Tensor, WithDType};
use rayon::prelude::*;

/// Outputs of one forward step, each contiguous: activated gates `[B, 4H]`, cell `c`, `tanh(c)`
/// and hidden `h`, each `[B, H]`.
pub struct StepOut {
    pub gates: Tensor,
    pub c: Tensor,
    pub tanh_c: Tensor,
    pub h: Tensor,
}

/// Gradients of one backward step: `dz` `[B, 4H]` (pre-activations) and `dc_prev` `[B, H]`.
pub struct StepGrad {
    pub dz: Tensor,
    pub dc_prev: Tensor,
}

/// The contiguous slice of a CPU tensor of dtype `T`, or `None` (not on the CPU or not contiguous).
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
fn on_cpu<T: WithDType, R>(
    ts: &[&Tensor],
    f: impl FnOnce(&[&[T]]) -> Result<R>,
) -> Option<Result<R>> {
    let guards: Vec<_> = ts.iter().map(|t| t.storage_and_layout()).collect();
    let slices: Option<Vec<&[T]>> = guards.iter().map(|(s, l)| cpu_slice::<T>(s, l)).collect();
    slices.map(|s| f(&s))
}

/// Rows per parallel chunk of the fused kernels: one chunk (no threads) below ~8k units.
fn rows_per_chunk(batch: usize, hidden: usize) -> usize {
    let per = (8192 / hidden.max(1)).max(1);
    if batch <= per {
        batch.max(1)
    } else {
        batch
            .div_ceil(rayon::current_num_threads().max(1))
            .max(per.min(batch))
    }
}

/// One forward step from the pre-activations `z = zx + zh`, each `[B, 4H]` (the input
/// projection of this step and the recurrent product), and `c_prev` `[B, H]`.
pub fn forward(zx: &Tensor, zh: &Tensor, c_prev: &Tensor, consts: &GateConsts) -> Result<StepOut> {
    #[cfg(feature = "cuda")]
    if let Some(r) = crate::cuda::cell::forward(zx, zh, c_prev) {
        return r;
    }
    let fused = match zx.dtype() {
        DType::F32 => on_cpu::<f32, _>(&[zx, zh, c_prev], |s| forward_fused(s, zx)),
        DType::F64 => on_cpu::<f64, _>(&[zx, zh, c_prev], |s| forward_fused(s, zx)),
        _ => None,
    };
    fused.unwrap_or_else(|| forward_ops(&(zx + zh)?, c_prev, consts))
}

fn forward_fused<T: Act>(s: &[&[T]], zt: &Tensor) -> Result<StepOut> {
    let (zx, zh, cp) = (s[0], s[1], s[2]);
    let (b, h4) = zt.dims2()?;
    let hd = h4 / 4;
    let n = b * hd;
    let (mut gates, mut c, mut tc, mut h) = (
        buf::uninit::<T>(b * h4),
        buf::uninit::<T>(n),
        buf::uninit::<T>(n),
        buf::uninit::<T>(n),
    );
    let rows = rows_per_chunk(b, hd);
    gates
        .par_chunks_mut(rows * h4)
        .zip(c.par_chunks_mut(rows * hd))
        .zip(tc.par_chunks_mut(rows * hd))
        .zip(h.par_chunks_mut(rows * hd))
        .enumerate()
        .for_each(|(ci, (((gates, c), tc), h))| {
            let r0 = ci * rows;
            for lr in 0..gates.len() / h4 {
                let r = r0 + lr;
                let (zxr, zhr) = (&zx[r * h4..(r + 1) * h4], &zh[r * h4..(r + 1) * h4]);
                let gr = buf::fill(
                    &mut gates[lr * h4..(lr + 1) * h4],
                    zxr.iter().zip(zhr).map(|(&a, &b)| a + b),
                );
                let (ifg, o) = gr.split_at_mut(3 * hd);
                let (if_, g) = ifg.split_at_mut(2 * hd);
                T::sigmoid_in_place(if_);
                T::tanh_in_place(g);
                T::sigmoid_in_place(o);
                let (i, f) = if_.split_at(hd);
                let cpr = &cp[r * hd..(r + 1) * hd];
                let cr = buf::fill(
                    &mut c[lr * hd..(lr + 1) * hd],
                    (0..hd).map(|j| f[j] * cpr[j] + i[j] * g[j]),
                );
                let tr = buf::fill(&mut tc[lr * hd..(lr + 1) * hd], cr.iter().copied());
                T::tanh_in_place(tr);
                buf::fill(
                    &mut h[lr * hd..(lr + 1) * hd],
                    o.iter().zip(tr.iter()).map(|(&o, &t)| o * t),
                );
            }
        });
    let dev = zt.device();
    // SAFETY: every row of every chunk went through `buf::fill` for all four outputs.
    let (gates, c, tc, h) = unsafe {
        (
            buf::assume_init(gates),
            buf::assume_init(c),
            buf::assume_init(tc),
            buf::assume_init(h),
        )
    };
    Ok(StepOut {
        gates: Tensor::from_vec(gates, (b, h4), dev)?,
        c: Tensor::from_vec(c, (b, hd), dev)?,
        tanh_c: Tensor::from_vec(tc, (b, hd), dev)?,
        h: Tensor::from_vec(h, (b, hd), dev)?,
    })
}

/// The same step with candle ops (any device).
pub fn forward_ops(z: &Tensor, c_prev: &Tensor, consts: &GateConsts) -> Result<StepOut> {
    let hd = c_prev.dim(1)?;
    let a = consts.activate(z)?;
    let gate = |k: usize| a.narrow(1, k * hd, hd);
    let c = ((gate(1)? * c_prev)? + (gate(0)? * gate(2)?)?)?;
    let tanh_c = c.tanh()?;
    let h = (gate(3)? * &tanh_c)?;
    Ok(StepOut {
        gates: a,
        c,
        tanh_c,
        h,
    })
}

/// One backward step. The loss gradient w.r.t. this step's `h` is `dh_out + dh_rec` `[B, H]`
/// (from the layer above, and from the next step when there is one); `dc_next` is the gradient
/// flowing into this step's `c` from the next step (none at the last step).
pub fn backward(
    gates: &Tensor,
    c_prev: &Tensor,
    tanh_c: &Tensor,
    dh_out: &Tensor,
    next: Option<(&Tensor, &Tensor)>,
    consts: &GateConsts,
) -> Result<StepGrad> {
    #[cfg(feature = "cuda")]
    if let Some(r) = crate::cuda::cell::backward(gates, c_prev, tanh_c, dh_out, next) {
        return r;
    }
    let zero;
    let (dh_rec, dc_next) = match next {
        Some(n) => n,
        None => {
            zero = dh_out.zeros_like()?;
            (&zero, &zero)
        }
    };
    let ts = [gates, c_prev, tanh_c, dh_out, dh_rec, dc_next];
    let fused = match gates.dtype() {
        DType::F32 => on_cpu::<f32, _>(&ts, |s| backward_fused(s, gates)),
        DType::F64 => on_cpu::<f64, _>(&ts, |s| backward_fused(s, gates)),
        _ => None,
    };
    fused.unwrap_or_else(|| {
        backward_ops(gates, c_prev, tanh_c, &(dh_out + dh_rec)?, dc_next, consts)
    })
}

fn backward_fused<T: Act>(s: &[&[T]], gates_t: &Tensor) -> Result<StepGrad> {
    let (a, cp, tc, dho, dhr, dcn) = (s[0], s[1], s[2], s[3], s[4], s[5]);
    let (b, h4) = gates_t.dims2()?;
    let hd = h4 / 4;
    let one = T::one();
    let (mut dz, mut dc_prev) = (buf::uninit::<T>(b * h4), buf::uninit::<T>(b * hd));
    let rows = rows_per_chunk(b, hd);
    dz.par_chunks_mut(rows * h4)
        .zip(dc_prev.par_chunks_mut(rows * hd))
        .enumerate()
        .for_each(|(ci, (dz, dc_prev))| {
            let r0 = ci * rows;
            for lr in 0..dz.len() / h4 {
                let r = r0 + lr;
                let (ar, dzr) = (&a[r * h4..(r + 1) * h4], &mut dz[lr * h4..(lr + 1) * h4]);
                for j in 0..hd {
                    let k = r * hd + j;
                    let (i, f, g, o) = (ar[j], ar[hd + j], ar[2 * hd + j], ar[3 * hd + j]);
                    let (t, dh) = (tc[k], dho[k] + dhr[k]);
                    let dc = dcn[k] + dh * o * (one - t * t);
                    dzr[j].write(dc * g * i * (one - i));
                    dzr[hd + j].write(dc * cp[k] * f * (one - f));
                    dzr[2 * hd + j].write(dc * i * (one - g * g));
                    dzr[3 * hd + j].write(dh * t * o * (one - o));
                    dc_prev[lr * hd + j].write(dc * f);
                }
            }
        });
    let dev = gates_t.device();
    // SAFETY: for every row, the loop wrote all four gate sections of dz and dc_prev (j < hd).
    let (dz, dc_prev) = unsafe { (buf::assume_init(dz), buf::assume_init(dc_prev)) };
    Ok(StepGrad {
        dz: Tensor::from_vec(dz, (b, h4), dev)?,
        dc_prev: Tensor::from_vec(dc_prev, (b, hd), dev)?,
    })
}

/// The same backward step with candle ops (any device).
pub fn backward_ops(
    gates: &Tensor,
    c_prev: &Tensor,
    tanh_c: &Tensor,
    dh: &Tensor,
    dc_next: &Tensor,
    consts: &GateConsts,
) -> Result<StepGrad> {
    let hd = c_prev.dim(1)?;
    let gate = |k: usize| gates.narrow(1, k * hd, hd);
    let (i, f, g, o) = (gate(0)?, gate(1)?, gate(2)?, gate(3)?);
    let dc = (dc_next + ((dh * &o)? * (1.0 - tanh_c.sqr()?)?)?)?;
    let da = Tensor::cat(
        &[(&dc * &g)?, (&dc * c_prev)?, (&dc * &i)?, (dh * tanh_c)?],
        1,
    )?;
    let dz = (da * consts.derivative(gates)?)?;
    Ok(StepGrad {
        dz,
        dc_prev: (dc * f)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    use crate::max_diff;

    /// The fused CPU kernels and the candle-op path (used on other devices) agree.
    #[test]
    fn fused_matches_ops() {
        let dev = Device::Cpu;
        let (b, h) = (3, 5);
        let r = |n: usize, s: f64| {
            Tensor::from_vec(
                (0..n)
                    .map(|i| (i as f64 * 0.37 + s).sin() * 2.0)
                    .collect::<Vec<f64>>(),
                n,
                &dev,
            )
            .unwrap()
        };
        let consts = GateConsts::new(h, DType::F64, &dev).unwrap();
        let z = r(b * 4 * h, 0.1).reshape((b, 4 * h)).unwrap();
        let c = r(b * h, 0.7).reshape((b, h)).unwrap();
        let z2 = r(b * 4 * h, 0.4).reshape((b, 4 * h)).unwrap();
        let (f, o) = (
            forward(&z, &z2, &c, &consts).unwrap(),
            forward_ops(&(&z + &z2).unwrap(), &c, &consts).unwrap(),
        );
        for (x, y) in [
            (&f.gates, &o.gates),
            (&f.c, &o.c),
            (&f.tanh_c, &o.tanh_c),
            (&f.h, &o.h),
        ] {
            assert!(max_diff(x, y) < 1e-12);
        }
        let dh = r(b * h, 1.3).reshape((b, h)).unwrap();
        let dcn = r(b * h, 2.9).reshape((b, h)).unwrap();
        let dh2 = r(b * h, 0.2).reshape((b, h)).unwrap();
        let fb = backward(&f.gates, &c, &f.tanh_c, &dh, Some((&dh2, &dcn)), &consts).unwrap();
        let dh_sum = (&dh + &dh2).unwrap();
        let ob = backward_ops(&f.gates, &c, &f.tanh_c, &dh_sum, &dcn, &consts).unwrap();
        assert!(max_diff(&fb.dz, &ob.dz) < 1e-12);
        assert!(max_diff(&fb.dc_prev, &ob.dc_prev) < 1e-12);
    }
}

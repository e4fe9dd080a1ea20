//! One LSTM time step's elementwise work (the four gates, the cell update and their derivatives)
//! as two fused ops, [`Forward`] and [`Backward`]: one CUDA kernel each (cuda/lstm_cell.cu), one
//! fused pass over contiguous CPU slices (one allocation per output), or candle tensor ops, which
//! compute the same equations (see [`crate::ops`]).
//!
//! Forward (PyTorch `nn.LSTM`, gates i, f, g, o): `c = f*c_prev + i*g`, `h = o*tanh(c)`.
//! Backward (Graves 2013): `dc = dc_next + dh*o*(1-tanh(c)^2)`; `dz_i = dc*g*i(1-i)`,
//! `dz_f = dc*c_prev*f(1-f)`, `dz_g = dc*i*(1-g^2)`, `dz_o = dh*tanh(c)*o(1-o)`; `dc_prev = dc*f`.

use super::FusedOp;
use crate::act::Act;
use crate::buf::{self, on_cpu};
use crate::error::Result;
use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

/// Per-gate constants that let all four activations run as one pass over `z` `[batch, 4H]` in the
/// candle-op path: sigmoid(x) = 0.5 * tanh(0.5 x) + 0.5, so `a = tanh(z * scale) * scale + shift`
/// with scale = 0.5 (i, f, o) or 1 (g) and shift = 0.5 (i, f, o) or 0 (g).
pub(crate) struct GateConsts {
    scale: Tensor,
    shift: Tensor,
    /// da/dz = k1 + k2*a - a^2: sigmoid gives a - a^2 (k1 = 0, k2 = 1), tanh 1 - a^2 (k1 = 1, k2 = 0).
    k1: Tensor,
    k2: Tensor,
}

impl GateConsts {
    pub(crate) fn new(hidden: usize, dtype: DType, device: &Device) -> Result<Self> {
        let per_gate = |vals: [f32; 4]| -> Result<Tensor> {
            let v: Vec<f32> = vals
                .iter()
                .flat_map(|&x| std::iter::repeat_n(x, hidden))
                .collect();
            Ok(Tensor::from_vec(v, 4 * hidden, device)?.to_dtype(dtype)?)
        };
        Ok(Self {
            scale: per_gate([0.5, 0.5, 1.0, 0.5])?,
            shift: per_gate([0.5, 0.5, 0.0, 0.5])?,
            k1: per_gate([0.0, 0.0, 1.0, 0.0])?,
            k2: per_gate([1.0, 1.0, 0.0, 1.0])?,
        })
    }

    /// Activated gates `[rows, 4H]` = (sigmoid i, sigmoid f, tanh g, sigmoid o) from pre-activations.
    fn activate(&self, z: &Tensor) -> Result<Tensor> {
        Ok(z.broadcast_mul(&self.scale)?
            .tanh()?
            .broadcast_mul(&self.scale)?
            .broadcast_add(&self.shift)?)
    }

    /// Derivative of each activation w.r.t. its pre-activation, from the activations `a`.
    fn derivative(&self, a: &Tensor) -> Result<Tensor> {
        Ok((a.broadcast_mul(&self.k2)?.broadcast_add(&self.k1)? - a.sqr()?)?)
    }
}

/// Outputs of one forward step, each contiguous: activated gates `[B, 4H]`, cell `c`, `tanh(c)`
/// and hidden `h`, each `[B, H]`.
pub(crate) struct StepOut {
    pub gates: Tensor,
    pub c: Tensor,
    pub tanh_c: Tensor,
    pub h: Tensor,
}

/// Gradients of one backward step: `dz` `[B, 4H]` (pre-activations) and `dc_prev` `[B, H]`.
pub(crate) struct StepGrad {
    pub dz: Tensor,
    pub dc_prev: Tensor,
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
pub(crate) struct Forward<'a> {
    pub zx: &'a Tensor,
    pub zh: &'a Tensor,
    pub c_prev: &'a Tensor,
    pub consts: &'a GateConsts,
}

impl FusedOp for Forward<'_> {
    type Output = StepOut;

    fn dtype(&self) -> DType {
        self.zx.dtype()
    }

    #[cfg(feature = "cuda")]
    fn cuda(&self) -> Option<Result<StepOut>> {
        let r = crate::cuda::cell::forward(self.zx, self.zh, self.c_prev)?;
        Some(r.map(|[gates, c, tanh_c, h]| StepOut {
            gates,
            c,
            tanh_c,
            h,
        }))
    }

    fn cpu<T: Act>(&self) -> Option<Result<StepOut>> {
        on_cpu::<T, _>(&[self.zx, self.zh, self.c_prev], |s| {
            forward_fused(s, self.zx)
        })
    }

    fn ops(&self) -> Result<StepOut> {
        forward_ops(&(self.zx + self.zh)?, self.c_prev, self.consts)
    }
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

/// The forward step with candle ops (any device), from `z = zx + zh`.
fn forward_ops(z: &Tensor, c_prev: &Tensor, consts: &GateConsts) -> Result<StepOut> {
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
/// flowing into this step's `c` from the next step; `next` is `(dh_rec, dc_next)`, none at the
/// last step.
pub(crate) struct Backward<'a> {
    pub gates: &'a Tensor,
    pub c_prev: &'a Tensor,
    pub tanh_c: &'a Tensor,
    pub dh_out: &'a Tensor,
    pub next: Option<(&'a Tensor, &'a Tensor)>,
    pub consts: &'a GateConsts,
}

impl Backward<'_> {
    /// `(dh_rec, dc_next)`, zeros at the last step (`zero` holds them).
    fn next_or_zero<'b>(
        &'b self,
        zero: &'b mut Option<Tensor>,
    ) -> Result<(&'b Tensor, &'b Tensor)> {
        Ok(match self.next {
            Some(n) => n,
            None => {
                let z = zero.insert(self.dh_out.zeros_like()?);
                (z, z)
            }
        })
    }
}

impl FusedOp for Backward<'_> {
    type Output = StepGrad;

    fn dtype(&self) -> DType {
        self.gates.dtype()
    }

    #[cfg(feature = "cuda")]
    fn cuda(&self) -> Option<Result<StepGrad>> {
        let r = crate::cuda::cell::backward(
            self.gates,
            self.c_prev,
            self.tanh_c,
            self.dh_out,
            self.next,
        )?;
        Some(r.map(|[dz, dc_prev]| StepGrad { dz, dc_prev }))
    }

    fn cpu<T: Act>(&self) -> Option<Result<StepGrad>> {
        // Not a CPU step: do not allocate the zeros.
        if !self.gates.device().is_cpu() {
            return None;
        }
        let mut zero = None;
        let (dh_rec, dc_next) = match self.next_or_zero(&mut zero) {
            Ok(n) => n,
            Err(e) => return Some(Err(e)),
        };
        let ts = [
            self.gates,
            self.c_prev,
            self.tanh_c,
            self.dh_out,
            dh_rec,
            dc_next,
        ];
        on_cpu::<T, _>(&ts, |s| backward_fused(s, self.gates))
    }

    fn ops(&self) -> Result<StepGrad> {
        let mut zero = None;
        let (dh_rec, dc_next) = self.next_or_zero(&mut zero)?;
        let dh = (self.dh_out + dh_rec)?;
        backward_ops(
            self.gates,
            self.c_prev,
            self.tanh_c,
            &dh,
            dc_next,
            self.consts,
        )
    }
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

/// The backward step with candle ops (any device), from `dh = dh_out + dh_rec`.
fn backward_ops(
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
    use crate::max_diff;

    /// The fused CPU loops and the candle-op path (used on other devices) agree, forward and
    /// backward, with and without a next step.
    #[test]
    fn fused_matches_ops() {
        let dev = Device::Cpu;
        let (b, h) = (3, 5);
        let r = |n: usize, s: f64, cols: usize| {
            let v: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37 + s).sin() * 2.0).collect();
            Tensor::from_vec(v, (n / cols, cols), &dev).unwrap()
        };
        let consts = GateConsts::new(h, DType::F64, &dev).unwrap();
        let (zx, zh, c) = (
            r(b * 4 * h, 0.1, 4 * h),
            r(b * 4 * h, 0.4, 4 * h),
            r(b * h, 0.7, h),
        );
        let fwd = Forward {
            zx: &zx,
            zh: &zh,
            c_prev: &c,
            consts: &consts,
        };
        let (f, o) = (fwd.cpu::<f64>().unwrap().unwrap(), fwd.ops().unwrap());
        for (x, y) in [
            (&f.gates, &o.gates),
            (&f.c, &o.c),
            (&f.tanh_c, &o.tanh_c),
            (&f.h, &o.h),
        ] {
            assert!(max_diff(x, y) < 1e-12);
        }
        let (dh, dh2, dcn) = (r(b * h, 1.3, h), r(b * h, 0.2, h), r(b * h, 2.9, h));
        for next in [Some((&dh2, &dcn)), None] {
            let bwd = Backward {
                gates: &f.gates,
                c_prev: &c,
                tanh_c: &f.tanh_c,
                dh_out: &dh,
                next,
                consts: &consts,
            };
            let (fb, ob) = (bwd.cpu::<f64>().unwrap().unwrap(), bwd.ops().unwrap());
            assert!(max_diff(&fb.dz, &ob.dz) < 1e-12);
            assert!(max_diff(&fb.dc_prev, &ob.dc_prev) < 1e-12);
        }
    }
}

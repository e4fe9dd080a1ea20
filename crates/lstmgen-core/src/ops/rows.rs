//! Row-wise ops on 2-D tensors `[rows, cols]`: column sums ([`SumRows`], the bias gradients) and
//! adding a bias to every row ([`AddBias`], its forward). On the CPU each is one parallel pass in
//! rayon's pool; elsewhere candle's `sum(0)` and `broadcast_add` (see [`crate::ops`]).

use super::FusedOp;
use crate::act::Act;
use crate::buf::{self, cpu_slice, CpuFloat};
use crate::error::Result;
use candle_core::{DType, Tensor};
use rayon::prelude::*;

/// Column sums of `t` `[rows, cols]` -> `[cols]`: the sum over all timesteps and batch rows. The
/// CPU loop adds rows in parallel blocks with f32/f64 accumulators per block (candle's reduction
/// over dim 0 walks memory with a stride and cost ~14% of a char-model training step).
pub(crate) struct SumRows<'a>(pub &'a Tensor);

impl FusedOp for SumRows<'_> {
    type Output = Tensor;

    fn dtype(&self) -> DType {
        self.0.dtype()
    }

    fn cpu<T: Act>(&self) -> Option<Result<Tensor>> {
        sum_rows_cpu::<T>(self.0)
    }

    fn ops(&self) -> Result<Tensor> {
        Ok(self.0.sum(0)?)
    }
}

fn sum_rows_cpu<T: CpuFloat>(t: &Tensor) -> Option<Result<Tensor>> {
    let (rows, cols) = t.dims2().ok()?;
    let (s, l) = t.storage_and_layout();
    let x = cpu_slice::<T>(&s, l)?;
    let block = rows
        .div_ceil(rayon::current_num_threads().max(1) * 4)
        .max(1);
    let sum = x
        .par_chunks(block * cols.max(1))
        .map(|chunk| {
            let mut acc = vec![T::zero(); cols];
            for row in chunk.chunks(cols.max(1)) {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += v;
                }
            }
            acc
        })
        .reduce(
            || vec![T::zero(); cols],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, &y)| *x += y);
                a
            },
        );
    Some(Tensor::from_vec(sum, cols, t.device()).map_err(Into::into))
}

/// `x` `[rows, cols]` plus the bias `b` `[cols]` on every row. The CPU loop writes a fresh buffer
/// in rayon's pool: candle's `broadcast_add` on the CPU runs in a thread pool of its own, whose
/// wake-ups compete with rayon's on two cores.
pub(crate) struct AddBias<'a> {
    pub x: &'a Tensor,
    pub b: &'a Tensor,
}

impl FusedOp for AddBias<'_> {
    type Output = Tensor;

    fn dtype(&self) -> DType {
        self.x.dtype()
    }

    fn cpu<T: Act>(&self) -> Option<Result<Tensor>> {
        add_bias_cpu::<T>(self.x, self.b)
    }

    fn ops(&self) -> Result<Tensor> {
        Ok(self.x.broadcast_add(self.b)?)
    }
}

fn add_bias_cpu<T: CpuFloat>(x: &Tensor, b: &Tensor) -> Option<Result<Tensor>> {
    let (rows, cols) = x.dims2().ok()?;
    let (xs, xl) = x.storage_and_layout();
    let (bs, bl) = b.storage_and_layout();
    let xv = cpu_slice::<T>(&xs, xl)?;
    let bv = cpu_slice::<T>(&bs, bl)?;
    if bv.len() != cols || cols == 0 {
        return None;
    }
    let mut out = buf::uninit::<T>(rows * cols);
    let block = rows.div_ceil(rayon::current_num_threads().max(1)).max(1) * cols;
    out.par_chunks_mut(block)
        .zip(xv.par_chunks(block))
        .for_each(|(o, xr)| {
            for (orow, xrow) in o.chunks_mut(cols).zip(xr.chunks(cols)) {
                buf::fill(orow, xrow.iter().zip(bv).map(|(&a, &c)| a + c));
            }
        });
    // SAFETY: every row of every chunk was filled (the chunks of `out` and `xv` align).
    let out = unsafe { buf::assume_init(out) };
    Some(Tensor::from_vec(out, (rows, cols), x.device()).map_err(Into::into))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::max_diff;
    use crate::ops::run;
    use candle_core::Device;

    fn rand(rows: usize, cols: usize, seed: u64) -> Tensor {
        let v: Vec<f32> = (0..rows * cols)
            .map(|i| ((i as u64 * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
    }

    fn f64s(t: Tensor) -> Tensor {
        t.to_dtype(DType::F64).unwrap()
    }

    /// Column sums agree with candle's `sum(0)`, including a single row and ragged row blocks.
    #[test]
    fn sum_rows_matches_candle() {
        for (r, c) in [(1, 5), (7, 3), (1001, 65), (64, 2048)] {
            let t = rand(r, c, 9);
            let op = SumRows(&t);
            let diff = max_diff(
                &f64s(op.cpu::<f32>().unwrap().unwrap()),
                &f64s(op.ops().unwrap()),
            );
            assert!(diff <= 1e-6 * r as f64, "[{r},{c}]: {diff}");
        }
    }

    /// The row-bias add equals candle's broadcast add exactly, for row counts that do not split
    /// evenly across threads, one row, and a non-contiguous input (which takes candle's path).
    #[test]
    fn add_bias_matches_broadcast_add() {
        for (rows, cols) in [(1, 7), (5, 3), (37, 130), (1000, 65)] {
            let x = rand(rows, cols, 3);
            let b = rand(1, cols, 4).flatten_all().unwrap();
            let op = AddBias { x: &x, b: &b };
            let got = op.cpu::<f32>().unwrap().unwrap();
            assert_eq!(
                max_diff(&f64s(got), &f64s(op.ops().unwrap())),
                0.0,
                "{rows}x{cols}"
            );
        }
        let xt = rand(9, 4, 5).t().unwrap(); // [4, 9], strided
        let b = rand(1, 9, 6).flatten_all().unwrap();
        let op = AddBias { x: &xt, b: &b };
        assert!(op.cpu::<f32>().is_none());
        assert_eq!(
            max_diff(
                &f64s(run(&op).unwrap()),
                &f64s(xt.broadcast_add(&b).unwrap())
            ),
            0.0
        );
    }
}

//! State resets at record boundaries. Where the input token of a batch row at step t is the
//! boundary id, the hidden and cell state entering step t are zero in every layer (the state a
//! record starts from, and the one sampling starts from), and no gradient flows back through the
//! reset. Both are one multiplication by a 0/1 mask:
//!
//! forward: `h_{t-1} := m_t * h_{t-1}`, `c_{t-1} := m_t * c_{t-1}`;
//! backward: `dh_{t-1} := m_t * dh_{t-1}`, `dc_{t-1} := m_t * dc_{t-1}`,
//!
//! with `m_t[b] = 0` where row b resets at t and 1 elsewhere (the masked state is what steps t
//! uses, so the gradients of `W_hh` and of the gates see it too). Batches without a boundary
//! build nothing.

use crate::error::Result;
use candle_core::{DType, Device, Tensor};
use std::ops::Range;

/// Where the rows of one batch reset: the host-side positions, and the keep mask on the device.
pub(crate) struct Resets {
    /// `rows[t]`: the batch rows whose input at step t is the boundary, ascending.
    rows: Vec<Vec<usize>>,
    batch: usize,
    /// Time-major `[T*B, 1]` in the model's dtype: 0 at row `t * B + b` where row b resets at
    /// step t, 1 elsewhere.
    keep: Tensor,
}

impl Resets {
    /// The resets of row-major ids `[batch, seq_len]` at `boundary`; None when there is no
    /// boundary id or it does not occur (nothing is built then). The ids' shape is checked by
    /// the caller.
    pub(crate) fn find(
        ids: &[u32],
        batch: usize,
        seq_len: usize,
        boundary: Option<u32>,
        dtype: DType,
        device: &Device,
    ) -> Result<Option<Self>> {
        let Some(boundary) = boundary else {
            return Ok(None);
        };
        if !ids.contains(&boundary) {
            return Ok(None);
        }
        let mut rows = vec![Vec::new(); seq_len];
        let mut keep = vec![1f32; batch * seq_len];
        for b in 0..batch {
            for t in 0..seq_len {
                if ids[b * seq_len + t] == boundary {
                    rows[t].push(b);
                    keep[t * batch + b] = 0.0;
                }
            }
        }
        let keep = Tensor::from_vec(keep, (batch * seq_len, 1), device)?.to_dtype(dtype)?;
        Ok(Some(Self { rows, batch, keep }))
    }

    /// The keep mask `[n, 1]` of rows `rows` (n of them) at step `t`, or None when none of them
    /// resets there.
    pub(crate) fn at(&self, t: usize, rows: &Range<usize>) -> Result<Option<Tensor>> {
        if !self.rows[t].iter().any(|b| rows.contains(b)) {
            return Ok(None);
        }
        Ok(Some(self.keep.narrow(
            0,
            t * self.batch + rows.start,
            rows.len(),
        )?))
    }

    /// The batch rows that reset at step `t`, ascending.
    pub(crate) fn rows_at(&self, t: usize) -> &[usize] {
        &self.rows[t]
    }

    /// The whole keep mask, time-major `[T*B, 1]`.
    pub(crate) fn keep(&self) -> &Tensor {
        &self.keep
    }
}

/// `x` `[n, H]` times the keep mask `m` `[n, 1]`, when there is one.
pub(crate) fn masked(x: Tensor, m: Option<&Tensor>) -> Result<Tensor> {
    Ok(match m {
        Some(m) => x.broadcast_mul(m)?,
        None => x,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_boundaries_per_step_and_row() {
        // rows [5, 1, 5], [1, 2, 1] with boundary 1: row 0 resets at t=1, row 1 at t=0 and t=2
        let ids = [5, 1, 5, 1, 2, 1];
        let r = Resets::find(&ids, 2, 3, Some(1), DType::F32, &Device::Cpu)
            .unwrap()
            .unwrap();
        assert_eq!(r.rows, vec![vec![1], vec![0], vec![1]]);
        let keep = r.keep().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(keep, vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
        assert!(r.at(0, &(0..1)).unwrap().is_none());
        let m = r.at(0, &(0..2)).unwrap().unwrap();
        assert_eq!(
            m.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [1.0, 0.0]
        );
        assert!(Resets::find(&ids, 2, 3, Some(9), DType::F32, &Device::Cpu)
            .unwrap()
            .is_none());
        assert!(Resets::find(&ids, 2, 3, None, DType::F32, &Device::Cpu)
            .unwrap()
            .is_none());
    }
}

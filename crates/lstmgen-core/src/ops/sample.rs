//! The fused ops of sampling on a device: the Gumbel-max draw of one token per row
//! ([`GumbelArgmax`]) and top-k / top-p filtering of next-token logits ([`TopKTopP`]), so that only
//! the ids leave the device. On the host, `crate::sample::sample_row` does both per row.

use super::FusedOp;
use crate::error::{Error, Result};
use candle_core::{DType, Tensor, D};

/// One token id per row of `logits` `[n, V]`: `argmax(logits / t - ln(-ln u))` with `u` `[n, V]`
/// uniform in (0, 1), an exact draw from softmax(logits / t) (the Gumbel-max trick; e.g. Maddison
/// et al. 2014, "A* sampling"), as a u32 tensor `[n]`. `u` is clamped to [2^-126, 1 - 2^-24]:
/// cuRAND's uniforms include 1, where the noise would be +inf.
pub(crate) struct GumbelArgmax<'a> {
    pub logits: &'a Tensor,
    pub u: &'a Tensor,
    pub t: f64,
}

impl FusedOp for GumbelArgmax<'_> {
    type Output = Tensor;

    fn dtype(&self) -> DType {
        self.logits.dtype()
    }

    #[cfg(feature = "cuda")]
    fn cuda(&self) -> Option<Result<Tensor>> {
        crate::cuda::sample::gumbel_argmax(self.logits, self.u, self.t)
    }

    fn ops(&self) -> Result<Tensor> {
        let u = self.u.clamp(f32::MIN_POSITIVE, 1.0 - f32::EPSILON / 2.0)?;
        let g = u.log()?.neg()?.log()?.neg()?;
        Ok(((self.logits.to_dtype(DType::F32)? / self.t)? + g)?.argmax(D::Minus1)?)
    }
}

/// `logits` `[n, V]` with every token outside the row's top-`top_k` (0: no limit) and then outside
/// its top-`top_p` nucleus under softmax(logits / `temperature`) set to -inf. A CUDA kernel only:
/// elsewhere sampling filters on the host (`crate::sample::samples_on_device` decides).
pub(crate) struct TopKTopP<'a> {
    pub logits: &'a Tensor,
    pub top_k: usize,
    pub top_p: f64,
    pub temperature: f64,
}

impl FusedOp for TopKTopP<'_> {
    type Output = Tensor;

    fn dtype(&self) -> DType {
        self.logits.dtype()
    }

    #[cfg(feature = "cuda")]
    fn cuda(&self) -> Option<Result<Tensor>> {
        if !self.logits.device().is_cuda() {
            return None;
        }
        let l = match self
            .logits
            .to_dtype(DType::F32)
            .and_then(|l| l.contiguous())
        {
            Ok(l) => l,
            Err(e) => return Some(Err(e.into())),
        };
        crate::cuda::sample::filter(&l, self.top_k, self.top_p, self.temperature)
    }

    fn ops(&self) -> Result<Tensor> {
        Err(Error::Native(format!(
            "top-k {} / top-p {} filtering at temperature {} of logits on {:?} needs lstmgen's CUDA kernels",
            self.top_k,
            self.top_p,
            self.temperature,
            self.logits.device().location()
        )))
    }
}

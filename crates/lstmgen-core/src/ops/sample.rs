//! The fused ops of sampling on a device: the uniforms of each row's own random stream
//! ([`RowUniforms`]), the Gumbel-max draw of one token per row ([`GumbelArgmax`]) and top-k / top-p
//! filtering of next-token logits ([`TopKTopP`]), so that only the ids leave the device. On the
//! host, `crate::sample::sample_row` does the last two per row.

use super::FusedOp;
use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor, D};

/// Philox4x32-10 (Salmon et al. 2011; Random123's `philox4x32_10`): the four output words of
/// counter `c` under key `k`.
pub(crate) fn philox4x32_10(mut c: [u32; 4], mut k: [u32; 2]) -> [u32; 4] {
    for _ in 0..10 {
        let p0 = 0xD251_1F53u64 * c[0] as u64;
        let p1 = 0xCD9E_8D57u64 * c[2] as u64;
        c = [
            (p1 >> 32) as u32 ^ c[1] ^ k[0],
            p1 as u32,
            (p0 >> 32) as u32 ^ c[3] ^ k[1],
            p0 as u32,
        ];
        k = [
            k[0].wrapping_add(0x9E37_79B9),
            k[1].wrapping_add(0xBB67_AE85),
        ];
    }
    c
}

/// Uniforms `[n, vocab]` in (0, 1) for the Gumbel-max draw, row `r` being sample
/// `first_stream + r`'s own stream: element `i` is `((x >> 9) + 0.5) * 2^-23` with `x` the first
/// word of Philox4x32-10 under key `seed` at counter `(i, first_stream + r, step, step >> 32)`.
/// A sample's draws so depend on (seed, sample index, step) only, never on how many samples
/// there are. The CUDA kernel (`philox_uniform_f32`) and the host loop compute the same numbers.
pub(crate) struct RowUniforms<'a> {
    pub device: &'a Device,
    pub n: usize,
    pub vocab: usize,
    pub seed: u64,
    pub first_stream: u32,
    pub step: u64,
}

impl RowUniforms<'_> {
    /// The uniforms computed on the host, row-major.
    pub(crate) fn host(&self) -> Vec<f32> {
        let key = [self.seed as u32, (self.seed >> 32) as u32];
        let (lo, hi) = (self.step as u32, (self.step >> 32) as u32);
        (0..self.n)
            .flat_map(|r| {
                let stream = self.first_stream.wrapping_add(r as u32);
                (0..self.vocab).map(move |i| {
                    let x = philox4x32_10([i as u32, stream, lo, hi], key)[0];
                    ((x >> 9) as f32 + 0.5) * f32::EPSILON // 2^-23
                })
            })
            .collect()
    }
}

impl FusedOp for RowUniforms<'_> {
    type Output = Tensor;

    fn dtype(&self) -> DType {
        DType::F32
    }

    #[cfg(feature = "cuda")]
    fn cuda(&self) -> Option<Result<Tensor>> {
        crate::cuda::sample::philox_uniform(
            self.device,
            self.n,
            self.vocab,
            self.seed,
            self.first_stream,
            self.step,
        )
    }

    fn ops(&self) -> Result<Tensor> {
        Ok(Tensor::from_vec(
            self.host(),
            (self.n, self.vocab),
            self.device,
        )?)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's known-answer vectors for philox4x32_10.
    #[test]
    fn philox_matches_random123() {
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    /// A row's uniforms depend on its stream, not on the rows drawn with it; all lie in (0, 1).
    #[test]
    fn row_uniforms_are_per_stream() {
        let u = |n, first_stream, step| {
            RowUniforms {
                device: &Device::Cpu,
                n,
                vocab: 50,
                seed: 9,
                first_stream,
                step,
            }
            .host()
        };
        let three = u(3, 0, 4);
        assert_eq!(&three[..50], &u(1, 0, 4)[..]);
        assert_eq!(&three[100..], &u(1, 2, 4)[..]);
        assert_ne!(&three[..50], &three[50..100]);
        assert_ne!(u(1, 0, 4), u(1, 0, 5));
        assert!(three.iter().all(|&x| x > 0.0 && x < 1.0));
        let mean = three.iter().map(|&x| x as f64).sum::<f64>() / 150.0;
        assert!((mean - 0.5).abs() < 0.1, "{mean}");
    }
}

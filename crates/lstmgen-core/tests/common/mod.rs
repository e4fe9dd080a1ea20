//! Helpers shared by the integration tests (each test crate uses some of them).
#![allow(dead_code)]

pub mod gradcheck;

use candle_core::{DType, Device, Tensor};

/// A `[rows, cols]` f32 matrix of values in [-0.5, 0.5) from a fixed LCG sequence per `seed`.
pub fn rand(rows: usize, cols: usize, seed: u64) -> Tensor {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let v: Vec<f32> = (0..rows * cols)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
}

/// Rounds to bf16 and back (the reference for bf16 products).
pub fn bf16(t: &Tensor) -> Tensor {
    t.to_dtype(DType::BF16)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
}

/// Largest absolute element of `t`.
pub fn max_abs(t: Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

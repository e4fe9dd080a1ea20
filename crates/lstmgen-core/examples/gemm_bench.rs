//! Matrix-product throughput of the engine's CPU paths, GFLOP/s.
//! `cargo run --release -p lstmgen-core --example gemm_bench -- M K N [f32|bf16] [REPS]`
use candle_core::{Device, Tensor};
use lstmgen_core::gemm::{self, Precision};
use std::time::Instant;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let dim = |i: usize| a[i].parse::<usize>().expect("M K N");
    let (m, k, n) = (dim(0), dim(1), dim(2));
    let p = Precision::parse(a.get(3).map_or("f32", |s| s.as_str())).unwrap();
    let reps: usize = a.get(4).and_then(|s| s.parse().ok()).unwrap_or(10);
    let x = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu).unwrap();
    let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
    let wt = w.t().unwrap();
    let packed = gemm::pack(&wt, p).unwrap();
    gemm::matmul_packed(&x, &packed).unwrap();
    let t0 = Instant::now();
    for _ in 0..reps {
        gemm::matmul_packed(&x, &packed).unwrap();
    }
    let s = t0.elapsed().as_secs_f64() / reps as f64;
    println!(
        "[{m}x{k}] x [{k}x{n}] {p:?} (B packed once): {:.1} GFLOP/s",
        2.0 * (m * k * n) as f64 / s / 1e9
    );
    let t0 = Instant::now();
    for _ in 0..reps {
        gemm::matmul(&x, &wt, p).unwrap();
    }
    let s = t0.elapsed().as_secs_f64() / reps as f64;
    println!(
        "[{m}x{k}] x [{k}x{n}] {p:?} (packing per call): {:.1} GFLOP/s",
        2.0 * (m * k * n) as f64 / s / 1e9
    );
}

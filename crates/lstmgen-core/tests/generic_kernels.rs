//! The portable product paths that CPUs without AMX or AVX-512 take (forced here with
//! `LSTMGEN_CPU_KERNELS=generic`): bf16 by rounding then the f32 product, f32 packed operands by the
//! f32 library. One test, so the variable is set before the engine reads it (its own process).
mod common;

use candle_core::Device;
use common::{bf16, max_abs, rand};
use lstmgen_core::gemm::{self, Precision};
use lstmgen_core::{AdamConfig, Model, ModelConfig};

#[test]
fn generic_paths_compute_the_same_products_and_train() {
    std::env::set_var("LSTMGEN_CPU_KERNELS", "generic");
    assert!(!gemm::amx_available());
    assert!(
        gemm::backend().ends_with("; bf16: emulated (no AMX)"),
        "{}",
        gemm::backend()
    );
    for (m, k, n) in [(7, 33, 47), (32, 512, 2048), (300, 40, 100)] {
        let (a, w) = (rand(m, k, 1), rand(n, k, 2).t().unwrap());
        for p in [Precision::F32, Precision::Bf16] {
            let got = gemm::matmul_packed(&a, &gemm::pack(&w, p).unwrap()).unwrap();
            let want = match p {
                Precision::F32 => a.matmul(&w).unwrap(),
                Precision::Bf16 => bf16(&a).matmul(&bf16(&w)).unwrap(),
            };
            let diff = max_abs((got - want).unwrap());
            assert!(diff <= 2e-6 * k as f32, "{p:?} [{m},{k}]x[{k},{n}]: {diff}");
        }
    }
    // A few training steps in each precision lower the loss on a repeating sequence.
    let cfg = ModelConfig {
        vocab_size: 11,
        embedding_dim: 8,
        hidden_size: 16,
        num_layers: 2,
        dropout: 0.0,
        proj_size: 0,
    };
    let ids: Vec<u32> = (0..16 * 12).map(|i| (i % 11) as u32).collect();
    let targets: Vec<u32> = (1..=16 * 12).map(|i| (i % 11) as u32).collect();
    for p in [Precision::F32, Precision::Bf16] {
        let mut model = Model::new(cfg, 3, Device::Cpu).unwrap();
        model.set_precision(p).unwrap();
        let opt = AdamConfig {
            lr: 0.05,
            ..AdamConfig::default()
        };
        let first = model
            .train_step(&ids, &targets, 16, 12, &opt, 0, None)
            .unwrap()
            .loss;
        let mut last = first;
        for s in 1..30 {
            last = model
                .train_step(&ids, &targets, 16, 12, &opt, s, None)
                .unwrap()
                .loss;
        }
        assert!(last < 0.5 * first, "{p:?}: loss {first} -> {last}");
    }
}

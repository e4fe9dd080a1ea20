//! Gradient check: every parameter gradient from the explicit BPTT matches central finite
//! differences of the loss, on a tiny 2-layer model in f64 (dropout off).
//! Tolerance: |analytic - numeric| <= 1e-6 + 1e-5 * |numeric| with step 1e-6.

use candle_core::{DType, Device, Tensor};
use lstmgen_core::params::init_params;
use lstmgen_core::{Model, ModelConfig};

fn loss(
    model: &Model,
    inputs: &[u32],
    targets: &[u32],
    b: usize,
    t: usize,
    state: &lstmgen_core::State,
) -> f64 {
    model
        .loss_and_grads(inputs, targets, b, t, state, 0)
        .unwrap()
        .loss
}

#[test]
fn every_gradient_matches_central_differences() {
    let cfg = ModelConfig {
        vocab_size: 7,
        embedding_dim: 4,
        hidden_size: 5,
        num_layers: 2,
        dropout: 0.0,
    };
    let dev = Device::Cpu;
    let params: Vec<Tensor> = init_params(&cfg, 42, &dev)
        .unwrap()
        .iter()
        .map(|p| p.to_dtype(DType::F64).unwrap())
        .collect();
    // 17 rows: on a multi-core CPU the recurrence runs as row groups (9 + 8 rows on 2 threads).
    let (b, t) = (17, 5);
    let inputs: Vec<u32> = (0..b * t).map(|i| ((i * 5 + 3) % 7) as u32).collect();
    let targets: Vec<u32> = (0..b * t).map(|i| ((i * 3 + 1) % 7) as u32).collect();
    let model = Model::from_params(cfg, params.clone(), dev.clone()).unwrap();
    // A non-zero carried state, as in truncated BPTT after the first batch.
    let (_, state) = model.logits(&inputs, b, t, None).unwrap();
    let state = lstmgen_core::State {
        h: state
            .h
            .iter()
            .map(|x| x.to_dtype(DType::F64).unwrap())
            .collect(),
        c: state
            .c
            .iter()
            .map(|x| x.to_dtype(DType::F64).unwrap())
            .collect(),
    };
    let grads = model
        .loss_and_grads(&inputs, &targets, b, t, &state, 0)
        .unwrap()
        .grads;
    let eps = 1e-6;
    let mut checked = 0;
    let mut worst = 0f64;
    for (k, p) in params.iter().enumerate() {
        let base = p.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let analytic = grads[k].flatten_all().unwrap().to_vec1::<f64>().unwrap();
        assert_eq!(
            base.len(),
            analytic.len(),
            "gradient {k} has the wrong size"
        );
        for j in 0..base.len() {
            let eval = |delta: f64| {
                let mut v = base.clone();
                v[j] += delta;
                let mut ps = params.clone();
                ps[k] = Tensor::from_vec(v, p.shape(), &dev).unwrap();
                loss(
                    &Model::from_params(cfg, ps, dev.clone()).unwrap(),
                    &inputs,
                    &targets,
                    b,
                    t,
                    &state,
                )
            };
            let numeric = (eval(eps) - eval(-eps)) / (2.0 * eps);
            let err = (analytic[j] - numeric).abs();
            worst = worst.max(err);
            assert!(
                err <= 1e-6 + 1e-5 * numeric.abs(),
                "param {k} element {j}: analytic {} vs numeric {numeric}",
                analytic[j]
            );
            checked += 1;
        }
    }
    assert!(checked > 400, "checked only {checked} elements");
    eprintln!("gradcheck: {checked} elements, worst abs error {worst:e}");
}

//! Gradient check: every parameter gradient from the explicit BPTT matches central finite
//! differences of the loss, on a tiny 2-layer model in f64 (dropout off): once on a batch without
//! record boundaries, once on one whose rows reset their state at boundaries in different places
//! (the first step, the last step, consecutive steps, both row groups).
//! Tolerance: |analytic - numeric| <= 1e-6 + 1e-5 * |numeric| with step 1e-6.

use candle_core::{DType, Device, Tensor};
use lstmgen_core::params::init_params;
use lstmgen_core::{Model, ModelConfig, State};

const CFG: ModelConfig = ModelConfig {
    vocab_size: 7,
    embedding_dim: 4,
    hidden_size: 5,
    num_layers: 2,
    dropout: 0.0,
};

/// 17 rows: on a multi-core CPU the recurrence runs as row groups (9 + 8 rows on 2 threads).
const ROWS: usize = 17;

fn params() -> Vec<Tensor> {
    init_params(&CFG, 42, &Device::Cpu)
        .unwrap()
        .iter()
        .map(|p| p.to_dtype(DType::F64).unwrap())
        .collect()
}

/// A non-zero carried state, as in truncated BPTT after the first batch: the state after
/// `inputs` from zero.
fn carried(model: &Model, inputs: &[u32], b: usize, t: usize) -> State {
    let (_, state) = model.logits(inputs, b, t, None).unwrap();
    let f64s = |v: &[Tensor]| v.iter().map(|x| x.to_dtype(DType::F64).unwrap()).collect();
    State {
        h: f64s(&state.h),
        c: f64s(&state.c),
    }
}

/// Checks every element of every parameter's gradient against central differences of the loss of
/// `inputs`/`targets` `[b, t]` from a carried state, with the state reset at `boundary`.
fn check(inputs: &[u32], targets: &[u32], b: usize, t: usize, boundary: Option<u32>) {
    let dev = Device::Cpu;
    let params = params();
    let model = Model::from_params(CFG, params.clone(), dev.clone()).unwrap();
    let state = carried(&model, inputs, b, t);
    let loss = |m: &Model| {
        m.loss_and_grads(inputs, targets, b, t, &state, 0, boundary)
            .unwrap()
            .loss
    };
    let grads = model
        .loss_and_grads(inputs, targets, b, t, &state, 0, boundary)
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
                loss(&Model::from_params(CFG, ps, dev.clone()).unwrap())
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

#[test]
fn every_gradient_matches_central_differences() {
    let (b, t) = (ROWS, 5);
    let inputs: Vec<u32> = (0..b * t).map(|i| ((i * 5 + 3) % 7) as u32).collect();
    let targets: Vec<u32> = (0..b * t).map(|i| ((i * 3 + 1) % 7) as u32).collect();
    check(&inputs, &targets, b, t, None);
}

/// Where row `b` of a `[ROWS, 6]` batch has the boundary (id 6) as input: at the first step
/// (from a carried state), at the last, at two consecutive steps, twice, in either row group,
/// and nowhere.
fn boundary_steps(b: usize) -> &'static [usize] {
    match b {
        0 => &[0],
        1 => &[5],
        2 => &[2, 3],
        3 => &[0, 5],
        4 => &[1, 4],
        9 => &[3],
        12 => &[0, 2, 4],
        16 => &[4],
        _ => &[],
    }
}

#[test]
fn every_gradient_matches_central_differences_with_resets_at_boundaries() {
    let (b, t, boundary) = (ROWS, 6, 6u32);
    let mut inputs: Vec<u32> = (0..b * t).map(|i| ((i * 5 + 3) % 6) as u32).collect();
    for row in 0..b {
        for &s in boundary_steps(row) {
            inputs[row * t + s] = boundary;
        }
    }
    let targets: Vec<u32> = (0..b * t).map(|i| ((i * 3 + 1) % 7) as u32).collect();
    // The resets change the loss: the check runs on a forward pass that differs from the plain one.
    let model = Model::from_params(CFG, params(), Device::Cpu).unwrap();
    let state = carried(&model, &inputs, b, t);
    let with = model
        .loss_and_grads(&inputs, &targets, b, t, &state, 0, Some(boundary))
        .unwrap()
        .loss;
    let without = model
        .loss_and_grads(&inputs, &targets, b, t, &state, 0, None)
        .unwrap()
        .loss;
    assert!((with - without).abs() > 1e-6, "{with} vs {without}");
    check(&inputs, &targets, b, t, Some(boundary));
}

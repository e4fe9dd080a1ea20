//! Gradient check: every parameter gradient from the explicit BPTT matches central finite
//! differences of the loss, on a tiny 2-layer model in f64 (dropout off): once on a batch without
//! record boundaries, once on one whose rows reset their state at boundaries in different places
//! (the first step, the last step, consecutive steps, both row groups), and that batch again on
//! the model with a projection of every layer (`proj_size`, `weight_hr_l{k}`).
//! Tolerance and step: those of the shared checker (tests/common/gradcheck.rs).
//! On the CPU the model without a projection trains on the fused recurrence (`src/recurrence.rs`),
//! the one with a projection on the per-step path; the fused path's unit test also holds the
//! per-step path to its values within 1e-12 in f64.

mod common;

use candle_core::{DType, Device, Tensor};
use common::gradcheck::check_gradients;
use lstmgen_core::params::init_params;
use lstmgen_core::{Model, ModelConfig, State};

const CFG: ModelConfig = ModelConfig {
    vocab_size: 7,
    embedding_dim: 4,
    hidden_size: 5,
    num_layers: 2,
    dropout: 0.0,
    proj_size: 0,
};

/// 17 rows: on a multi-core CPU the recurrence runs as row groups (9 + 8 rows on 2 threads).
const ROWS: usize = 17;

/// CFG with a projection of every layer (`proj_size` 3 of hidden 5).
const PROJ: ModelConfig = ModelConfig {
    proj_size: 3,
    ..CFG
};

fn params(cfg: &ModelConfig) -> Vec<Tensor> {
    init_params(cfg, 42, &Device::Cpu)
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
fn check(
    cfg: ModelConfig,
    inputs: &[u32],
    targets: &[u32],
    b: usize,
    t: usize,
    boundary: Option<u32>,
) {
    let dev = Device::Cpu;
    let params = params(&cfg);
    let model = Model::from_params(cfg, params.clone(), dev.clone()).unwrap();
    let state = carried(&model, inputs, b, t);
    let loss = |ps: &[Tensor]| {
        Model::from_params(cfg, ps.to_vec(), dev.clone())
            .unwrap()
            .loss_and_grads(inputs, targets, b, t, &state, 0, boundary)
            .unwrap()
            .loss
    };
    let grads = model
        .loss_and_grads(inputs, targets, b, t, &state, 0, boundary)
        .unwrap()
        .grads;
    let checked = check_gradients(&params, &grads, loss, "plain");
    assert!(checked.elements > 400, "checked only {checked:?}");
}

#[test]
fn every_gradient_matches_central_differences() {
    let (b, t) = (ROWS, 5);
    let inputs: Vec<u32> = (0..b * t).map(|i| ((i * 5 + 3) % 7) as u32).collect();
    let targets: Vec<u32> = (0..b * t).map(|i| ((i * 3 + 1) % 7) as u32).collect();
    check(CFG, &inputs, &targets, b, t, None);
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

/// The batch of [`boundary_steps`]: inputs with the boundary (id 6) where it says, and targets.
fn boundary_batch(b: usize, t: usize, boundary: u32) -> (Vec<u32>, Vec<u32>) {
    let mut inputs: Vec<u32> = (0..b * t).map(|i| ((i * 5 + 3) % 6) as u32).collect();
    for row in 0..b {
        for &s in boundary_steps(row) {
            inputs[row * t + s] = boundary;
        }
    }
    let targets: Vec<u32> = (0..b * t).map(|i| ((i * 3 + 1) % 7) as u32).collect();
    (inputs, targets)
}

#[test]
fn every_gradient_matches_central_differences_with_resets_at_boundaries() {
    let (b, t, boundary) = (ROWS, 6, 6u32);
    let (inputs, targets) = boundary_batch(b, t, boundary);
    // The resets change the loss: the check runs on a forward pass that differs from the plain one.
    let model = Model::from_params(CFG, params(&CFG), Device::Cpu).unwrap();
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
    check(CFG, &inputs, &targets, b, t, Some(boundary));
}

/// The projection's backward (`h = W_hr r`, `dW_hr`, the recurrence through the projected h)
/// through resets at boundaries, from a carried state.
#[test]
fn every_gradient_of_a_projected_model_matches_with_resets() {
    let (b, t, boundary) = (ROWS, 6, 6u32);
    let (inputs, targets) = boundary_batch(b, t, boundary);
    check(PROJ, &inputs, &targets, b, t, Some(boundary));
}

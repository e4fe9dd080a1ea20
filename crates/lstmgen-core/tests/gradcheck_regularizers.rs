//! Gradient check with the regularizers on: every parameter gradient of the objective (mean
//! cross-entropy + AR + TAR) against central finite differences, in f64, with the masks fixed
//! (the same dropout seed draws the same masks at every evaluation). Tolerance and
//! step: those of the shared checker (tests/common/gradcheck.rs).

mod common;

use candle_core::{DType, Device, Tensor};
use common::gradcheck::check_gradients;
use lstmgen_core::params::init_params;
use lstmgen_core::{Model, ModelConfig, Regularizers, State};

const SEED: u64 = 99;

fn model(cfg: ModelConfig, params: Vec<Tensor>, reg: Regularizers) -> Model {
    let mut m = Model::from_params(cfg, params, Device::Cpu).unwrap();
    m.set_regularizers(reg).unwrap();
    m
}

/// Checks every gradient element of the model `cfg` with `reg`; returns how many were checked.
fn check(cfg: ModelConfig, reg: Regularizers) -> usize {
    let dev = Device::Cpu;
    let params: Vec<Tensor> = init_params(&cfg, 42, &dev)
        .unwrap()
        .iter()
        .map(|p| p.to_dtype(DType::F64).unwrap())
        .collect();
    let (b, t) = (17, 5);
    let v = cfg.vocab_size;
    let inputs: Vec<u32> = (0..b * t).map(|i| ((i * 5 + 3) % v) as u32).collect();
    let targets: Vec<u32> = (0..b * t).map(|i| ((i * 3 + 1) % v) as u32).collect();
    let m = model(cfg, params.clone(), reg);
    let (_, s) = m.logits(&inputs, b, t, None).unwrap();
    let f64s = |x: &[Tensor]| -> Vec<Tensor> {
        x.iter().map(|x| x.to_dtype(DType::F64).unwrap()).collect()
    };
    let state = State {
        h: f64s(&s.h),
        c: f64s(&s.c),
    };
    let objective = |m: &Model| {
        let g = m
            .loss_and_grads(&inputs, &targets, b, t, &state, SEED, None)
            .unwrap();
        g.loss + g.penalty
    };
    let full = m
        .loss_and_grads(&inputs, &targets, b, t, &state, SEED, None)
        .unwrap();
    assert!(
        reg.ar == 0.0 || full.penalty > 0.0,
        "AR/TAR gave no penalty"
    );
    let checked = check_gradients(
        &params,
        &full.grads,
        |ps| objective(&model(cfg, ps.to_vec(), reg)),
        &format!("{reg:?}"),
    );
    checked.elements
}

#[test]
fn locked_embedding_and_weight_dropout_with_ar_tar() {
    let cfg = ModelConfig {
        vocab_size: 7,
        embedding_dim: 4,
        hidden_size: 5,
        num_layers: 2,
        dropout: 0.2,
        proj_size: 0,
    };
    let reg = Regularizers {
        dropout_embedding: 0.3,
        dropout_hidden: 0.25,
        dropout_output: 0.4,
        dropout_words: 0.3,
        weight_drop: 0.5,
        tie_weights: false,
        ar: 2.0,
        tar: 1.0,
    };
    assert!(check(cfg, reg) > 400);
}

#[test]
fn tied_weights_with_embedding_dropout() {
    let cfg = ModelConfig {
        vocab_size: 7,
        embedding_dim: 5,
        hidden_size: 5,
        num_layers: 2,
        dropout: 0.0,
        proj_size: 0,
    };
    let reg = Regularizers {
        dropout_words: 0.3,
        dropout_output: 0.3,
        tie_weights: true,
        ..Regularizers::default()
    };
    assert!(check(cfg, reg) > 400);
}

/// The masks come from the dropout seed: two draws from one seed give the same gradients and
/// loss (what makes a resumed run exact), another seed other ones.
#[test]
fn masks_are_seeded() {
    let cfg = ModelConfig {
        vocab_size: 5,
        embedding_dim: 8,
        hidden_size: 8,
        num_layers: 1,
        dropout: 0.0,
        proj_size: 0,
    };
    let params = init_params(&cfg, 1, &Device::Cpu).unwrap();
    let m = model(
        cfg,
        params,
        Regularizers {
            dropout_output: 0.5,
            weight_drop: 0.5,
            dropout_words: 0.2,
            ..Regularizers::default()
        },
    );
    let (b, t) = (4, 6);
    let ids: Vec<u32> = (0..b * t).map(|i| (i % 5) as u32).collect();
    let zero = State {
        h: vec![Tensor::zeros((b, 8), DType::F32, &Device::Cpu).unwrap()],
        c: vec![Tensor::zeros((b, 8), DType::F32, &Device::Cpu).unwrap()],
    };
    let grads = |seed| {
        let g = m
            .loss_and_grads(&ids, &ids, b, t, &zero, seed, None)
            .unwrap();
        let all: Vec<f32> = g
            .grads
            .iter()
            .flat_map(|x| x.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect();
        (g.loss, all)
    };
    assert_eq!(grads(7), grads(7), "the same seed must draw the same masks");
    assert_ne!(grads(7).1, grads(8).1, "another seed must draw other masks");
}

/// A projection on every layer (`proj_size` 3 of hidden 5: `weight_hr_l{k}` `[3, 5]`), alone.
#[test]
fn projection_of_every_layer() {
    let cfg = ModelConfig {
        vocab_size: 7,
        embedding_dim: 4,
        hidden_size: 5,
        num_layers: 2,
        dropout: 0.0,
        proj_size: 3,
    };
    assert!(check(cfg, Regularizers::default()) > 400);
}

/// Tied weights through a projection (embeddingDim 3 = projSize 3 < hiddenSize 5), with every
/// dropout, weight drop and AR/TAR on.
#[test]
fn projection_with_tied_weights_and_every_regularizer() {
    let cfg = ModelConfig {
        vocab_size: 7,
        embedding_dim: 3,
        hidden_size: 5,
        num_layers: 2,
        dropout: 0.2,
        proj_size: 3,
    };
    let reg = Regularizers {
        dropout_embedding: 0.3,
        dropout_hidden: 0.25,
        dropout_output: 0.4,
        dropout_words: 0.3,
        weight_drop: 0.5,
        tie_weights: true,
        ar: 2.0,
        tar: 1.0,
    };
    assert!(check(cfg, reg) > 300);
}

//! Forward reference: logits, loss and final states for fixed weights and inputs match PyTorch
//! `nn.LSTM` (fixture made by scripts/reference/make-forward-fixture.py), including a second batch that
//! continues from the first one's state; once plain, once with a projection of every layer
//! (`nn.LSTM(proj_size=3)`, `weight_hr_l{k}`; fixture made with `--proj-size 3`). Tolerance 1e-5
//! absolute (f32 engine vs f64 reference).

use candle_core::{Device, Tensor};
use lstmgen_core::params::param_specs;
use lstmgen_core::{Model, ModelConfig};
use serde_json::Value;

#[test]
fn logits_and_loss_match_pytorch() {
    check("forward_reference.json");
}

#[test]
fn logits_and_loss_of_a_projected_lstm_match_pytorch() {
    check("forward_reference_proj.json");
}

/// Runs the fixture `name` of tests/fixtures through the engine and compares.
fn check(name: &str) {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let fx: Value = serde_json::from_str(&text).unwrap();
    let c = &fx["config"];
    let n = |k: &str| c[k].as_u64().unwrap() as usize;
    let cfg = ModelConfig {
        vocab_size: n("vocabSize"),
        embedding_dim: n("embeddingDim"),
        hidden_size: n("hiddenSize"),
        num_layers: n("numLayers"),
        dropout: 0.0,
        proj_size: c["projSize"].as_u64().unwrap_or(0) as usize,
    };
    let dev = Device::Cpu;
    let params: Vec<Tensor> = param_specs(&cfg)
        .into_iter()
        .map(|(name, shape)| {
            let p = &fx["params"][&name];
            let fshape: Vec<usize> = p["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(fshape, shape, "{name}");
            let data: Vec<f32> = p["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            Tensor::from_vec(data, shape, &dev).unwrap()
        })
        .collect();
    let mut model = Model::from_params(cfg, params, dev).unwrap();
    let mut state = None;
    for (bi, batch) in fx["batches"].as_array().unwrap().iter().enumerate() {
        let ids = |k: &str| {
            batch[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect::<Vec<_>>()
        };
        let floats = |k: &str| {
            batch[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect::<Vec<_>>()
        };
        let (b, t) = (
            batch["batchSize"].as_u64().unwrap() as usize,
            batch["seqLen"].as_u64().unwrap() as usize,
        );
        let (logits, next) = model.logits(&ids("inputs"), b, t, state.as_ref()).unwrap();
        let want = floats("logits");
        assert_eq!(logits.len(), want.len());
        for (i, (g, w)) in logits.iter().zip(&want).enumerate() {
            assert!(
                (*g as f64 - w).abs() < 1e-5,
                "batch {bi} logit {i}: {g} vs {w}"
            );
        }
        let (h_want, c_want) = (floats("h_n"), floats("c_n"));
        let flat = |v: &[Tensor]| {
            v.iter()
                .flat_map(|x| x.flatten_all().unwrap().to_vec1::<f32>().unwrap())
                .collect::<Vec<_>>()
        };
        for (g, w) in flat(&next.h)
            .iter()
            .zip(&h_want)
            .chain(flat(&next.c).iter().zip(&c_want))
        {
            assert!((*g as f64 - w).abs() < 1e-5, "batch {bi} state: {g} vs {w}");
        }
        // The evaluation path (summed loss) agrees with the reference mean loss.
        if bi == 0 {
            model.reset_eval_state();
        }
        let stats = model
            .eval_step(&ids("inputs"), &ids("targets"), b, t, None)
            .unwrap();
        let loss = stats.loss_sum / stats.count as f64;
        let want_loss = batch["loss"].as_f64().unwrap();
        assert!(
            (loss - want_loss).abs() < 1e-5,
            "batch {bi} loss {loss} vs {want_loss}"
        );
        state = Some(next);
    }
}

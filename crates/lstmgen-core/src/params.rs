//! The parameter list, its PyTorch-style names and shapes, and PyTorch's default initialisation.

use crate::config::ModelConfig;
use crate::error::Result;
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Index of a parameter in the flat list. Order (PyTorch's `state_dict` order): embedding, then
/// per layer `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh` and, with a projection, `weight_hr`,
/// then decoder weight and bias.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    num_layers: usize,
    /// Parameters per layer: 4, or 5 with a projection.
    per: usize,
}

impl Layout {
    pub(crate) fn new(cfg: &ModelConfig) -> Self {
        Self {
            num_layers: cfg.num_layers,
            per: if cfg.proj_size > 0 { 5 } else { 4 },
        }
    }
    pub(crate) const EMBEDDING: usize = 0;
    pub(crate) fn w_ih(&self, l: usize) -> usize {
        1 + self.per * l
    }
    pub(crate) fn w_hh(&self, l: usize) -> usize {
        2 + self.per * l
    }
    pub(crate) fn b_ih(&self, l: usize) -> usize {
        3 + self.per * l
    }
    pub(crate) fn b_hh(&self, l: usize) -> usize {
        4 + self.per * l
    }
    /// The projection `weight_hr` `[P, H]` of layer `l`, None without a projection.
    pub(crate) fn w_hr(&self, l: usize) -> Option<usize> {
        (self.per == 5).then_some(5 + self.per * l)
    }
    pub(crate) fn dec_w(&self) -> usize {
        1 + self.per * self.num_layers
    }
    pub(crate) fn dec_b(&self) -> usize {
        2 + self.per * self.num_layers
    }
    pub(crate) fn len(&self) -> usize {
        3 + self.per * self.num_layers
    }
}

/// Names (PyTorch `state_dict` names of Embedding + `nn.LSTM` + Linear) and shapes of every
/// parameter, in [`Layout`] order. With a projection of width P (`proj_size`), each layer's
/// output, recurrent input and the decoder's input are P wide: `weight_hh_l{k}` `[4H, P]`,
/// `weight_ih_l{k}` `[4H, P]` above the first layer, `weight_hr_l{k}` `[P, H]`, decoder `[V, P]`.
pub fn param_specs(cfg: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let (v, e, h) = (cfg.vocab_size, cfg.embedding_dim, cfg.hidden_size);
    let out = cfg.out_size();
    let mut specs = vec![("embedding.weight".to_string(), vec![v, e])];
    for l in 0..cfg.num_layers {
        let input = if l == 0 { e } else { out };
        specs.push((format!("lstm.weight_ih_l{l}"), vec![4 * h, input]));
        specs.push((format!("lstm.weight_hh_l{l}"), vec![4 * h, out]));
        specs.push((format!("lstm.bias_ih_l{l}"), vec![4 * h]));
        specs.push((format!("lstm.bias_hh_l{l}"), vec![4 * h]));
        if cfg.proj_size > 0 {
            specs.push((format!("lstm.weight_hr_l{l}"), vec![cfg.proj_size, h]));
        }
    }
    specs.push(("decoder.weight".to_string(), vec![v, out]));
    specs.push(("decoder.bias".to_string(), vec![v]));
    specs
}

/// PyTorch defaults: `nn.Embedding` N(0, 1); `nn.LSTM` U(-1/sqrt(H), 1/sqrt(H)) for every weight
/// and bias (`weight_hr` included); `nn.Linear` U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
/// Deterministic in `seed`.
pub fn init_params(cfg: &ModelConfig, seed: u64, device: &Device) -> Result<Vec<Tensor>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let bound = 1.0 / (cfg.hidden_size as f32).sqrt();
    // the decoder Linear(out, V): out = H without a projection, so then every bound is 1/sqrt(H)
    let dec_bound = 1.0 / (cfg.out_size() as f32).sqrt();
    let mut out = Vec::new();
    for (name, shape) in param_specs(cfg) {
        let n: usize = shape.iter().product();
        let b = if name.starts_with("decoder.") {
            dec_bound
        } else {
            bound
        };
        let data: Vec<f32> = if name == "embedding.weight" {
            (0..n).map(|_| standard_normal(&mut rng)).collect()
        } else {
            (0..n).map(|_| rng.random_range(-b..b)).collect()
        };
        out.push(Tensor::from_vec(data, shape, device)?);
    }
    Ok(out)
}

/// One N(0, 1) draw by the Box-Muller transform.
fn standard_normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

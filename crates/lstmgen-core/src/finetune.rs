//! The starting point of a fine-tuning run: a trained model's weights, its vocabulary rows
//! grown for symbols of a new corpus, with a fresh optimizer.

use crate::config::ModelConfig;
use crate::error::{ensure, Result};
use crate::memory;
use crate::model::Model;
use crate::params::{init_params, Layout};
use candle_core::Tensor;

impl Model {
    /// A new model to fine-tune from this one: the same weights, with the vocabulary grown from
    /// `V` to `vocab_size` ids by appending `vocab_size - V` rows to the embedding `[V, E]`, the
    /// decoder weight `[V, H]` and the decoder bias `[V]`; training `dropout`; a fresh optimizer
    /// (Adam moments zero, step 0), step count 0, no carried state. The existing rows are copied
    /// unchanged, so the logits of ids below `V` are this model's. The new rows are those a fresh
    /// model of `vocab_size` ids drawn from `seed` has there ([`init_params`]: N(0, 1) embedding
    /// rows, U(-1/sqrt(H), 1/sqrt(H)) decoder rows and biases), so they start as a new model's do.
    ///
    /// Errors: `Error::Data` when `vocab_size < V`, when the grown shape or `dropout` is out of
    /// range (see [`ModelConfig::validate`]), or when the grown model does not fit in memory.
    pub fn for_fine_tuning(&self, vocab_size: usize, dropout: f32, seed: u64) -> Result<Model> {
        let old = *self.config();
        ensure(vocab_size >= old.vocab_size, || {
            format!(
                "the fine-tuned vocabulary must keep the model's {} ids, got vocabSize {vocab_size}",
                old.vocab_size
            )
        })?;
        let cfg = ModelConfig {
            vocab_size,
            dropout,
            ..old
        };
        cfg.validate()?;
        memory::ensure_fits(
            memory::model_bytes(&cfg),
            "training the fine-tuned model (parameters, gradients, Adam moments and the copies a step makes)",
            "the number of symbols added to the vocabulary",
        )?;
        let mut params: Vec<Tensor> = self.params().to_vec();
        let added = vocab_size - old.vocab_size;
        if added > 0 {
            let fresh = init_params(&cfg, seed, self.device())?;
            let layout = Layout::new(&cfg);
            for k in [Layout::EMBEDDING, layout.dec_w(), layout.dec_b()] {
                let rows = fresh[k]
                    .narrow(0, old.vocab_size, added)?
                    .to_dtype(params[k].dtype())?;
                params[k] = Tensor::cat(&[&params[k], &rows], 0)?;
            }
        }
        Model::from_params(cfg, params, self.device().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AdamConfig;
    use candle_core::Device;

    fn cfg(vocab_size: usize) -> ModelConfig {
        ModelConfig {
            vocab_size,
            embedding_dim: 5,
            hidden_size: 6,
            num_layers: 2,
            dropout: 0.0,
            proj_size: 0,
        }
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// A trained model: a few Adam steps away from its initialisation, so that its rows differ
    /// from any fresh model's.
    fn trained() -> Model {
        let mut m = Model::new(cfg(7), 1, Device::Cpu).unwrap();
        let opt = AdamConfig {
            lr: 0.05,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            clip_norm: 5.0,
        };
        let ids: Vec<u32> = (0..12).map(|i| (i * 5 % 7) as u32).collect();
        for step in 0..3 {
            m.train_step(&ids[..8], &ids[4..], 2, 4, &opt, step, None)
                .unwrap();
        }
        m
    }

    #[test]
    fn old_rows_are_copied_and_new_rows_are_a_fresh_models() {
        let base = trained();
        let grown = base.for_fine_tuning(10, 0.25, 99).unwrap();
        assert_eq!(grown.config().vocab_size, 10);
        assert_eq!(grown.config().dropout, 0.25);
        assert_eq!(grown.step(), 0);
        let fresh = init_params(&cfg(10), 99, &Device::Cpu).unwrap();
        let layout = Layout::new(grown.config());
        let grown_rows = [Layout::EMBEDDING, layout.dec_w(), layout.dec_b()];
        for (k, (g, b)) in grown.params().iter().zip(base.params()).enumerate() {
            if !grown_rows.contains(&k) {
                assert_eq!(values(g), values(b), "parameter {k} changed");
                continue;
            }
            assert_eq!(g.dims()[0], 10);
            assert_eq!(
                values(&g.narrow(0, 0, 7).unwrap()),
                values(b),
                "old rows of {k}"
            );
            let new = values(&g.narrow(0, 7, 3).unwrap());
            assert_eq!(
                new,
                values(&fresh[k].narrow(0, 7, 3).unwrap()),
                "new rows of {k}"
            );
        }
    }

    #[test]
    fn logits_of_old_ids_are_unchanged() {
        let base = trained();
        let grown = base.for_fine_tuning(9, 0.0, 3).unwrap();
        let ids: Vec<u32> = vec![0, 3, 6, 2, 5, 1];
        let (a, _) = base.logits(&ids, 2, 3, None).unwrap();
        let (b, _) = grown.logits(&ids, 2, 3, None).unwrap();
        for pos in 0..6 {
            assert_eq!(
                &a[pos * 7..pos * 7 + 7],
                &b[pos * 9..pos * 9 + 7],
                "position {pos}"
            );
        }
    }

    #[test]
    fn the_same_vocabulary_keeps_every_weight_and_a_smaller_one_is_refused() {
        let base = trained();
        let same = base.for_fine_tuning(7, 0.0, 5).unwrap();
        for (a, b) in same.params().iter().zip(base.params()) {
            assert_eq!(values(a), values(b));
        }
        let err = base.for_fine_tuning(6, 0.0, 5).err().unwrap().to_string();
        assert!(err.contains("keep the model's 7 ids"), "{err}");
        assert!(base.for_fine_tuning(8, 1.0, 5).is_err());
    }
}

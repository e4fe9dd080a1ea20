//! The language model: embedding -> stacked LSTM -> dropout -> linear decoder -> softmax
//! cross-entropy, with its training state (Adam moments, carried hidden states).

use crate::adam::Adam;
use crate::asgd::{Averaging, Trigger};
use crate::config::{AdamConfig, ModelConfig};
use crate::error::{ensure, Error, Result};
use crate::gemm::{self, Precision};
use crate::lstm::{self, LayerCache, LayerOutput, LayerState, LayerWeights, PackedLayer};
use crate::memory;
use crate::ops::cell::GateConsts;
use crate::ops::loss::{CrossEntropy, Loss};
use crate::ops::rows::AddBias;
use crate::ops::run;
use crate::params::{init_params, Layout};
use crate::regularize::{self, Masks, Regularizers};
use crate::resets::Resets;
use crate::sgd::Optimizer;
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::{Arc, Mutex};

/// Hidden and cell state of every layer, each `[batch, H]`.
#[derive(Clone)]
pub struct State {
    pub h: Vec<Tensor>,
    pub c: Vec<Tensor>,
}

impl State {
    /// Layer `l`'s state.
    fn layer(&self, l: usize) -> LayerState {
        LayerState {
            h: self.h[l].clone(),
            c: self.c[l].clone(),
        }
    }

    /// The state of every layer, in order.
    fn from_layers(layers: impl IntoIterator<Item = LayerState>) -> Self {
        let (h, c) = layers.into_iter().map(|s| (s.h, s.c)).unzip();
        Self { h, c }
    }
}

/// Result of one training step.
#[derive(Debug, Clone, Copy)]
pub struct StepStats {
    /// Mean cross-entropy over the batch, nats per token.
    pub loss: f64,
    /// Global L2 norm of all gradients before clipping.
    pub grad_norm: f64,
    /// Positions whose argmax prediction equals the target.
    pub correct: u64,
    /// Positions in the batch (`batch * seqLen`).
    pub count: u64,
}

/// Summed loss over a batch (evaluation).
#[derive(Debug, Clone, Copy)]
pub struct EvalStats {
    /// Sum of per-token cross-entropies, nats.
    pub loss_sum: f64,
    pub correct: u64,
    pub count: u64,
}

/// The loss and parameter gradients of one batch, before any update.
pub struct BatchGrads {
    /// Mean cross-entropy over the batch, nats per token.
    pub loss: f64,
    /// Positions whose argmax prediction equals the target.
    pub correct: u64,
    /// Positions in the batch (`batch * seqLen`).
    pub count: u64,
    /// Gradient of every parameter, in [`Layout`] order.
    pub grads: Vec<Tensor>,
    /// The state after the batch.
    pub state: State,
    /// AR + TAR penalty of the batch (0 when they are off): the objective whose gradients
    /// `grads` are is `loss + penalty`.
    pub penalty: f64,
}

/// Everything the forward pass keeps for the backward pass.
struct ForwardCache {
    ids: Tensor,
    layers: Vec<LayerCache>,
    /// Inverted-dropout masks applied to each layer's output (`None` when dropout is off).
    masks: Vec<Option<Tensor>>,
    /// Decoder input `[T*B, H]` (last layer output after dropout).
    top: Tensor,
    /// Where the state reset in the forward pass.
    resets: Option<Resets>,
    /// The last layer's output before any dropout `[T*B, H]` (for TAR).
    raw_top: Tensor,
    /// The regularizers' masks of this batch.
    reg: Masks,
    /// Each layer's `weight_hh` after weight drop (None: the weight itself).
    w_hh: Vec<Option<Tensor>>,
    /// Per-row factors of embedding dropout `[T*B, 1]`.
    word_factors: Option<Tensor>,
}

/// An LSTM language model and its training state. Parameters live on `device`.
pub struct Model {
    cfg: ModelConfig,
    layout: Layout,
    device: Device,
    params: Vec<Tensor>,
    consts: GateConsts,
    adam: Adam,
    /// Optimizer steps the weights had before Adam's moments started (a model loaded from a file
    /// without training state keeps its count but starts with fresh moments).
    steps_before_adam: u64,
    train_state: Option<State>,
    eval_state: Option<State>,
    /// The last training-step and evaluation-batch shapes whose memory was checked against the system.
    step_checked: memory::CheckedShape,
    eval_checked: memory::CheckedShape,
    /// Precision of the matrix products (training, evaluation, sampling).
    precision: Precision,
    /// Weights packed for inference (see [`Model::inference_packs`]).
    packs: Mutex<Option<Arc<InferencePacks>>>,
    /// Weights packed for the fused CPU generation path (see [`Model::generation_weights`]).
    gen_weights: Mutex<Option<Arc<crate::generation::Weights>>>,
    /// Regularizers of training (see [`Regularizers`]).
    reg: Regularizers,
    /// The update rule of [`Model::train_step`].
    optimizer: Optimizer,
    /// NT-ASGD's trigger and iterates (see [`crate::asgd`]); idle under other optimizers.
    averaging: Averaging,
}

/// Inverted-dropout mask from uniform draws `u` in [0, 1): 0 where `u < p`, else `1 / (1 - p)`
/// (the same rule as the CPU's host-drawn masks).
pub(crate) fn mask_from_uniform(u: &Tensor, p: f32) -> Result<Tensor> {
    Ok((u.ge(p as f64)?.to_dtype(u.dtype())? * (1.0 / (1.0 - p as f64)))?)
}

/// Weights packed for the products of inference, valid for one optimizer step and precision.
struct InferencePacks {
    step: u64,
    precision: Precision,
    layers: Vec<PackedLayer>,
    /// Decoder weight, transposed `[H, V]`.
    dec_t: gemm::Packed,
}

impl Model {
    /// A new model with PyTorch's default initialisation drawn from `seed`.
    pub fn new(cfg: ModelConfig, seed: u64, device: Device) -> Result<Self> {
        cfg.validate()?;
        memory::ensure_fits(
            memory::model_bytes(&cfg),
            "training this model (parameters, gradients, Adam moments and the copies a step makes)",
            "hiddenSize, numLayers, embeddingDim or the vocabulary",
        )?;
        let params = init_params(&cfg, seed, &device)?;
        Self::from_params(cfg, params, device)
    }

    /// A model from existing parameters in [`Layout`] order (shapes checked by the caller).
    pub fn from_params(cfg: ModelConfig, params: Vec<Tensor>, device: Device) -> Result<Self> {
        cfg.validate()?;
        let dtype = params.first().map(|p| p.dtype()).unwrap_or(DType::F32);
        let consts = GateConsts::new(cfg.hidden_size, dtype, &device)?;
        let adam = Adam::new(&params)?;
        Ok(Self {
            cfg,
            layout: Layout::new(&cfg),
            device,
            params,
            consts,
            adam,
            steps_before_adam: 0,
            train_state: None,
            eval_state: None,
            step_checked: Default::default(),
            eval_checked: Default::default(),
            precision: Precision::F32,
            packs: Mutex::new(None),
            gen_weights: Mutex::new(None),
            reg: Regularizers::default(),
            optimizer: Optimizer::Adam,
            averaging: Averaging::default(),
        })
    }

    /// Sets the regularizers of later training steps. With `tie_weights` the decoder weight
    /// becomes the embedding (from now on, in training and in the files written). `Error::Data`
    /// for a value out of range or tied weights of different widths.
    pub fn set_regularizers(&mut self, reg: Regularizers) -> Result<()> {
        reg.validate(&self.cfg)?;
        self.reg = reg;
        self.tie();
        Ok(())
    }

    /// The regularizers in use.
    pub fn regularizers(&self) -> &Regularizers {
        &self.reg
    }

    /// Sets the update rule of later training steps (the moments or momentum kept so far stay,
    /// and so does NT-ASGD's averaging state).
    pub fn set_optimizer(&mut self, optimizer: Optimizer) -> Result<()> {
        optimizer.validate()?;
        self.optimizer = optimizer;
        Ok(())
    }

    /// Records a validation loss (nats/token, taken with the current weights) for NT-ASGD's
    /// trigger; returns true when it starts the averaging (see [`crate::asgd`]). Under another
    /// optimizer it records nothing and returns false.
    pub fn observe_validation(&mut self, loss: f64) -> bool {
        match self.optimizer {
            Optimizer::NtAsgd { nonmono } => {
                let step = self.step();
                self.averaging.trigger.observe(loss, nonmono, step)
            }
            _ => false,
        }
    }

    /// NT-ASGD's trigger state: the losses observed, the step averaging started at, the steps
    /// averaged.
    pub fn averaging(&self) -> &Trigger {
        &self.averaging.trigger
    }

    /// The SGD iterates while the parameters hold their average (None otherwise), for checkpoints.
    pub(crate) fn averaged_iterates(&self) -> Option<&[Tensor]> {
        self.averaging.live.as_deref()
    }

    /// Restores NT-ASGD's state from a checkpoint: the trigger and, once averaging has stepped,
    /// the SGD iterates (shapes checked by the caller; the parameters already hold the average).
    pub(crate) fn restore_averaging(&mut self, trigger: Trigger, live: Option<Vec<Tensor>>) {
        self.averaging = Averaging { trigger, live };
    }

    /// With tied weights, makes the decoder weight the embedding tensor itself.
    fn tie(&mut self) {
        if self.reg.tie_weights {
            self.params[self.layout.dec_w()] = self.params[Layout::EMBEDDING].clone();
        }
    }

    /// Parameter dtype: F32 in the product; F64 is accepted for exact gradient checks.
    pub(crate) fn dtype(&self) -> DType {
        self.params[0].dtype()
    }
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    /// Parameters in [`Layout`] order.
    pub(crate) fn params(&self) -> &[Tensor] {
        &self.params
    }
    /// Number of optimizer steps the weights have had (kept by every model file).
    pub fn step(&self) -> u64 {
        self.steps_before_adam + self.adam.step()
    }
    /// Sets the step count to `steps` (at least Adam's own count), as read from a model file.
    pub(crate) fn set_steps(&mut self, steps: u64) {
        self.steps_before_adam = steps.saturating_sub(self.adam.step());
    }
    /// Precision of the matrix products; see [`Precision`].
    pub fn precision(&self) -> Precision {
        self.precision
    }
    /// Sets the precision of later matrix products. `Bf16` is CPU-only: on another device it is
    /// an `Error::Data`.
    pub fn set_precision(&mut self, p: Precision) -> Result<()> {
        ensure(p == Precision::F32 || self.device.is_cpu(), || {
            "precision \"bf16\" runs on the CPU only; use \"f32\" on CUDA".into()
        })?;
        self.precision = p;
        Ok(())
    }
    pub fn reset_train_state(&mut self) {
        self.train_state = None;
    }
    pub fn reset_eval_state(&mut self) {
        self.eval_state = None;
    }

    fn layer(&self, l: usize) -> LayerWeights<'_> {
        let p = &self.params;
        let ly = &self.layout;
        LayerWeights {
            w_ih: &p[ly.w_ih(l)],
            w_hh: &p[ly.w_hh(l)],
            b_ih: &p[ly.b_ih(l)],
            b_hh: &p[ly.b_hh(l)],
            w_hr: ly.w_hr(l).map(|k| &p[k]),
            packed: None,
        }
    }

    /// The weights packed for inference products (bf16 AMX panels, or f32 panels for the
    /// small-row kernel), built on first use after each change of the weights (keyed by the
    /// optimizer step) or precision; None off the CPU, where nothing is packed.
    fn inference_packs(&self) -> Result<Option<Arc<InferencePacks>>> {
        if !self.device.is_cpu() {
            return Ok(None);
        }
        let mut slot = self.packs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = slot.as_ref() {
            if p.step == self.step() && p.precision == self.precision {
                return Ok(Some(p.clone()));
            }
        }
        let layers = (0..self.cfg.num_layers)
            .map(|l| PackedLayer::new(&self.layer(l), self.precision))
            .collect::<Result<Vec<_>>>()?;
        let dec_t = gemm::pack(&self.params[self.layout.dec_w()].t()?, self.precision)?;
        let packs = Arc::new(InferencePacks {
            step: self.step(),
            precision: self.precision,
            layers,
            dec_t,
        });
        *slot = Some(packs.clone());
        Ok(Some(packs))
    }

    /// The weights packed for the fused CPU generation path (`generation.rs`), built on first use
    /// after each change of the weights (keyed by the optimizer step, as [`Model::inference_packs`]).
    pub(crate) fn generation_weights(&self) -> Result<Arc<crate::generation::Weights>> {
        let mut slot = self.gen_weights.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = slot.as_ref().filter(|w| w.current(self)) {
            return Ok(w.clone());
        }
        let w = Arc::new(crate::generation::Weights::new(self)?);
        *slot = Some(w.clone());
        Ok(w)
    }

    /// A zero state for `batch` sequences.
    pub(crate) fn zero_state(&self, batch: usize) -> Result<State> {
        let zeros = |w: usize| Tensor::zeros((batch, w), self.dtype(), &self.device);
        Ok(State {
            h: vec![zeros(self.cfg.out_size())?; self.cfg.num_layers],
            c: vec![zeros(self.cfg.hidden_size)?; self.cfg.num_layers],
        })
    }

    /// Checks ids against the vocabulary and the declared `[batch, seqLen]` shape, and returns them
    /// time-major (`t * batch + b`) as a u32 tensor.
    fn time_major(&self, ids: &[u32], batch: usize, seq_len: usize, what: &str) -> Result<Tensor> {
        ensure(batch >= 1 && seq_len >= 1, || {
            format!("batchSize and seqLen must be >= 1, got {batch} and {seq_len}")
        })?;
        ensure(ids.len() == batch * seq_len, || {
            format!(
                "{what} has {} ids but batchSize * seqLen = {batch} * {seq_len} = {}",
                ids.len(),
                batch * seq_len
            )
        })?;
        if let Some((pos, &bad)) = ids
            .iter()
            .enumerate()
            .find(|(_, &id)| id as usize >= self.cfg.vocab_size)
        {
            return Err(Error::Data(format!(
                "{what}[{pos}] = {bad} is not a token id (vocabSize = {})",
                self.cfg.vocab_size
            )));
        }
        let mut tm = vec![0u32; ids.len()];
        for b in 0..batch {
            for t in 0..seq_len {
                tm[t * batch + b] = ids[b * seq_len + t];
            }
        }
        Ok(Tensor::from_vec(tm, batch * seq_len, &self.device)?)
    }

    /// The resets of row-major `inputs` `[batch, seqLen]` (already checked) at `boundary`, or None
    /// when it is None or does not occur. `Error::Data` for a boundary outside the vocabulary.
    fn resets(
        &self,
        inputs: &[u32],
        batch: usize,
        seq_len: usize,
        boundary: Option<u32>,
    ) -> Result<Option<Resets>> {
        if let Some(id) = boundary {
            ensure((id as usize) < self.cfg.vocab_size, || {
                format!(
                    "boundaryId {id} is not a token id (vocabSize = {})",
                    self.cfg.vocab_size
                )
            })?;
        }
        Resets::find(inputs, batch, seq_len, boundary, self.dtype(), &self.device)
    }

    /// An inverted-dropout mask `[rows, out]` with entries 0 or 1/(1-p), drawn from `rng` (out:
    /// the layers' output width, [`ModelConfig::out_size`]).
    fn dropout_mask(&self, rows: usize, rng: &mut ChaCha8Rng) -> Result<Option<Tensor>> {
        let p = self.cfg.dropout;
        if p <= 0.0 {
            return Ok(None);
        }
        let width = self.cfg.out_size();
        let keep = 1.0 / (1.0 - p);
        if !self.device.is_cpu() {
            // On a GPU the mask is drawn there (cuRAND), seeded from this step's dropout RNG, so
            // only a seed crosses the bus and a resumed run draws the same masks.
            self.device.set_seed(rng.random::<u64>())?;
            let u = Tensor::rand(0f32, 1f32, (rows, width), &self.device)?;
            return Ok(Some(mask_from_uniform(&u, p)?.to_dtype(self.dtype())?));
        }
        let n = rows * width;
        let data: Vec<f32> = (0..n)
            .map(|_| if rng.random::<f32>() < p { 0.0 } else { keep })
            .collect();
        Ok(Some(
            Tensor::from_vec(data, (rows, width), &self.device)?.to_dtype(self.dtype())?,
        ))
    }

    /// Logits `[T*B, V]` from the decoder input `x` `[T*B, H]`, with weights packed for
    /// inference when `packs` are given.
    fn decode(&self, x: &Tensor, packs: Option<&InferencePacks>) -> Result<Tensor> {
        self.add_decoder_bias(&self.decoder_product(x, packs)?)
    }

    /// Logits `[T*B, V]` from the decoder's product (see [`Model::decoder_product`]).
    fn add_decoder_bias(&self, product: &Tensor) -> Result<Tensor> {
        run(&AddBias {
            x: product,
            b: self.decoder_bias(),
        })
    }

    /// The decoder's product `x W^T` `[T*B, V]` without its bias (which the loss adds, see
    /// [`CrossEntropy`]), with weights packed for inference when `packs` are given.
    fn decoder_product(&self, x: &Tensor, packs: Option<&InferencePacks>) -> Result<Tensor> {
        match packs {
            Some(p) => gemm::matmul_packed(x, &p.dec_t),
            None => gemm::matmul(x, &self.params[self.layout.dec_w()].t()?, self.precision),
        }
    }

    /// The decoder's bias `[V]`.
    fn decoder_bias(&self) -> &Tensor {
        &self.params[self.layout.dec_b()]
    }

    /// Inference forward pass over time-major ids `[T*B]` from `state` (no dropout), the state
    /// reset where `resets` say: the decoder's product `[T*B, V]` (the logits less the decoder's
    /// bias, which the loss adds) and the final state.
    fn forward(
        &self,
        ids: &Tensor,
        state: &State,
        seq_len: usize,
        resets: Option<&Resets>,
    ) -> Result<(Tensor, State)> {
        let packs = self.inference_packs()?;
        let (x, next) = self.forward_hidden(ids, state, seq_len, packs.as_deref(), resets)?;
        Ok((self.decoder_product(&x, packs.as_deref())?, next))
    }

    /// The LSTM stack of [`Model::forward`]: the last layer's outputs `[T*B, H]` (the decoder's
    /// input) and the final state.
    fn forward_hidden(
        &self,
        ids: &Tensor,
        state: &State,
        seq_len: usize,
        packs: Option<&InferencePacks>,
        resets: Option<&Resets>,
    ) -> Result<(Tensor, State)> {
        let mut x = self.params[Layout::EMBEDDING].index_select(ids, 0)?; // [T*B, E]
        let mut next = Vec::with_capacity(self.cfg.num_layers);
        for l in 0..self.cfg.num_layers {
            let mut weights = self.layer(l);
            weights.packed = packs.map(|p| &p.layers[l]);
            let o = lstm::forward(
                &weights,
                &self.consts,
                &x,
                &state.layer(l),
                seq_len,
                self.precision,
                resets,
            )?;
            x = o.out;
            next.push(o.state);
        }
        Ok((x, State::from_layers(next)))
    }

    /// Feeds row-major ids `[batch, T]` from `state` (zero when `None`) through the inference
    /// forward pass in chunks of at most `rows` positions (`rows / batch` steps of every
    /// sequence at a time, at least one), carrying the state from chunk to chunk, so that memory
    /// stays bounded whatever `T` is. Returns the logits `[batch, V]` after the last position (on
    /// the model's device) and the final state: the state of one pass over all of `ids`, and
    /// its logits, up to float rounding. The state resets per row where the input is `boundary`
    /// (as in [`Model::train_step`]).
    pub(crate) fn prime(
        &self,
        ids: &[u32],
        batch: usize,
        state: Option<&State>,
        rows: usize,
        boundary: Option<u32>,
    ) -> Result<(Tensor, State)> {
        ensure(
            batch >= 1 && !ids.is_empty() && ids.len().is_multiple_of(batch),
            || {
                format!(
                    "cannot feed {} ids as {batch} sequences of equal length >= 1",
                    ids.len()
                )
            },
        )?;
        let seq_len = ids.len() / batch;
        let chunk = (rows / batch).max(1);
        let packs = self.inference_packs()?;
        let mut state = match state {
            Some(s) => s.clone(),
            None => self.zero_state(batch)?,
        };
        let mut top = None;
        for t0 in (0..seq_len).step_by(chunk) {
            let len = chunk.min(seq_len - t0);
            let part: Vec<u32> = (0..batch)
                .flat_map(|b| {
                    ids[b * seq_len + t0..b * seq_len + t0 + len]
                        .iter()
                        .copied()
                })
                .collect();
            let tm = self.time_major(&part, batch, len, "the prompt")?;
            let resets = self.resets(&part, batch, len, boundary)?;
            let (x, next) =
                self.forward_hidden(&tm, &state, len, packs.as_deref(), resets.as_ref())?;
            top = Some(x.narrow(0, (len - 1) * batch, batch)?);
            state = next;
        }
        let top = top.ok_or_else(|| Error::Native("nothing was fed".into()))?;
        Ok((self.decode(&top, packs.as_deref())?, state))
    }

    /// Training forward pass over time-major ids `[T*B]` from `state`, with dropout masks drawn
    /// from `rng` and the state reset where `resets` say: the decoder's product `[T*B, V]` (the
    /// logits less the decoder's bias, which the loss adds), the final state and what the backward
    /// pass needs.
    fn forward_train(
        &self,
        ids: &Tensor,
        state: &State,
        seq_len: usize,
        rng: &mut ChaCha8Rng,
        resets: Option<Resets>,
        reg: Masks,
    ) -> Result<(Tensor, State, ForwardCache)> {
        let (x, word_factors) =
            regularize::embed(&self.params[Layout::EMBEDDING], ids, reg.words.as_ref())?; // [T*B, E]
        let mut x = regularize::locked(&x, reg.embedding.as_ref(), seq_len)?;
        let mut next = Vec::with_capacity(self.cfg.num_layers);
        let (mut layers, mut masks, mut w_hh) = (Vec::new(), Vec::new(), Vec::new());
        let mut raw_top = None;
        for l in 0..self.cfg.num_layers {
            let dropped = match &reg.weight_hh[l] {
                Some(m) => Some((&self.params[self.layout.w_hh(l)] * m)?),
                None => None,
            };
            let mut weights = self.layer(l);
            if let Some(w) = &dropped {
                weights.w_hh = w;
            }
            let (LayerOutput { out, state: s }, cache) = lstm::forward_train(
                &weights,
                &self.consts,
                &x,
                &state.layer(l),
                seq_len,
                self.precision,
                resets.as_ref(),
            )?;
            let mask = self.dropout_mask(out.dim(0)?, rng)?;
            if l + 1 == self.cfg.num_layers {
                raw_top = Some(out.clone());
            }
            x = match &mask {
                Some(m) => (out * m)?,
                None => out,
            };
            x = regularize::locked(&x, reg.outputs[l].as_ref(), seq_len)?;
            next.push(s);
            layers.push(cache);
            masks.push(mask);
            w_hh.push(dropped);
        }
        let logits = self.decoder_product(&x, None)?;
        let raw_top = raw_top.ok_or_else(|| Error::Native("the model has no layer".into()))?;
        let cache = ForwardCache {
            ids: ids.clone(),
            layers,
            masks,
            top: x,
            resets,
            raw_top,
            reg,
            w_hh,
            word_factors,
        };
        Ok((logits, State::from_layers(next), cache))
    }

    /// Mean loss and the gradient of every parameter (in [`Layout`] order) for one batch from
    /// `state`, without updating anything. Used by training and by the gradient check. With a
    /// `boundary` id, each row's hidden and cell state are zero entering every step whose input
    /// is that id, in every layer, and no gradient flows back through the reset
    /// ([`crate::resets`]).
    #[allow(clippy::too_many_arguments)]
    pub fn loss_and_grads(
        &self,
        inputs: &[u32],
        targets: &[u32],
        batch: usize,
        seq_len: usize,
        state: &State,
        dropout_seed: u64,
        boundary: Option<u32>,
    ) -> Result<BatchGrads> {
        let ids = self.time_major(inputs, batch, seq_len, "inputs")?;
        let tg = self.time_major(targets, batch, seq_len, "targets")?;
        let resets = self.resets(inputs, batch, seq_len, boundary)?;
        let mut rng = ChaCha8Rng::seed_from_u64(dropout_seed);
        // the regularizers' masks come from a stream of their own: the plain dropout masks stay
        // those drawn without them
        let mut reg_rng = ChaCha8Rng::seed_from_u64(dropout_seed);
        reg_rng.set_stream(1);
        let masks = Masks::draw(
            &self.reg,
            &self.cfg,
            batch,
            &mut reg_rng,
            &self.device,
            self.dtype(),
        )?;
        let (logits, next, cache) =
            self.forward_train(&ids, state, seq_len, &mut rng, resets, masks)?;
        let (penalty, d_top, d_raw) =
            regularize::activation_penalty(&self.reg, &cache.top, &cache.raw_top, seq_len)?;
        let Loss {
            loss_sum,
            correct,
            grad,
            bias_grad,
        } = run(&CrossEntropy {
            logits: &logits,
            bias: Some(self.decoder_bias()),
            targets: &tg,
            want_grad: true,
        })?;
        let dlogits = grad.ok_or_else(|| Error::Native("no logits gradient".into()))?;
        let ly = self.layout;
        let mut grads: Vec<Option<Tensor>> = vec![None; ly.len()];
        grads[ly.dec_w()] = Some(gemm::matmul(&dlogits.t()?, &cache.top, self.precision)?);
        grads[ly.dec_b()] = bias_grad;
        let mut d = gemm::matmul(&dlogits, &self.params[ly.dec_w()], self.precision)?; // dL/d(top) [T*B, H]
        d = regularize::add(d, d_top)?;
        for l in (0..self.cfg.num_layers).rev() {
            d = regularize::locked(&d, cache.reg.outputs[l].as_ref(), seq_len)?;
            if let Some(m) = &cache.masks[l] {
                d = (d * m)?;
            }
            if l + 1 == self.cfg.num_layers {
                d = regularize::add(d, d_raw.clone())?;
            }
            let mut weights = self.layer(l);
            if let Some(w) = &cache.w_hh[l] {
                weights.w_hh = w;
            }
            let g = lstm::backward(
                &weights,
                &self.consts,
                &cache.layers[l],
                &d,
                self.precision,
                cache.resets.as_ref(),
            )?;
            grads[ly.w_ih(l)] = Some(g.w_ih);
            grads[ly.w_hh(l)] = Some(match &cache.reg.weight_hh[l] {
                Some(m) => (g.w_hh * m)?,
                None => g.w_hh,
            });
            grads[ly.b_ih(l)] = Some(g.bias.clone());
            grads[ly.b_hh(l)] = Some(g.bias);
            if let (Some(k), Some(d_hr)) = (ly.w_hr(l), g.w_hr) {
                grads[k] = Some(d_hr);
            }
            d = g.dx;
        }
        d = regularize::locked(&d, cache.reg.embedding.as_ref(), seq_len)?;
        if let Some(f) = &cache.word_factors {
            d = d.broadcast_mul(f)?;
        }
        let emb = &self.params[Layout::EMBEDDING];
        let mut d_emb = emb.zeros_like()?.index_add(&cache.ids, &d, 0)?;
        if self.reg.tie_weights {
            // the decoder weight is the embedding: its gradient joins the embedding's
            let d_dec = grads[ly.dec_w()].replace(emb.zeros_like()?);
            d_emb = regularize::add(d_emb, d_dec)?;
        }
        grads[Layout::EMBEDDING] = Some(d_emb);
        let grads = grads
            .into_iter()
            .map(|g| g.ok_or_else(|| Error::Native("missing gradient".into())))
            .collect::<Result<Vec<_>>>()?;
        let count = (batch * seq_len) as u64;
        Ok(BatchGrads {
            loss: loss_sum / count as f64,
            correct,
            count,
            grads,
            state: next,
            penalty,
        })
    }

    /// One truncated-BPTT training step: forward and backward from the carried training state,
    /// global-norm clipping, one Adam update, then the final state is carried (detached).
    /// `inputs`/`targets`: `[batch, seqLen]` row-major token ids. With a `boundary` id the state
    /// resets per row where the input is that id (see [`Model::loss_and_grads`]); the carried
    /// state runs on into the next batch, which resets it where its own inputs say. A non-finite
    /// loss or gradient returns `Error::Numeric` and leaves the parameters and state untouched.
    #[allow(clippy::too_many_arguments)]
    pub fn train_step(
        &mut self,
        inputs: &[u32],
        targets: &[u32],
        batch: usize,
        seq_len: usize,
        opt: &AdamConfig,
        dropout_seed: u64,
        boundary: Option<u32>,
    ) -> Result<StepStats> {
        opt.validate()?;
        self.step_checked.ensure(
            (batch, seq_len),
            || memory::first_step_bytes(&self.cfg, batch, seq_len),
            "training at this batchSize and seqLen (the activations of a step, the gradients, Adam's moments and the update's new weights and moments)",
            "batchSize or seqLen, or the model's size (embeddingDim, hiddenSize, numLayers)",
        )?;
        // NT-ASGD steps the iterates; the parameters hold their average between steps
        let avg = self.averaging.swap_in(&mut self.params);
        let r = self.step_iterate(inputs, targets, batch, seq_len, opt, dropout_seed, boundary);
        self.averaging.swap_out(&mut self.params, avg, r.is_ok())?;
        self.tie();
        r
    }

    /// The body of [`Model::train_step`] on the parameters SGD or Adam update.
    #[allow(clippy::too_many_arguments)]
    fn step_iterate(
        &mut self,
        inputs: &[u32],
        targets: &[u32],
        batch: usize,
        seq_len: usize,
        opt: &AdamConfig,
        dropout_seed: u64,
        boundary: Option<u32>,
    ) -> Result<StepStats> {
        // The carried state is replaced only when the step succeeds.
        let state = self.carried(self.train_state.as_ref(), batch)?;
        let b = self.loss_and_grads(
            inputs,
            targets,
            batch,
            seq_len,
            &state,
            dropout_seed,
            boundary,
        )?;
        if !b.loss.is_finite() {
            return Err(Error::Numeric(format!(
                "loss is {} at step {}; parameters were not updated",
                b.loss,
                self.adam.step() + 1
            )));
        }
        let grad_norm = match self.optimizer {
            Optimizer::Adam => self.adam.update(&mut self.params, &b.grads, opt)?,
            Optimizer::Sgd { momentum } => {
                self.adam
                    .sgd_update(&mut self.params, &b.grads, opt, momentum)?
            }
            Optimizer::NtAsgd { .. } => {
                self.adam.sgd_update(&mut self.params, &b.grads, opt, 0.0)?
            }
        };
        self.tie();
        self.train_state = Some(b.state);
        Ok(StepStats {
            loss: b.loss,
            grad_norm,
            correct: b.correct,
            count: b.count,
        })
    }

    /// The state carried in `slot` when it holds `batch` sequences, else a zero state.
    fn carried(&self, slot: Option<&State>, batch: usize) -> Result<State> {
        match slot {
            Some(s) if s.h[0].dim(0)? == batch => Ok(s.clone()),
            _ => self.zero_state(batch),
        }
    }

    /// Forward-only loss over one batch (no dropout) with the carried evaluation state, reset per
    /// row where the input is `boundary` (as in [`Model::train_step`]).
    pub fn eval_step(
        &mut self,
        inputs: &[u32],
        targets: &[u32],
        batch: usize,
        seq_len: usize,
        boundary: Option<u32>,
    ) -> Result<EvalStats> {
        self.eval_checked.ensure(
            (batch, seq_len),
            || memory::infer_bytes(&self.cfg, batch.saturating_mul(seq_len), 3),
            "one evaluation batch at this batchSize and seqLen",
            "batchSize or seqLen",
        )?;
        let state = self.carried(self.eval_state.as_ref(), batch)?;
        let ids = self.time_major(inputs, batch, seq_len, "inputs")?;
        let tg = self.time_major(targets, batch, seq_len, "targets")?;
        let resets = self.resets(inputs, batch, seq_len, boundary)?;
        let (product, next) = self.forward(&ids, &state, seq_len, resets.as_ref())?;
        let Loss {
            loss_sum, correct, ..
        } = run(&CrossEntropy {
            logits: &product,
            bias: Some(self.decoder_bias()),
            targets: &tg,
            want_grad: false,
        })?;
        self.eval_state = Some(next);
        Ok(EvalStats {
            loss_sum,
            correct,
            count: (batch * seq_len) as u64,
        })
    }

    /// Logits `[batch, seqLen, V]` (flattened row-major) from `state` (zero when `None`), no
    /// dropout, and the final state.
    pub fn logits(
        &self,
        inputs: &[u32],
        batch: usize,
        seq_len: usize,
        state: Option<&State>,
    ) -> Result<(Vec<f32>, State)> {
        self.logits_resetting(inputs, batch, seq_len, state, None)
    }

    /// [`Model::logits`] with the state reset per row where the input is `boundary` (as in
    /// [`Model::train_step`]).
    pub(crate) fn logits_resetting(
        &self,
        inputs: &[u32],
        batch: usize,
        seq_len: usize,
        state: Option<&State>,
        boundary: Option<u32>,
    ) -> Result<(Vec<f32>, State)> {
        // the logits three times: time-major, batch-major, and the returned vector
        memory::ensure_fits(
            memory::infer_bytes(&self.cfg, batch.saturating_mul(seq_len), 3),
            "the logits of this many positions",
            "batchSize or seqLen",
        )?;
        let (logits, next) = self.infer(inputs, batch, seq_len, state, boundary)?;
        let v = self.cfg.vocab_size;
        // time-major [T, B, V] -> batch-major [B, T, V]
        let out = logits
            .reshape((seq_len, batch, v))?
            .transpose(0, 1)?
            .contiguous()?
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?;
        Ok((out, next))
    }

    /// Forward pass without dropout over row-major ids `[batch, seqLen]` from `state` (zero when
    /// `None`), reset per row where the input is `boundary`: time-major logits `[T*B, V]` on the
    /// model's device, and the final state.
    fn infer(
        &self,
        inputs: &[u32],
        batch: usize,
        seq_len: usize,
        state: Option<&State>,
        boundary: Option<u32>,
    ) -> Result<(Tensor, State)> {
        let ids = self.time_major(inputs, batch, seq_len, "inputs")?;
        let resets = self.resets(inputs, batch, seq_len, boundary)?;
        let zero;
        let state = match state {
            Some(s) => s,
            None => {
                zero = self.zero_state(batch)?;
                &zero
            }
        };
        let (product, next) = self.forward(&ids, state, seq_len, resets.as_ref())?;
        Ok((self.add_decoder_bias(&product)?, next))
    }

    /// Next-token logits `[batch, V]` for one token per sequence (`ids` `[batch]`), left on the
    /// model's device, and the new state (reset first where the id is `boundary`). Used by
    /// sampling on a GPU.
    pub(crate) fn next_logits(
        &self,
        ids: &[u32],
        state: Option<&State>,
        boundary: Option<u32>,
    ) -> Result<(Tensor, State)> {
        self.infer(ids, ids.len(), 1, state, boundary)
    }

    /// Next-token logits `[batch * V]` (host, f32, row-major) for one token per sequence (`ids`
    /// `[batch]`) from `state`, and the new state (reset first where the id is `boundary`):
    /// `logits_resetting(ids, batch, 1, state, boundary)` without its memory check, for callers
    /// that checked the batch's memory once (`crate::sessions`, `crate::sample`).
    pub(crate) fn step_logits(
        &self,
        ids: &[u32],
        state: &State,
        boundary: Option<u32>,
    ) -> Result<(Vec<f32>, State)> {
        let (logits, next) = self.infer(ids, ids.len(), 1, Some(state), boundary)?;
        Ok((
            logits
                .flatten_all()?
                .to_dtype(DType::F32)?
                .to_vec1::<f32>()?,
            next,
        ))
    }

    /// Adam's state (moments and step count).
    pub(crate) fn adam(&self) -> &Adam {
        &self.adam
    }

    /// The training hidden state carried to the next batch, if any.
    pub(crate) fn train_state(&self) -> Option<&State> {
        self.train_state.as_ref()
    }

    /// Restores the training state saved in a checkpoint: Adam's moments and step, and the
    /// carried hidden state (shapes checked by the caller).
    pub(crate) fn restore_training(&mut self, adam: Adam, state: Option<State>) {
        self.adam = adam;
        self.train_state = state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GPU dropout rule: 0 where u < p, 1/(1-p) elsewhere.
    #[test]
    fn mask_from_uniform_drops_below_p_and_rescales() {
        let u = Tensor::new(&[0.05f32, 0.25, 0.2499, 0.9], &Device::Cpu).unwrap();
        let m = mask_from_uniform(&u, 0.25)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(m, vec![0.0, 1.0 / 0.75, 0.0, 1.0 / 0.75]);
    }
}

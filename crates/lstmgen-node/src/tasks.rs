//! Work that runs on the libuv thread pool (napi `AsyncTask` of [`Engine`]), so the event loop
//! stays free.

use crate::convert::{NativeEvalResult, NativeStepResult};
use crate::error::{Engine, EngineTask};
use lstmgen_core::{AdamConfig, Model, SampleConfig};
use napi::bindgen_prelude::*;
use std::sync::{Arc, Mutex, MutexGuard};

/// The promise of an engine task.
pub type Job<T> = AsyncTask<Engine<T>>;

/// The shared, lockable engine model.
pub type Shared = Arc<Mutex<Model>>;

/// Locks the model; a lock poisoned by an earlier (caught) panic is still usable.
pub fn lock(m: &Shared) -> MutexGuard<'_, Model> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct TrainStep {
    pub model: Shared,
    pub inputs: Vec<u32>,
    pub targets: Vec<u32>,
    pub batch: usize,
    pub seq_len: usize,
    pub opt: AdamConfig,
    pub dropout_seed: u64,
    /// The record-boundary id at which the state resets, if any.
    pub boundary: Option<u32>,
}

impl EngineTask for TrainStep {
    type Output = lstmgen_core::StepStats;
    type JsValue = NativeStepResult;
    fn compute(&mut self) -> lstmgen_core::Result<Self::Output> {
        lock(&self.model).train_step(
            &self.inputs,
            &self.targets,
            self.batch,
            self.seq_len,
            &self.opt,
            self.dropout_seed,
            self.boundary,
        )
    }
    fn resolve(&mut self, s: Self::Output) -> Self::JsValue {
        NativeStepResult {
            loss: s.loss,
            grad_norm: s.grad_norm,
            correct: s.correct as f64,
            count: s.count as f64,
        }
    }
}

pub struct EvalStep {
    pub model: Shared,
    pub inputs: Vec<u32>,
    pub targets: Vec<u32>,
    pub batch: usize,
    pub seq_len: usize,
    /// The record-boundary id at which the state resets, if any.
    pub boundary: Option<u32>,
}

impl EngineTask for EvalStep {
    type Output = lstmgen_core::EvalStats;
    type JsValue = NativeEvalResult;
    fn compute(&mut self) -> lstmgen_core::Result<Self::Output> {
        lock(&self.model).eval_step(
            &self.inputs,
            &self.targets,
            self.batch,
            self.seq_len,
            self.boundary,
        )
    }
    fn resolve(&mut self, s: Self::Output) -> Self::JsValue {
        NativeEvalResult {
            loss_sum: s.loss_sum,
            correct: s.correct as f64,
            count: s.count as f64,
        }
    }
}

pub struct Logits {
    pub model: Shared,
    pub inputs: Vec<u32>,
    pub batch: usize,
    pub seq_len: usize,
}

impl EngineTask for Logits {
    type Output = Vec<f32>;
    type JsValue = Float32Array;
    fn compute(&mut self) -> lstmgen_core::Result<Self::Output> {
        Ok(lock(&self.model)
            .logits(&self.inputs, self.batch, self.seq_len, None)?
            .0)
    }
    fn resolve(&mut self, v: Self::Output) -> Self::JsValue {
        Float32Array::new(v)
    }
}

pub struct Generate {
    pub model: Shared,
    pub prompt: Vec<u32>,
    pub cfg: SampleConfig,
}

impl EngineTask for Generate {
    type Output = Vec<Vec<u32>>;
    type JsValue = Vec<Vec<u32>>;
    fn compute(&mut self) -> lstmgen_core::Result<Self::Output> {
        lstmgen_core::sample::generate(&lock(&self.model), &self.prompt, &self.cfg)
    }
    fn resolve(&mut self, v: Self::Output) -> Self::JsValue {
        v
    }
}

/// A sampling run shared between JS calls; created lazily on the first task so that the prompt's
/// forward pass runs off the main thread.
pub struct SamplerSlot {
    pub prompt: Vec<u32>,
    pub cfg: SampleConfig,
    pub sampler: Option<lstmgen_core::sample::Sampler>,
}

/// Result of one streaming call: new ids per sample, and whether every sample has ended.
#[napi_derive::napi(object)]
pub struct NativeSampleChunk {
    pub tokens: Vec<Vec<u32>>,
    pub finished: bool,
}

pub struct SamplerStep {
    pub model: Shared,
    pub slot: Arc<Mutex<SamplerSlot>>,
    pub feed: Vec<u32>,
    pub max_tokens: usize,
}

impl EngineTask for SamplerStep {
    type Output = (Vec<Vec<u32>>, bool);
    type JsValue = NativeSampleChunk;
    fn compute(&mut self) -> lstmgen_core::Result<Self::Output> {
        let model = lock(&self.model);
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut *slot;
        let sampler = match &mut slot.sampler {
            Some(s) => s,
            empty => empty.insert(lstmgen_core::sample::Sampler::new(
                &model,
                &slot.prompt,
                &slot.cfg,
            )?),
        };
        sampler.feed(&model, &self.feed)?;
        let tokens = sampler.next(&model, self.max_tokens)?;
        Ok((tokens, sampler.finished()))
    }
    fn resolve(&mut self, (tokens, finished): Self::Output) -> Self::JsValue {
        NativeSampleChunk { tokens, finished }
    }
}

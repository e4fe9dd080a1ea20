//! napi-rs binding for lstmgen-core: conversions and async tasks only; the engine holds the logic.
//!
//! # Errors
//!
//! Every error the addon raises, thrown by a sync method or rejecting the promise of an async
//! one, is a JS `Error` whose `code` property is one of:
//!
//! - `"E_DATA"`: bad caller input (shapes, token ids, sizes, option values);
//! - `"E_MODEL_FILE"`: a model file that is truncated, foreign, corrupt or of another version;
//! - `"E_DEVICE"`: the requested device cannot be used;
//! - `"E_NUMERIC"`: a non-finite loss or gradient (the parameters were left unchanged);
//! - `"E_NATIVE"`: an error from candle or a caught Rust panic (the process lives on): a bug.
//!
//! and whose `message` is the engine's, with no code prefix. The codes are
//! `lstmgen_core::Error::code`; `error.rs` explains how they travel through async tasks.
//! Arguments of the wrong JS type are rejected by napi-rs's generated conversions before any of
//! this runs, with napi's own status as `code` (e.g. `"InvalidArg"`, `"NumberExpected"`).

#![deny(clippy::all)]

mod convert;
mod error;
mod sessions;
mod subword;
mod tasks;

/// mimalloc reuses the large per-step tensor buffers instead of mapping fresh pages each time
/// (glibc's malloc page-faulted ~100k times per training step of the tinyshakespeare model).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc option id of `purge_delay` (mimalloc 2.x `mi_option_purge_delay`; not exported as a
/// constant by libmimalloc-sys).
const MI_OPTION_PURGE_DELAY: i32 = 15;

/// At load: keep freed pages for reuse instead of returning them to the OS after 10 ms. A
/// training step frees and re-allocates the same large buffers (logits alone are
/// `[batch*seqLen, vocab]` floats); returning them made the kernel zero fresh pages every step
/// (12% of the Keras-reference step). Resident memory so stays at its peak until the process
/// ends. `MIMALLOC_PURGE_DELAY` in the environment overrides this.
#[napi_derive::module_init]
fn keep_freed_pages() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a plain integer option; mimalloc reads it on later frees.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

use convert::{
    optimizer_of, seed_u64, NativeModelConfig, NativeOptimizerConfig, NativeRegularizers,
    NativeSampleOptions,
};
use error::{guard, Engine, Result};
use lstmgen_core::gemm::Precision;
use lstmgen_core::{device, io, Model};
use napi::bindgen_prelude::{AsyncTask, Buffer, Uint32Array};
use napi_derive::napi;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tasks::{lock, EvalStep, Generate, Job, Logits, SamplerSlot, SamplerStep, Shared, TrainStep};

/// An LSTM language model owned by the native engine. JS holds an opaque handle.
/// Every error its methods throw or reject with has a `code` (`E_DATA`, `E_MODEL_FILE`,
/// `E_DEVICE`, `E_NUMERIC` or `E_NATIVE`) and a message without a code prefix; the contract is
/// documented in crates/lstmgen-node/src/lib.rs.
#[napi]
pub struct NativeModel {
    inner: Shared,
    metadata: HashMap<String, String>,
}

/// Copies a JS Uint32Array so the async task owns its ids.
fn ids(a: &Uint32Array) -> Vec<u32> {
    a.to_vec()
}

#[napi]
impl NativeModel {
    /// A new model with PyTorch's default initialisation drawn from `seed`.
    /// `device`: "cpu", "cuda" (throws `E_DEVICE` when unusable) or "auto".
    #[napi(factory)]
    pub fn create(config: NativeModelConfig, seed: f64, device: String) -> Result<NativeModel> {
        let seed = seed_u64(seed)?;
        let model = guard(|| Model::new(config.into(), seed, device::select(&device)?))?;
        Ok(NativeModel {
            inner: Arc::new(Mutex::new(model)),
            metadata: HashMap::new(),
        })
    }

    /// Loads a model from the bytes of a file written by `toSafetensors`; verifies the format tag,
    /// version, every tensor's shape and the CRC-32 (throws `E_MODEL_FILE` otherwise). A file
    /// written with `withTraining` also restores Adam's moments and step and the carried state.
    #[napi(factory)]
    pub fn from_safetensors(bytes: Buffer, device: String) -> Result<NativeModel> {
        let loaded = guard(|| io::from_safetensors(&bytes, &device::select(&device)?))?;
        Ok(NativeModel {
            inner: Arc::new(Mutex::new(loaded.model)),
            metadata: loaded.metadata,
        })
    }

    /// Imports a PyTorch state dict (safetensors, float32) of a module with `embedding`
    /// (nn.Embedding), `lstm` (nn.LSTM) and `decoder` (nn.Linear); the shape is inferred from the
    /// tensors. Throws `E_MODEL_FILE` when tensors are missing or mis-shaped.
    #[napi(factory)]
    pub fn from_torch_state_dict(bytes: Buffer, device: String) -> Result<NativeModel> {
        let model = guard(|| io::from_state_dict(&bytes, &device::select(&device)?))?;
        Ok(NativeModel {
            inner: Arc::new(Mutex::new(model)),
            metadata: HashMap::new(),
        })
    }

    /// The bytes of a safetensors file holding the weights (PyTorch names), the model config and
    /// `metadata` (string -> string; keys starting with `lstmgen.` are reserved). With
    /// `withTraining` (a checkpoint) it also holds Adam's moments and step count and the carried
    /// training hidden state, so training resumes exactly.
    #[napi]
    pub fn to_safetensors(
        &self,
        metadata: HashMap<String, String>,
        with_training: Option<bool>,
    ) -> Result<Buffer> {
        let m = lock(&self.inner);
        Ok(guard(|| io::to_safetensors(&m, &metadata, with_training.unwrap_or(false)))?.into())
    }

    /// A new model to fine-tune from this one (`Model::for_fine_tuning`): the same weights with
    /// the vocabulary grown to `vocabSize` ids (new embedding and decoder rows as a fresh model of
    /// `seed` draws them; the old rows unchanged), training `dropout`, a fresh optimizer, step
    /// count 0, no carried state and no metadata. This model is left as it was. Throws `E_DATA`
    /// when `vocabSize` is below this model's, `dropout` is out of [0, 1), or it does not fit.
    #[napi]
    pub fn for_fine_tuning(&self, vocab_size: u32, dropout: f64, seed: f64) -> Result<NativeModel> {
        let seed = seed_u64(seed)?;
        let model =
            guard(|| lock(&self.inner).for_fine_tuning(vocab_size as usize, dropout as f32, seed))?;
        Ok(NativeModel {
            inner: Arc::new(Mutex::new(model)),
            metadata: HashMap::new(),
        })
    }

    /// Metadata of the file this model was loaded from (`{}` for a new model).
    #[napi]
    pub fn metadata(&self) -> HashMap<String, String> {
        self.metadata.clone()
    }

    /// The network's shape.
    #[napi]
    pub fn config(&self) -> NativeModelConfig {
        NativeModelConfig::from(lock(&self.inner).config())
    }

    /// Where the parameters live: "cpu" or "cuda:0".
    #[napi]
    pub fn device_name(&self) -> String {
        device::name(lock(&self.inner).device())
    }

    /// Precision of the matrix products: "f32" (default) or "bf16" (bf16 inputs, f32
    /// accumulation; AMX tiles where the CPU has them). Throws `E_DATA` for another value, or
    /// for "bf16" on a CUDA model.
    #[napi]
    pub fn set_precision(&self, precision: String) -> Result<()> {
        guard(|| {
            let p = Precision::parse(&precision)?;
            lock(&self.inner).set_precision(p)
        })
    }

    /// Sets the regularizers of later training steps (see `NativeRegularizers`). Throws `E_DATA`
    /// for a value out of range, or `tieWeights` when embeddingDim differs from the last layer's
    /// output width (projSize, or hiddenSize without a projection).
    #[napi]
    pub fn set_regularizers(&self, reg: NativeRegularizers) -> Result<()> {
        guard(|| lock(&self.inner).set_regularizers(reg.into()))
    }

    /// Sets the update rule of later training steps: "adam" (default), "sgd" with `momentum`
    /// in [0, 1), or "ntasgd" (NT-ASGD) with the non-monotone interval `nonmono` >= 1 (default 5).
    /// Throws `E_DATA` for another name, momentum or interval.
    #[napi]
    pub fn set_optimizer(
        &self,
        optimizer: String,
        momentum: f64,
        nonmono: Option<u32>,
    ) -> Result<()> {
        guard(|| {
            let o = optimizer_of(&optimizer, momentum, nonmono.unwrap_or(5))?;
            lock(&self.inner).set_optimizer(o)
        })
    }

    /// Records a monitored validation loss (nats/token) for NT-ASGD's trigger; true when it
    /// starts the averaging. Under another optimizer it records nothing and returns false.
    #[napi]
    pub fn observe_validation(&self, loss: f64) -> bool {
        lock(&self.inner).observe_validation(loss)
    }

    /// The optimizer step after which NT-ASGD started averaging the weights (null: not started).
    #[napi]
    pub fn averaging_start(&self) -> Option<f64> {
        lock(&self.inner).averaging().start.map(|s| s as f64)
    }

    /// The current precision of the matrix products: "f32" or "bf16".
    #[napi]
    pub fn precision(&self) -> String {
        match lock(&self.inner).precision() {
            Precision::F32 => "f32".into(),
            Precision::Bf16 => "bf16".into(),
        }
    }

    /// Number of optimizer steps taken.
    #[napi]
    pub fn step(&self) -> f64 {
        lock(&self.inner).step() as f64
    }

    /// One truncated-BPTT training step on `inputs`/`targets` `[batchSize, seqLen]` (row-major
    /// u32 token ids): forward, backward, clipping, Adam. Carries the training hidden state.
    /// With `boundaryId` (a record-boundary token id), each row's hidden and cell state are zero
    /// entering every step whose input is that id, and no gradient flows back through the reset;
    /// absent or null: no resets. Throws `E_DATA` for bad shapes or ids (`boundaryId` included),
    /// `E_NUMERIC` for a non-finite loss or gradient (parameters unchanged).
    #[napi(ts_return_type = "Promise<NativeStepResult>")]
    #[allow(clippy::too_many_arguments)]
    pub fn train_step(
        &self,
        inputs: Uint32Array,
        targets: Uint32Array,
        batch_size: u32,
        seq_len: u32,
        opt: NativeOptimizerConfig,
        dropout_seed: f64,
        boundary_id: Option<u32>,
    ) -> Result<Job<TrainStep>> {
        Ok(AsyncTask::new(Engine(TrainStep {
            model: self.inner.clone(),
            inputs: ids(&inputs),
            targets: ids(&targets),
            batch: batch_size as usize,
            seq_len: seq_len as usize,
            opt: opt.into(),
            dropout_seed: seed_u64(dropout_seed)?,
            boundary: boundary_id,
        })))
    }

    /// Forward-only loss over one batch (no dropout), carrying the evaluation hidden state, reset
    /// per row where the input is `boundaryId` (as in `trainStep`).
    #[napi(ts_return_type = "Promise<NativeEvalResult>")]
    pub fn eval_step(
        &self,
        inputs: Uint32Array,
        targets: Uint32Array,
        batch_size: u32,
        seq_len: u32,
        boundary_id: Option<u32>,
    ) -> Job<EvalStep> {
        AsyncTask::new(Engine(EvalStep {
            model: self.inner.clone(),
            inputs: ids(&inputs),
            targets: ids(&targets),
            batch: batch_size as usize,
            seq_len: seq_len as usize,
            boundary: boundary_id,
        }))
    }

    /// Zeroes the carried training hidden state (start of an epoch).
    #[napi]
    pub fn reset_train_state(&self) {
        lock(&self.inner).reset_train_state()
    }

    /// Zeroes the carried evaluation hidden state.
    #[napi]
    pub fn reset_eval_state(&self) {
        lock(&self.inner).reset_eval_state()
    }

    /// Logits `[batchSize, seqLen, vocabSize]` (flattened, f32) from a zero state, no dropout.
    #[napi(ts_return_type = "Promise<Float32Array>")]
    pub fn logits(&self, inputs: Uint32Array, batch_size: u32, seq_len: u32) -> Job<Logits> {
        AsyncTask::new(Engine(Logits {
            model: self.inner.clone(),
            inputs: ids(&inputs),
            batch: batch_size as usize,
            seq_len: seq_len as usize,
        }))
    }

    /// Samples `numSamples` continuations of `prompt` (>= 1 token id) in one batch; returns the
    /// generated ids only (prompt excluded), one array per sample.
    #[napi(ts_return_type = "Promise<Array<Array<number>>>")]
    pub fn generate(
        &self,
        prompt: Uint32Array,
        options: NativeSampleOptions,
    ) -> Result<Job<Generate>> {
        Ok(AsyncTask::new(Engine(Generate {
            model: self.inner.clone(),
            prompt: ids(&prompt),
            cfg: options.to_core()?,
        })))
    }

    /// Starts a streaming sampling run of `options.numSamples` sequences from `prompt` (>= 1 id).
    /// Nothing runs until the sampler's first `next()`; options are validated then.
    #[napi]
    pub fn start_sampling(
        &self,
        prompt: Uint32Array,
        options: NativeSampleOptions,
    ) -> Result<NativeSampler> {
        let slot = SamplerSlot {
            prompt: ids(&prompt),
            cfg: options.to_core()?,
            sampler: None,
        };
        Ok(NativeSampler {
            model: self.inner.clone(),
            slot: Arc::new(Mutex::new(slot)),
        })
    }
}

/// A streaming sampling run created by `NativeModel.startSampling`.
#[napi]
pub struct NativeSampler {
    model: Shared,
    slot: Arc<Mutex<SamplerSlot>>,
}

#[napi]
impl NativeSampler {
    /// Feeds `feed` (more prompt ids, may be empty), then samples up to `maxTokens` more ids per
    /// sequence. Resolves to the new ids of each sequence and whether all have ended.
    #[napi(ts_return_type = "Promise<NativeSampleChunk>")]
    pub fn next(&self, feed: Uint32Array, max_tokens: u32) -> Job<SamplerStep> {
        AsyncTask::new(Engine(SamplerStep {
            model: self.model.clone(),
            slot: self.slot.clone(),
            feed: ids(&feed),
            max_tokens: max_tokens as usize,
        }))
    }
}

/// Facts about the loaded engine binary.
#[napi(object)]
pub struct EngineInfo {
    /// Whether this binary was compiled with CUDA support.
    pub cuda_compiled: bool,
    /// Name of the CUDA device that `"auto"` would use, or null.
    pub cuda_device: Option<String>,
    /// Why CUDA is not used (no CUDA in this build, no GPU, driver error), or null.
    pub cuda_unavailable_reason: Option<String>,
    /// candle-core version the engine was built with.
    pub candle_version: String,
    /// Threads candle uses for CPU matrix products (`RAYON_NUM_THREADS`, default: all cores).
    pub threads: u32,
    /// What computes CPU matrix products: `"OpenBLAS <version> ... (<kernel>); bf16: AMX"`, or
    /// `"lstmgen blocked kernels (AVX2+FMA); ..."` in a build without OpenBLAS; after `bf16:`,
    /// `AMX` or `emulated (no AMX)` for `precision: "bf16"`.
    pub cpu_gemm: String,
    /// The LSTM recurrence on CUDA (`LSTMGEN_CUDA_RECURRENCE`): `"standard"` (one product and one
    /// cell kernel per timestep), or `"persistent (forward launches F, backward B, fallbacks to
    /// standard N)"` with this process's counts so far.
    pub cuda_recurrence: String,
}

/// Reports whether CUDA is compiled in and usable, candle's version and the CPU thread count.
#[napi]
pub fn engine_info() -> EngineInfo {
    let cuda = device::select("cuda");
    EngineInfo {
        cuda_compiled: cfg!(feature = "cuda"),
        cuda_device: cuda.as_ref().ok().map(device::name),
        cuda_unavailable_reason: cuda.err().map(|e| e.to_string()),
        candle_version: lstmgen_core::CANDLE_VERSION.to_string(),
        threads: lstmgen_core::cpu_threads() as u32,
        cpu_gemm: lstmgen_core::gemm::backend(),
        cuda_recurrence: lstmgen_core::cuda_recurrence::describe(),
    }
}

static PANIC_HOOK_QUIET: AtomicBool = AtomicBool::new(false);

/// Test hook: panics inside the engine boundary to prove that a Rust panic becomes a JS `Error`
/// with `code` `"E_NATIVE"` and message `"panic in the native engine: lstmgen debug panic"`, and
/// that the process lives on.
#[napi]
pub fn debug_panic() -> Result<()> {
    if !PANIC_HOOK_QUIET.swap(true, Ordering::SeqCst) {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.to_string().contains("lstmgen debug panic") {
                default(info)
            }
        }));
    }
    guard(|| -> lstmgen_core::Result<()> { panic!("lstmgen debug panic") })
}

//! `NativeSessions`: the engine's batch of independent LSTM states (`lstmgen_core::sessions`),
//! with its heavy calls (priming, feeding, stepping) as async tasks on the libuv pool.

use crate::convert::NativeSampleOptions;
use crate::error::{guard, Engine, EngineTask, Result};
use crate::tasks::{lock, Job, Shared};
use crate::NativeModel;
use lstmgen_core::sessions::{RowId, Sessions};
use lstmgen_core::SampleConfig;
use napi::bindgen_prelude::{AsyncTask, Uint32Array};
use napi_derive::napi;
use std::sync::{Arc, Mutex, MutexGuard};

type SharedRows = Arc<Mutex<Sessions>>;

fn rows(r: &SharedRows) -> MutexGuard<'_, Sessions> {
    r.lock().unwrap_or_else(|e| e.into_inner())
}

/// A batch of independent rows (LSTM states with their own sampling options and random stream)
/// over one model, stepped together: one forward call per step serves every listed row. A row's
/// tokens depend on its seed, stream, prompt and options only, not on the other rows. Errors have
/// the codes of `NativeModel` (`E_DATA` for an unknown row id or bad options).
#[napi]
pub struct NativeSessions {
    model: Shared,
    rows: SharedRows,
}

/// The most likely next tokens of a row, most likely first, with probabilities under the full
/// softmax of its logits (temperature 1, no filter or ban).
#[napi(object)]
pub struct NativeTopTokens {
    pub ids: Vec<u32>,
    pub probs: Vec<f64>,
}

/// One row of `NativeSessions.addMany`: its id, or why it was not added (`code` and `message` as
/// the addon's errors have them).
#[napi(object)]
pub struct NativeAdded {
    pub row: Option<u32>,
    pub code: Option<String>,
    pub message: Option<String>,
}

/// One row of `NativeSessions.stepEach`: its new token ids, or why it stopped (`code` and
/// `message` as the addon's errors have them).
#[napi(object)]
pub struct NativeStepped {
    pub ids: Option<Vec<u32>>,
    pub code: Option<String>,
    pub message: Option<String>,
}

/// `code` and `message` of an engine error, as the addon's errors have them.
fn described(e: &lstmgen_core::Error) -> (Option<String>, Option<String>) {
    (Some(e.code().into()), Some(e.to_string()))
}

/// The core options of `options` with `seed` as given (a JS number).
fn config(options: &NativeSampleOptions) -> Result<SampleConfig> {
    options.to_core()
}

#[napi]
impl NativeSessions {
    /// An empty batch over `model`.
    #[napi(factory)]
    pub fn create(model: &NativeModel) -> NativeSessions {
        NativeSessions {
            model: model.inner.clone(),
            rows: Arc::new(Mutex::new(Sessions::new())),
        }
    }

    /// Adds a row with `options` (`numSamples` unused) drawing from stream `stream` of
    /// `options.seed`, primed with `prompt` (may be empty: then it must be fed before stepping).
    /// Resolves to the row's id.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn add(
        &self,
        prompt: Uint32Array,
        options: NativeSampleOptions,
        stream: u32,
    ) -> Result<Job<AddRow>> {
        Ok(AsyncTask::new(Engine(AddRow {
            model: self.model.clone(),
            rows: self.rows.clone(),
            prompt: prompt.to_vec(),
            cfg: config(&options)?,
            stream: stream as u64,
        })))
    }

    /// Adds one row per prompt, as `add` with `options[i]` and stream `streams[i]`, priming the
    /// prompts of equal length together in one batched forward pass. Resolves to each row's id or
    /// its own error; rejects (adding nothing) only when a forward pass itself fails.
    #[napi(ts_return_type = "Promise<Array<NativeAdded>>")]
    pub fn add_many(
        &self,
        prompts: Vec<Uint32Array>,
        options: Vec<NativeSampleOptions>,
        streams: Vec<u32>,
    ) -> Result<Job<AddRows>> {
        if prompts.len() != options.len() || prompts.len() != streams.len() {
            return Err(crate::error::to_js(lstmgen_core::Error::Data(format!(
                "addMany takes as many options ({}) and streams ({}) as prompts ({})",
                options.len(),
                streams.len(),
                prompts.len()
            ))));
        }
        let mut items = Vec::with_capacity(prompts.len());
        for ((p, o), st) in prompts.iter().zip(&options).zip(streams) {
            items.push((p.to_vec(), config(o)?, st as u64));
        }
        Ok(AsyncTask::new(Engine(AddRows {
            model: self.model.clone(),
            rows: self.rows.clone(),
            items,
        })))
    }

    /// Feeds `tokens` to row `row` after everything it was fed or generated.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn feed(&self, row: u32, tokens: Uint32Array) -> Job<FeedRow> {
        AsyncTask::new(Engine(FeedRow {
            model: self.model.clone(),
            rows: self.rows.clone(),
            row,
            tokens: tokens.to_vec(),
        }))
    }

    /// Samples up to `maxTokens` tokens for each row of `rowIds` (distinct ids), all of them
    /// stepped together. Resolves to each row's outcome, in order: its new ids (empty for a row
    /// that has ended: `maxTokens` or a stop sequence of its options), or its own error
    /// (`E_NUMERIC` for logits that are not finite), which stops that row only. Rejects for an
    /// unknown or repeated id or a failed forward pass.
    #[napi(ts_return_type = "Promise<Array<NativeStepped>>")]
    pub fn step_each(&self, row_ids: Uint32Array, max_tokens: u32) -> Job<StepRows> {
        AsyncTask::new(Engine(StepRows {
            model: self.model.clone(),
            rows: self.rows.clone(),
            ids: row_ids.to_vec(),
            k: max_tokens as usize,
        }))
    }

    /// Removes a row; returns whether it existed.
    #[napi]
    pub fn remove(&self, row: u32) -> bool {
        rows(&self.rows).remove(row)
    }

    /// A copy of row `row` as a new row (its random stream goes on from the same position, or
    /// restarts at stream `stream` of its seed when given). Returns the new row's id.
    #[napi]
    pub fn fork(&self, row: u32, stream: Option<u32>) -> Result<u32> {
        guard(|| rows(&self.rows).fork(row, stream.map(u64::from)))
    }

    /// Replaces row `row`'s options (its generated-token count restarts at 0); with `stream`,
    /// its random stream restarts at stream `stream` of `options.seed`.
    #[napi]
    pub fn set_options(
        &self,
        row: u32,
        options: NativeSampleOptions,
        stream: Option<u32>,
    ) -> Result<()> {
        let cfg = config(&options)?;
        let model = lock(&self.model);
        guard(|| rows(&self.rows).set_options(&model, row, &cfg, stream.map(u64::from)))
    }

    /// The `n` most likely next tokens of row `row` (`n` >= vocabSize: all of them).
    #[napi]
    pub fn top(&self, row: u32, n: u32) -> Result<NativeTopTokens> {
        let t = guard(|| rows(&self.rows).top(row, n as usize))?;
        Ok(NativeTopTokens {
            ids: t.ids,
            probs: t.probs,
        })
    }

    /// Whether row `row` has ended under its options (`maxTokens` or a stop sequence).
    #[napi]
    pub fn done(&self, row: u32) -> Result<bool> {
        guard(|| rows(&self.rows).done(row))
    }

    /// Number of rows.
    #[napi]
    pub fn size(&self) -> u32 {
        rows(&self.rows).len() as u32
    }
}

pub struct AddRow {
    model: Shared,
    rows: SharedRows,
    prompt: Vec<u32>,
    cfg: SampleConfig,
    stream: u64,
}

impl EngineTask for AddRow {
    type Output = RowId;
    type JsValue = u32;
    fn compute(&mut self) -> lstmgen_core::Result<RowId> {
        let model = lock(&self.model);
        rows(&self.rows).add(&model, &self.prompt, &self.cfg, self.stream)
    }
    fn resolve(&mut self, id: RowId) -> u32 {
        id
    }
}

pub struct AddRows {
    model: Shared,
    rows: SharedRows,
    items: Vec<(Vec<u32>, SampleConfig, u64)>,
}

impl EngineTask for AddRows {
    type Output = Vec<lstmgen_core::Result<RowId>>;
    type JsValue = Vec<NativeAdded>;
    fn compute(&mut self) -> lstmgen_core::Result<Self::Output> {
        let model = lock(&self.model);
        rows(&self.rows).add_many(&model, &self.items)
    }
    fn resolve(&mut self, added: Self::Output) -> Self::JsValue {
        added
            .into_iter()
            .map(|r| match r {
                Ok(row) => NativeAdded {
                    row: Some(row),
                    code: None,
                    message: None,
                },
                Err(e) => {
                    let (code, message) = described(&e);
                    NativeAdded {
                        row: None,
                        code,
                        message,
                    }
                }
            })
            .collect()
    }
}

pub struct FeedRow {
    model: Shared,
    rows: SharedRows,
    row: u32,
    tokens: Vec<u32>,
}

impl EngineTask for FeedRow {
    type Output = ();
    type JsValue = ();
    fn compute(&mut self) -> lstmgen_core::Result<()> {
        let model = lock(&self.model);
        rows(&self.rows).feed(&model, self.row, &self.tokens)
    }
    fn resolve(&mut self, _: ()) {}
}

pub struct StepRows {
    model: Shared,
    rows: SharedRows,
    ids: Vec<u32>,
    k: usize,
}

impl EngineTask for StepRows {
    type Output = Vec<lstmgen_core::Result<Vec<u32>>>;
    type JsValue = Vec<NativeStepped>;
    fn compute(&mut self) -> lstmgen_core::Result<Self::Output> {
        let model = lock(&self.model);
        rows(&self.rows).step_each(&model, &self.ids, self.k)
    }
    fn resolve(&mut self, stepped: Self::Output) -> Self::JsValue {
        stepped
            .into_iter()
            .map(|r| match r {
                Ok(ids) => NativeStepped {
                    ids: Some(ids),
                    code: None,
                    message: None,
                },
                Err(e) => {
                    let (code, message) = described(&e);
                    NativeStepped {
                        ids: None,
                        code,
                        message,
                    }
                }
            })
            .collect()
    }
}

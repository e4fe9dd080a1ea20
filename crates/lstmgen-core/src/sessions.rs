//! A batch of independent LSTM states ("rows"), stepped together: rows are added (primed with a
//! prompt or empty), fed, forked and removed one by one, and [`Sessions::step`] samples one token
//! for every listed row and runs all of them through the model in one forward call. This is the
//! engine of `model.session()` and of the server's dynamic batching.
//!
//! Each row has its own sampling options ([`SampleConfig`]: temperature, top-k, top-p, banned
//! ids, generation controls, `max_tokens` and stop sequences; `num_samples` is not used) and its
//! own random stream: ChaCha8 seeded with the row's seed, stream = the row's stream index, one
//! draw per token, as sample `stream` of [`crate::sample::Sampler`] on the host. A row's tokens so
//! depend on its seed, stream, prompt and options only, not on the other rows in the batch, and a
//! row of seed s and stream 0 samples the text of `generate` with seed s (on the CPU; a GPU's
//! products may round differently with the batch size). Sampling runs on the host on every
//! device: the logits of the stepped rows are copied from the device once per step.

use crate::config::SampleConfig;
use crate::controls::Context;
use crate::error::{ensure, Error, Result};
use crate::model::{Model, State};
use crate::sample::{ban_row, check_banned, sample_row, PRIME_ROWS};
use candle_core::{DType, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::HashMap;

/// Id of a row in a [`Sessions`] batch (never reused within one batch).
pub type RowId = u32;

/// One row: its state, next-token logits, options, random stream and what it generated.
#[derive(Clone)]
struct Row {
    /// `[1, H]` per layer.
    state: State,
    /// Next-token logits `[V]` (f32, host); `None` until something was fed.
    logits: Option<Vec<f32>>,
    cfg: SampleConfig,
    rng: ChaCha8Rng,
    /// The last tokens fed or generated (for the generation controls).
    context: Context,
    /// Tokens generated since the options were last set.
    generated: Vec<u32>,
    done: bool,
}

impl Row {
    /// Whether a step samples this row: it has logits and has not ended.
    fn live(&self) -> bool {
        self.logits.is_some() && !self.done
    }

    /// Records a sampled token: context, generated tokens, and the end at `max_tokens` or a stop
    /// sequence.
    fn push(&mut self, tok: u32) {
        self.context.extend(&[tok]);
        self.generated.push(tok);
        let out = &self.generated;
        self.done = out.len() >= self.cfg.max_tokens
            || self.cfg.stop_sequences.iter().any(|s| out.ends_with(s));
    }
}

/// The random stream of sample `stream` under `seed` (as the batched sampler's).
fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Top-N next tokens of a row with their probabilities under softmax(logits) (temperature 1, no
/// filter, control or ban), most likely first (ties: lower id first).
#[derive(Debug, Clone, PartialEq)]
pub struct TopTokens {
    pub ids: Vec<u32>,
    pub probs: Vec<f64>,
}

/// A batch of independent rows over one model (see the module docs). Rows hold tensors on the
/// model's device; a `Sessions` is used with the model it was filled from.
#[derive(Default)]
pub struct Sessions {
    rows: HashMap<RowId, Row>,
    next_id: RowId,
    /// The most positions of one feed and the most rows of one step whose memory was checked
    /// against the system: a check reads several /proc and cgroup files, so it runs only when a
    /// call goes beyond what was checked before.
    checked: (usize, usize),
}

/// Rows below this many are sampled on the calling thread (waking the pool costs more).
const PARALLEL_ROWS: usize = 16;

impl Sessions {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn row(&self, id: RowId) -> Result<&Row> {
        self.rows
            .get(&id)
            .ok_or_else(|| Error::Data(format!("row {id} does not exist (removed?)")))
    }

    fn row_mut(&mut self, id: RowId) -> Result<&mut Row> {
        self.rows
            .get_mut(&id)
            .ok_or_else(|| Error::Data(format!("row {id} does not exist (removed?)")))
    }

    /// Checks `cfg` for `model` and returns it with its banned ids sorted and deduplicated.
    fn checked(model: &Model, cfg: &SampleConfig) -> Result<SampleConfig> {
        cfg.validate()?;
        let vocab = model.config().vocab_size;
        cfg.controls.validate(vocab)?;
        let mut cfg = cfg.clone();
        cfg.banned_ids = check_banned(&cfg.banned_ids, vocab)?;
        Ok(cfg)
    }

    /// Adds a row with options `cfg` drawing from stream `stream` of `cfg.seed`, primed with
    /// `prompt` (fed in pieces of [`PRIME_ROWS`] positions); an empty prompt leaves a zero state
    /// that must be fed before it can be stepped. Returns its id.
    /// Errors: `Error::Data` for invalid options or prompt ids, or a prompt too large for memory.
    pub fn add(
        &mut self,
        model: &Model,
        prompt: &[u32],
        cfg: &SampleConfig,
        stream: u64,
    ) -> Result<RowId> {
        let cfg = Self::checked(model, cfg)?;
        let mut row = Row {
            state: model.zero_state(1)?,
            logits: None,
            rng: stream_rng(cfg.seed, stream),
            context: Context::new(cfg.controls.window),
            generated: Vec::new(),
            done: cfg.max_tokens == 0,
            cfg,
        };
        self.feed_row(model, &mut row, prompt)?;
        let id = self.next_id;
        self.next_id = self
            .next_id
            .checked_add(1)
            .ok_or_else(|| Error::Data("this batch has made 2^32 rows: make a new one".into()))?;
        self.rows.insert(id, row);
        Ok(id)
    }

    /// Adds one row per item (prompt, options, stream) as [`Sessions::add`] would, priming the
    /// prompts of equal length together in one batched forward pass per length. Returns each
    /// item's row id, or its own error (invalid options or prompt ids); an error of a forward pass
    /// itself fails the whole call and adds nothing.
    pub fn add_many(
        &mut self,
        model: &Model,
        items: &[(Vec<u32>, SampleConfig, u64)],
    ) -> Result<Vec<Result<RowId>>> {
        let vocab = model.config().vocab_size;
        let mut rows: Vec<Result<Row>> = items
            .iter()
            .map(|(prompt, cfg, stream)| {
                let cfg = Self::checked(model, cfg)?;
                if let Some(&bad) = prompt.iter().find(|&&id| id as usize >= vocab) {
                    return Err(Error::Data(format!(
                        "the prompt holds {bad}, which is not a token id (vocabSize = {vocab})"
                    )));
                }
                Ok(Row {
                    state: model.zero_state(1)?,
                    logits: None,
                    rng: stream_rng(cfg.seed, *stream),
                    context: Context::new(cfg.controls.window),
                    generated: Vec::new(),
                    done: cfg.max_tokens == 0,
                    cfg,
                })
            })
            .collect();
        let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, row) in rows.iter().enumerate() {
            let len = items[i].0.len();
            if row.is_ok() && len > 0 {
                groups.entry(len).or_default().push(i);
            }
        }
        let mut groups: Vec<(usize, Vec<usize>)> = groups.into_iter().collect();
        groups.sort_unstable();
        for (len, members) in groups {
            let positions = PRIME_ROWS.min(len * members.len());
            if positions > self.checked.0 {
                crate::memory::ensure_fits(
                    crate::memory::infer_bytes(model.config(), positions, 1),
                    "feeding these prompts",
                    "the number of requests or the model's size",
                )?;
                self.checked.0 = positions;
            }
            let ids: Vec<u32> = members.iter().flat_map(|&i| items[i].0.clone()).collect();
            let boundary = items[members[0]].1.reset_at;
            ensure(
                members.iter().all(|&i| items[i].1.reset_at == boundary),
                || "the rows added together must share their boundaryId".into(),
            )?;
            let (logits, state) = model.prime(&ids, members.len(), None, PRIME_ROWS, boundary)?;
            let logits = logits
                .flatten_all()?
                .to_dtype(DType::F32)?
                .to_vec1::<f32>()?;
            for (j, &i) in members.iter().enumerate() {
                if let Ok(row) = &mut rows[i] {
                    row.state = State {
                        h: state
                            .h
                            .iter()
                            .map(|t| t.narrow(0, j, 1))
                            .collect::<candle_core::Result<_>>()?,
                        c: state
                            .c
                            .iter()
                            .map(|t| t.narrow(0, j, 1))
                            .collect::<candle_core::Result<_>>()?,
                    };
                    row.logits = Some(logits[j * vocab..(j + 1) * vocab].to_vec());
                    row.context.extend(&items[i].0);
                }
            }
        }
        rows.into_iter()
            .map(|row| match row {
                Ok(row) => {
                    let id = self.next_id;
                    self.next_id = self.next_id.checked_add(1).ok_or_else(|| {
                        Error::Data("this batch has made 2^32 rows: make a new one".into())
                    })?;
                    self.rows.insert(id, row);
                    Ok(Ok(id))
                }
                Err(e) => Ok(Err(e)),
            })
            .collect()
    }

    /// Runs `tokens` through `row` from its state.
    fn feed_row(&mut self, model: &Model, row: &mut Row, tokens: &[u32]) -> Result<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        let positions = PRIME_ROWS.min(tokens.len());
        if positions > self.checked.0 {
            crate::memory::ensure_fits(
                crate::memory::infer_bytes(model.config(), positions, 1),
                "feeding these tokens",
                "the model's size (hiddenSize, embeddingDim)",
            )?;
            self.checked.0 = positions;
        }
        let (logits, state) =
            model.prime(tokens, 1, Some(&row.state), PRIME_ROWS, row.cfg.reset_at)?;
        row.logits = Some(
            logits
                .flatten_all()?
                .to_dtype(DType::F32)?
                .to_vec1::<f32>()?,
        );
        row.state = state;
        row.context.extend(tokens);
        Ok(())
    }

    /// Removes a row; returns whether it existed.
    pub fn remove(&mut self, id: RowId) -> bool {
        self.rows.remove(&id).is_some()
    }

    /// Feeds `tokens` to row `id` after what it was fed or generated. Feeding `a` then `b` reaches
    /// the state of feeding `a ++ b` up to float rounding.
    pub fn feed(&mut self, model: &Model, id: RowId, tokens: &[u32]) -> Result<()> {
        let mut row = self
            .rows
            .remove(&id)
            .ok_or_else(|| Error::Data(format!("row {id} does not exist (removed?)")))?;
        let result = self.feed_row(model, &mut row, tokens);
        self.rows.insert(id, row);
        result
    }

    /// Replaces row `id`'s options; its generated tokens are forgotten (so `max_tokens`,
    /// `min_tokens` and stop sequences count from here). With `reseed`, its random stream
    /// restarts from `cfg.seed` and stream `reseed`; else it goes on where it was.
    pub fn set_options(
        &mut self,
        model: &Model,
        id: RowId,
        cfg: &SampleConfig,
        reseed: Option<u64>,
    ) -> Result<()> {
        let cfg = Self::checked(model, cfg)?;
        let row = self.row_mut(id)?;
        if let Some(stream) = reseed {
            row.rng = stream_rng(cfg.seed, stream);
        }
        if cfg.controls.window != row.context.cap() {
            let mut ctx = Context::new(cfg.controls.window);
            ctx.extend(row.context.tokens());
            row.context = ctx;
        }
        row.generated.clear();
        row.done = cfg.max_tokens == 0;
        row.cfg = cfg;
        Ok(())
    }

    /// A copy of row `id` (state, logits, options, context, random stream at its position) as a
    /// new row; with `reseed` its stream restarts from the row's seed and stream `reseed`.
    pub fn fork(&mut self, id: RowId, reseed: Option<u64>) -> Result<RowId> {
        let mut row = self.row(id)?.clone();
        if let Some(stream) = reseed {
            row.rng = stream_rng(row.cfg.seed, stream);
        }
        let new = self.next_id;
        self.next_id = self
            .next_id
            .checked_add(1)
            .ok_or_else(|| Error::Data("this batch has made 2^32 rows: make a new one".into()))?;
        self.rows.insert(new, row);
        Ok(new)
    }

    /// Whether row `id` has ended (`max_tokens` or a stop sequence since its options were set).
    pub fn done(&self, id: RowId) -> Result<bool> {
        Ok(self.row(id)?.done)
    }

    /// The `n` most likely next tokens of row `id` (see [`TopTokens`]); probabilities are computed
    /// in f64 over the whole vocabulary, so all `V` of them sum to 1 up to rounding.
    /// Errors: `Error::Data` when the row was never fed; `Error::Numeric` when its logits are not
    /// finite (see [`crate::sample::non_finite_logits`]).
    pub fn top(&self, id: RowId, n: usize) -> Result<TopTokens> {
        let logits = self.row(id)?.logits.as_ref().ok_or_else(|| {
            Error::Data("this row has no next-token distribution yet: feed it some text".into())
        })?;
        let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
        let w: Vec<f64> = logits.iter().map(|&l| (l as f64 - max).exp()).collect();
        let z: f64 = w.iter().sum();
        if !z.is_finite() || z <= 0.0 {
            return Err(crate::sample::non_finite_logits()); // a NaN logit (max skips it), or +inf
        }
        let mut idx: Vec<usize> = (0..logits.len()).collect();
        let order = |a: &usize, b: &usize| w[*b].total_cmp(&w[*a]).then(a.cmp(b));
        let n = n.min(idx.len());
        if n == 0 {
            return Ok(TopTokens {
                ids: vec![],
                probs: vec![],
            });
        }
        if n < idx.len() {
            idx.select_nth_unstable_by(n - 1, order);
            idx.truncate(n);
        }
        idx.sort_unstable_by(order);
        Ok(TopTokens {
            ids: idx.iter().map(|&i| i as u32).collect(),
            probs: idx.iter().map(|&i| w[i] / z).collect(),
        })
    }

    /// Samples up to `k` tokens for each row of `ids` (distinct), one token per live row per
    /// iteration, all live rows fed through the model together. Returns the new tokens of each
    /// row of `ids`, in order (empty for rows that had ended or were never fed).
    /// Errors: `Error::Data` for an unknown or repeated id; the first row's error of
    /// [`Sessions::step_each`] (`Error::Numeric` when its logits are not finite, see
    /// [`crate::sample::non_finite_logits`]; the tokens this call gave the rows are then not
    /// returned, though they stay in their rows).
    pub fn step(&mut self, model: &Model, ids: &[RowId], k: usize) -> Result<Vec<Vec<u32>>> {
        self.step_each(model, ids, k)?.into_iter().collect()
    }

    /// [`Sessions::step`] with each row's own outcome: a row whose draw fails (`Error::Numeric` for
    /// logits that are not finite, `Error::Data` when its bans and controls exclude every token)
    /// stops at that iteration and gets its error, while the other rows go on to `k` tokens as if
    /// it were not there (their tokens depend on their own rows only). The failed row keeps the
    /// tokens of its earlier iterations and its logits, so stepping it again fails again.
    /// Errors (for the whole call, which then returns no tokens): `Error::Data` for an unknown or
    /// repeated id; an error of the forward pass itself.
    pub fn step_each(
        &mut self,
        model: &Model,
        ids: &[RowId],
        k: usize,
    ) -> Result<Vec<Result<Vec<u32>>>> {
        let mut taken: Vec<(RowId, Row)> = Vec::with_capacity(ids.len());
        for &id in ids {
            match self.rows.remove(&id) {
                Some(row) => taken.push((id, row)),
                None => {
                    let repeated = taken.iter().any(|(t, _)| *t == id);
                    for (id, row) in taken {
                        self.rows.insert(id, row);
                    }
                    return Err(Error::Data(if repeated {
                        format!("row {id} is listed twice")
                    } else {
                        format!("row {id} does not exist (removed?)")
                    }));
                }
            }
        }
        let mut rows: Vec<&mut Row> = taken.iter_mut().map(|(_, r)| r).collect();
        let result = self.step_rows(model, &mut rows, k);
        for (id, row) in taken {
            self.rows.insert(id, row);
        }
        result
    }

    fn step_rows(
        &mut self,
        model: &Model,
        rows: &mut [&mut Row],
        k: usize,
    ) -> Result<Vec<Result<Vec<u32>>>> {
        let vocab = model.config().vocab_size;
        let mut fresh = vec![Vec::new(); rows.len()];
        // a row's error ends its part in this call
        let mut failed: Vec<Option<Error>> = (0..rows.len()).map(|_| None).collect();
        for _ in 0..k {
            let mut live: Vec<usize> = (0..rows.len())
                .filter(|&i| rows[i].live() && failed[i].is_none())
                .collect();
            if live.is_empty() {
                break;
            }
            if live.len() > self.checked.1 {
                // the logits and activations of one step, as `Model::logits` checks them
                crate::memory::ensure_fits(
                    crate::memory::infer_bytes(model.config(), live.len(), 3),
                    "stepping this many rows at once",
                    "the number of rows",
                )?;
                self.checked.1 = live.len();
            }
            // Sample every live row on the host (in parallel when there are many), each from its
            // own stream.
            let draw = |row: &mut Row| {
                let mut logits = row.logits.clone().unwrap_or_default();
                crate::sample::check_some_finite(&logits)?;
                if row.cfg.controls.active() {
                    row.cfg
                        .controls
                        .edits(row.context.tokens(), row.generated.len())
                        .apply(&mut logits);
                }
                ban_row(&mut logits, &row.cfg.banned_ids);
                sample_row(&logits, &row.cfg, row.rng.random::<f64>())
            };
            // the rows of `live`, in its order
            let mut drawn: Vec<&mut Row> = rows
                .iter_mut()
                .zip(&failed)
                .filter(|(r, f)| r.live() && f.is_none())
                .map(|(r, _)| &mut **r)
                .collect();
            let draws: Vec<Result<u32>> = if live.len() >= PARALLEL_ROWS {
                drawn.par_iter_mut().map(|r| draw(r)).collect()
            } else {
                drawn.iter_mut().map(|r| draw(r)).collect()
            };
            let mut picked = Vec::with_capacity(live.len());
            let mut kept = Vec::with_capacity(live.len());
            for (&i, d) in live.iter().zip(draws) {
                match d {
                    Ok(tok) => {
                        picked.push(tok);
                        kept.push(i);
                    }
                    Err(e) => failed[i] = Some(e),
                }
            }
            live = kept;
            if live.is_empty() {
                break;
            }
            // One forward call for all of them: their states side by side, then split again.
            let layers = model.config().num_layers;
            let cat = |pick: fn(&State) -> &Vec<Tensor>| -> Result<Vec<Tensor>> {
                (0..layers)
                    .map(|l| {
                        let parts: Vec<&Tensor> =
                            live.iter().map(|&i| &pick(&rows[i].state)[l]).collect();
                        Ok(Tensor::cat(&parts, 0)?)
                    })
                    .collect()
            };
            let state = State {
                h: cat(|s| &s.h)?,
                c: cat(|s| &s.c)?,
            };
            // a row that samples the record boundary goes on from the zero state, as in `generate`
            let boundary = rows[live[0]].cfg.reset_at;
            ensure(
                live.iter().all(|&i| rows[i].cfg.reset_at == boundary),
                || "the rows of one step must share their boundaryId".into(),
            )?;
            let (logits, next) = model.step_logits(&picked, &state, boundary)?;
            for (j, &i) in live.iter().enumerate() {
                let row = &mut *rows[i];
                row.state = State {
                    h: next
                        .h
                        .iter()
                        .map(|t| t.narrow(0, j, 1))
                        .collect::<candle_core::Result<_>>()?,
                    c: next
                        .c
                        .iter()
                        .map(|t| t.narrow(0, j, 1))
                        .collect::<candle_core::Result<_>>()?,
                };
                row.logits = Some(logits[j * vocab..(j + 1) * vocab].to_vec());
                row.push(picked[j]);
                fresh[i].push(picked[j]);
            }
        }
        ensure(fresh.len() == rows.len(), || "step lost rows".into())?;
        Ok(fresh
            .into_iter()
            .zip(failed)
            .map(|(tokens, e)| e.map_or(Ok(tokens), Err))
            .collect())
    }
}

//! Batched sampling: `num_samples` continuations of one prompt, advanced together one token per
//! forward call. The prompt is fed in chunks of at most [`PRIME_ROWS`] positions, carrying the
//! state, so that its memory is bounded whatever its length. Temperature, top-k and nucleus
//! (top-p, Holtzman et al. 2020) filtering; banned ids (`SampleConfig::banned_ids`) get -inf
//! logits before any of them, on the host and on a GPU alike.
//!
//! With `SampleConfig::reset_at` (the record boundary), a sequence whose input is that id, in the
//! prompt or sampled, goes on from the zero state, as training resets the state there.
//!
//! Seeds: every sample has its own random stream, derived from (seed, sample index), and takes
//! one draw from it per token. Sample i's text therefore depends on the seed and i only, not on
//! `num_samples` (sample 0 of three is the text of a run of one). On the host the stream of
//! sample i is ChaCha8 seeded with the seed, stream i.
//!
//! On a GPU, plain temperature sampling and greedy decoding stay on the device: the token of each
//! row is `argmax(logits / T + g)` with Gumbel noise `g = -ln(-ln u)` (the Gumbel-max trick, an
//! exact draw from softmax(logits / T)), so only the ids come back; `u` comes from Philox4x32-10
//! keyed by the seed with the sample index and the step in the counter
//! ([`RowUniforms`](crate::ops::sample::RowUniforms)), so each sample again has its own stream
//! and concurrent samplers do not disturb each other. Top-k and top-p filter there too (a CUDA
//! kernel); with lstmgen's CUDA kernels off (`LSTMGEN_CUDA_KERNELS=candle`) they copy the logits to
//! the host. The GPU's texts differ from the CPU's for the same seed (another generator and
//! draw), and a batch's float rounding on a GPU may differ with its size.

use crate::act::Act;
use crate::config::SampleConfig;
use crate::controls::{apply_to_tensor, Context, Edits};
use crate::error::{ensure, Result};
use crate::generation::{self, Fused, Group, Weights};
use crate::model::{Model, State};
use crate::ops::run;
use crate::ops::sample::{GumbelArgmax, RowUniforms, TopKTopP};
use candle_core::{DType, Tensor, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Most positions (steps times sequences) one forward call of priming takes: a prompt of any
/// length is fed in pieces of this many, so its activations stay a few MB.
pub const PRIME_ROWS: usize = 4096;

/// An in-progress batched sampling run: the carried state of `num_samples` sequences, the
/// next-token logits, each sequence's RNG and what was generated so far. Lets callers stream
/// tokens as they are produced and prime the prompt piece by piece.
pub struct Sampler {
    cfg: SampleConfig,
    /// State after the prompt (and everything fed or generated since), `[num_samples, H]` per layer.
    state: State,
    /// Next-token logits `[num_samples * V]`.
    logits: Vec<f32>,
    /// One RNG per sequence (ChaCha8, the seed, stream = the sequence's index).
    rngs: Vec<ChaCha8Rng>,
    /// Tokens sampled so far per live sequence (the step of the device's Philox counter).
    steps: u64,
    generated: Vec<Vec<u32>>,
    done: Vec<bool>,
    /// Tokens sampled at the last step but not yet fed through the model.
    pending: Option<Vec<u32>>,
    /// Next-token logits `[num_samples, V]` left on the GPU (see the module docs); when set,
    /// they supersede `logits`.
    device_logits: Option<Tensor>,
    /// `[V]` on the model's device: -inf at the banned ids, 0 elsewhere (device sampling only).
    ban_bias: Option<Tensor>,
    /// The last tokens of each sequence (prompt, fed and generated), for the generation controls.
    contexts: Vec<Context>,
    /// The fused CPU generation path (`generation.rs`), where it applies: it then holds the
    /// carried state (and `state` and `pending` are unused).
    fused: Option<Fused>,
}

/// Draws the next token of a live sequence from its logits `row` `[V]`, which the generation
/// controls (from its `context` and `generated` count) and the banned ids edit in place, with one
/// draw from its `rng`. Errors: `Error::Numeric` for non-finite logits (checked by
/// [`check_some_finite`] before the controls and bans, then by [`sample_row`]); `Error::Data` when
/// the bans and controls exclude every token.
fn draw(
    row: &mut [f32],
    cfg: &SampleConfig,
    context: &Context,
    generated: usize,
    rng: &mut ChaCha8Rng,
) -> Result<u32> {
    check_some_finite(row)?;
    if cfg.controls.active() {
        cfg.controls.edits(context.tokens(), generated).apply(row);
    }
    ban_row(row, &cfg.banned_ids);
    sample_row(row, cfg, rng.random::<f64>())
}

/// Appends the sampled `tok` to a sequence's `generated` tokens and `context`; returns whether the
/// sequence ends with it (`max_tokens` reached or a stop sequence completed).
fn record(cfg: &SampleConfig, generated: &mut Vec<u32>, context: &mut Context, tok: u32) -> bool {
    generated.push(tok);
    context.extend(&[tok]);
    generated.len() >= cfg.max_tokens
        || cfg
            .stop_sequences
            .iter()
            .any(|stop| generated.ends_with(stop))
}

/// One sequence's logits row, random stream, generated tokens, end flag, context, tokens of this
/// call, and the token it feeds next (the items [`Part::run`] goes over).
type Seq<'a> = (
    &'a mut [f32],
    &'a mut ChaCha8Rng,
    &'a mut Vec<u32>,
    &'a mut bool,
    &'a mut Context,
    &'a mut Vec<u32>,
    &'a mut u32,
);

/// One row group's share of a [`Sampler`]'s sequences for the fused path: its slices of the
/// per-sequence vectors, and its state.
struct Part<'a> {
    group: &'a mut Group,
    logits: &'a mut [f32],
    rngs: &'a mut [ChaCha8Rng],
    generated: &'a mut [Vec<u32>],
    done: &'a mut [bool],
    contexts: &'a mut [Context],
    fresh: &'a mut [Vec<u32>],
}

impl Part<'_> {
    /// Up to `k` iterations of: run the pending tokens through the model, then sample one token
    /// per live sequence (as [`Sampler::next`] does for the whole batch); stops early once every
    /// sequence of the group has ended. Returns the iterations run.
    fn run(&mut self, w: &Weights, cfg: &SampleConfig, vocab: usize, k: usize) -> Result<u64> {
        let mut iters = 0;
        for _ in 0..k {
            if self.done.iter().all(|&d| d) {
                break;
            }
            if self.group.pending {
                self.group.step(w, cfg.reset_at, self.logits);
            }
            // one sequence: draw its token, record it, and set it to be fed next
            let one = |(row, rng, out, done, ctx, fresh, tok): Seq| -> Result<()> {
                *tok = 0; // an ended sequence is fed id 0, as in the per-step path
                if !*done {
                    let t = draw(row, cfg, ctx, out.len(), rng)?;
                    *done = record(cfg, out, ctx, t);
                    fresh.push(t);
                    *tok = t;
                }
                Ok(())
            };
            if self.group.wide {
                (
                    self.logits.par_chunks_mut(vocab),
                    self.rngs.par_iter_mut(),
                    self.generated.par_iter_mut(),
                    self.done.par_iter_mut(),
                    self.contexts.par_iter_mut(),
                    self.fresh.par_iter_mut(),
                    self.group.tokens.par_iter_mut(),
                )
                    .into_par_iter()
                    .try_for_each(one)?;
            } else {
                self.logits
                    .chunks_mut(vocab)
                    .zip(self.rngs.iter_mut())
                    .zip(self.generated.iter_mut())
                    .zip(self.done.iter_mut())
                    .zip(self.contexts.iter_mut())
                    .zip(self.fresh.iter_mut())
                    .zip(self.group.tokens.iter_mut())
                    .try_for_each(|((((((a, b), c), d), e), f), g)| one((a, b, c, d, e, f, g)))?;
            }
            self.group.pending = true;
            iters += 1;
        }
        Ok(iters)
    }
}

/// Whether this run samples on the model's device: any GPU run, except one with a top-k/top-p
/// filter when lstmgen's CUDA kernels are off (`LSTMGEN_CUDA_KERNELS=candle`).
fn samples_on_device(model: &Model, cfg: &SampleConfig) -> bool {
    !model.device().is_cpu() && (!cfg.filters() || device_filter_available())
}

#[cfg(feature = "cuda")]
fn device_filter_available() -> bool {
    crate::cuda::enabled()
}

#[cfg(not(feature = "cuda"))]
fn device_filter_available() -> bool {
    false
}

/// One token per row of `logits` `[n, V]` on their device (banned ids already at -inf), the
/// Gumbel noise of row r from sample r's stream at `step`; only the `n` ids come to the host.
/// Errors: `Error::Numeric` ([`non_finite_logits`]) when the logit of a token drawn is NaN or
/// infinite, as it is for a row that is all NaN (a row with some NaN logits may draw a finite one):
/// the drawn logits are gathered and checked on the device, so still only the ids come back.
fn sample_on_device(logits: &Tensor, cfg: &SampleConfig, step: u64) -> Result<Vec<u32>> {
    let ids = if cfg.temperature == 0.0 {
        logits.argmax(D::Minus1)?
    } else {
        let filtered;
        let logits = if cfg.filters() {
            let (top_k, top_p, temperature) = (cfg.top_k, cfg.top_p, cfg.temperature);
            filtered = run(&TopKTopP {
                logits,
                top_k,
                top_p,
                temperature,
            })?;
            &filtered
        } else {
            logits
        };
        let (n, vocab) = logits.dims2()?;
        let u = run(&RowUniforms {
            device: logits.device(),
            n,
            vocab,
            seed: cfg.seed,
            first_stream: 0,
            step,
        })?;
        run(&GumbelArgmax {
            logits,
            u: &u,
            t: cfg.temperature,
        })?
    };
    let ids = ids.to_dtype(DType::U32)?;
    // a drawn logit that is not finite (|l| < inf fails for NaN and inf) turns its id into u32::MAX
    let drawn = logits.gather(&ids.unsqueeze(1)?, 1)?.flatten_all()?;
    let finite = drawn.to_dtype(DType::F32)?.abs()?.lt(f64::INFINITY)?;
    let bad = Tensor::full(u32::MAX, ids.shape(), ids.device())?;
    let ids = finite.where_cond(&ids, &bad)?.to_vec1::<u32>()?;
    if ids.contains(&u32::MAX) {
        return Err(non_finite_logits());
    }
    Ok(ids)
}

/// Sets the banned ids of every row of `logits` (rows of `vocab`) to -inf.
fn ban(logits: &mut [f32], vocab: usize, banned: &[u32]) {
    if banned.is_empty() {
        return;
    }
    for row in logits.chunks_mut(vocab) {
        ban_row(row, banned);
    }
}

/// Sets the banned ids of one row of logits `[V]` to -inf.
pub(crate) fn ban_row(row: &mut [f32], banned: &[u32]) {
    for &id in banned {
        row[id as usize] = f32::NEG_INFINITY;
    }
}

/// `banned` sorted and deduplicated. Errors: `Error::Data` for an id >= `vocab`, or when every id
/// is banned.
pub(crate) fn check_banned(banned: &[u32], vocab: usize) -> Result<Vec<u32>> {
    if let Some(&bad) = banned.iter().find(|&&id| id as usize >= vocab) {
        return Err(crate::Error::Data(format!(
            "bannedIds holds {bad}, which is not a token id (vocabSize = {vocab})"
        )));
    }
    let mut banned = banned.to_vec();
    banned.sort_unstable();
    banned.dedup();
    ensure(banned.len() < vocab, || {
        format!("bannedIds bans all {vocab} token ids: nothing is left to sample")
    })?;
    Ok(banned)
}

impl Sampler {
    /// Feeds `prompt` (at least one token; in pieces of [`PRIME_ROWS`]) and prepares
    /// `num_samples` sequences.
    pub fn new(model: &Model, prompt: &[u32], cfg: &SampleConfig) -> Result<Self> {
        Self::with_prime_rows(model, prompt, cfg, PRIME_ROWS)
    }

    /// [`Sampler::new`] feeding at most `rows` positions per forward call (tests: any value
    /// gives the same state).
    pub fn with_prime_rows(
        model: &Model,
        prompt: &[u32],
        cfg: &SampleConfig,
        rows: usize,
    ) -> Result<Self> {
        cfg.validate()?;
        ensure(!prompt.is_empty(), || {
            "the prompt must contain at least one token".into()
        })?;
        let c = model.config();
        let vocab = c.vocab_size;
        cfg.controls.validate(vocab)?;
        let banned = check_banned(&cfg.banned_ids, vocab)?;
        if let Some(id) = cfg.reset_at.filter(|&id| id as usize >= vocab) {
            return Err(crate::Error::Data(format!(
                "boundaryId {id} is not a token id (vocabSize = {vocab})"
            )));
        }
        let n = cfg.num_samples;
        let per_sample = (3 * c.vocab_size + 10 * c.num_layers * c.hidden_size) as u64 * 4;
        crate::memory::ensure_fits(
            per_sample.saturating_mul(n as u64),
            "sampling this many sequences at once",
            "numSamples",
        )?;
        crate::memory::ensure_fits(
            crate::memory::infer_bytes(c, rows.min(prompt.len()), 1),
            "feeding the prompt",
            "the model's size (hiddenSize, embeddingDim)",
        )?;
        let (prompt_logits, state) = model.prime(prompt, 1, None, rows, cfg.reset_at)?;
        let last = prompt_logits
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?;
        let state = State {
            h: state
                .h
                .iter()
                .map(|h| h.repeat((n, 1)))
                .collect::<candle_core::Result<_>>()?,
            c: state
                .c
                .iter()
                .map(|c| c.repeat((n, 1)))
                .collect::<candle_core::Result<_>>()?,
        };
        let ban_bias = if samples_on_device(model, cfg) && !banned.is_empty() {
            let mut bias = vec![0f32; vocab];
            ban(&mut bias, vocab, &banned);
            let bias = Tensor::from_vec(bias, vocab, model.device())?;
            Some(bias.to_dtype(model.dtype())?)
        } else {
            None
        };
        let fused = if generation::applies(model) {
            Some(Fused::new(model, &state)?)
        } else {
            None
        };
        let mut cfg = cfg.clone();
        cfg.banned_ids = banned;
        let mut context = Context::new(cfg.controls.window);
        context.extend(prompt);
        let rngs = (0..n)
            .map(|s| {
                let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
                rng.set_stream(s as u64);
                rng
            })
            .collect();
        Ok(Self {
            state,
            device_logits: None,
            logits: last.repeat(n),
            rngs,
            steps: 0,
            generated: vec![Vec::new(); n],
            done: vec![cfg.max_tokens == 0; n],
            pending: None,
            ban_bias,
            contexts: vec![context; n],
            fused,
            cfg,
        })
    }

    /// Feeds more prompt tokens (the same for every sequence) before or between sampling, in
    /// pieces of [`PRIME_ROWS`] positions. `new(a ++ b)` and `new(a)` then `feed(b)` reach the
    /// same state up to float rounding.
    pub fn feed(&mut self, model: &Model, tokens: &[u32]) -> Result<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        self.flush(model)?;
        let n = self.cfg.num_samples;
        let batch: Vec<u32> = (0..n).flat_map(|_| tokens.iter().copied()).collect();
        let carried = match &self.fused {
            Some(f) => f.state()?,
            None => self.state.clone(),
        };
        let (logits, state) =
            model.prime(&batch, n, Some(&carried), PRIME_ROWS, self.cfg.reset_at)?;
        self.logits = logits
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?;
        self.device_logits = None;
        match &mut self.fused {
            Some(f) => f.load(&state)?,
            None => self.state = state,
        }
        for ctx in &mut self.contexts {
            ctx.extend(tokens);
        }
        Ok(())
    }

    /// Runs the last sampled tokens through the model so `logits` predict the next position.
    fn flush(&mut self, model: &Model) -> Result<()> {
        if let Some(f) = &mut self.fused {
            if !f.weights.current(model) {
                f.weights = model.generation_weights()?;
            }
            let vocab = model.config().vocab_size;
            for g in f.groups.iter_mut().filter(|g| g.pending) {
                let logits = &mut self.logits[g.rows.start * vocab..g.rows.end * vocab];
                g.step(&f.weights, self.cfg.reset_at, logits);
            }
            return Ok(());
        }
        if let Some(next) = self.pending.take() {
            if samples_on_device(model, &self.cfg) {
                let (l, st) = model.next_logits(&next, Some(&self.state), self.cfg.reset_at)?;
                self.device_logits = Some(match &self.ban_bias {
                    Some(b) => l.broadcast_add(b)?,
                    None => l,
                });
                self.state = st;
                return Ok(());
            }
            // memory of n sequences was checked once, in `new`
            let (l, st) = model.step_logits(&next, &self.state, self.cfg.reset_at)?;
            self.logits = l;
            self.state = st;
        }
        Ok(())
    }

    /// The generation controls' edits of every sequence (none for ended ones).
    fn edits(&self) -> Vec<Edits> {
        (0..self.cfg.num_samples)
            .map(|s| {
                if self.done[s] {
                    Edits::default()
                } else {
                    self.cfg
                        .controls
                        .edits(self.contexts[s].tokens(), self.generated[s].len())
                }
            })
            .collect()
    }

    /// One token per live sequence from the host logits, each drawing from its own RNG; the rows
    /// are sampled in parallel. Errors: `Error::Numeric` for a row of non-finite logits (checked
    /// by [`check_some_finite`] before the controls and bans, then by [`sample_row`]).
    fn sample_on_host(&mut self, vocab: usize) -> Result<Vec<Option<u32>>> {
        let (cfg, done, contexts, generated) =
            (&self.cfg, &self.done, &self.contexts, &self.generated);
        self.logits
            .par_chunks_mut(vocab)
            .zip(self.rngs.par_iter_mut())
            .enumerate()
            .map(|(s, (row, rng))| {
                (!done[s])
                    .then(|| draw(row, cfg, &contexts[s], generated[s].len(), rng))
                    .transpose()
            })
            .collect()
    }

    /// Whether every sequence has ended (stop sequence or `max_tokens`).
    pub fn finished(&self) -> bool {
        self.done.iter().all(|&d| d)
    }

    /// Samples up to `k` more tokens per sequence; returns the new ids of each sequence (empty
    /// for sequences that had already ended).
    pub fn next(&mut self, model: &Model, k: usize) -> Result<Vec<Vec<u32>>> {
        if self.fused.is_some() {
            return self.next_fused(model, k);
        }
        let n = self.cfg.num_samples;
        let vocab = model.config().vocab_size;
        let mut fresh = vec![Vec::new(); n];
        for _ in 0..k {
            if self.finished() {
                break;
            }
            self.flush(model)?;
            let picked: Vec<Option<u32>> = match self.device_logits.take() {
                Some(l) => {
                    let l = if self.cfg.controls.active() {
                        apply_to_tensor(&l, &self.edits())?
                    } else {
                        l
                    };
                    let ids = sample_on_device(&l, &self.cfg, self.steps)?;
                    (0..n).map(|s| (!self.done[s]).then(|| ids[s])).collect()
                }
                None => self.sample_on_host(vocab)?,
            };
            self.steps += 1;
            let mut next = vec![0u32; n];
            for (s, tok) in picked.into_iter().enumerate() {
                let Some(tok) = tok else { continue };
                self.done[s] = record(
                    &self.cfg,
                    &mut self.generated[s],
                    &mut self.contexts[s],
                    tok,
                );
                fresh[s].push(tok);
                next[s] = tok;
            }
            self.pending = Some(next);
        }
        Ok(fresh)
    }

    /// [`Sampler::next`] on the fused path: each row group runs its own loop of sampling and
    /// model steps on a thread of its own, with no synchronisation between the groups (a
    /// sequence's tokens depend on its own logits and random stream only). A group whose
    /// sequences have all ended stops there; the tokens are those of the per-step path.
    fn next_fused(&mut self, model: &Model, k: usize) -> Result<Vec<Vec<u32>>> {
        let n = self.cfg.num_samples;
        let vocab = model.config().vocab_size;
        let mut fresh = vec![Vec::new(); n];
        let Some(fused) = self.fused.as_mut() else {
            return Ok(fresh);
        };
        if !fused.weights.current(model) {
            fused.weights = model.generation_weights()?;
        }
        let (mut logits, mut rngs) = (self.logits.as_mut_slice(), self.rngs.as_mut_slice());
        let (mut generated, mut done) = (self.generated.as_mut_slice(), self.done.as_mut_slice());
        let (mut contexts, mut out) = (self.contexts.as_mut_slice(), fresh.as_mut_slice());
        let mut parts = Vec::with_capacity(fused.groups.len());
        for group in &mut fused.groups {
            let len = group.rows.len();
            let l;
            (l, logits) = std::mem::take(&mut logits).split_at_mut(len * vocab);
            let r;
            (r, rngs) = std::mem::take(&mut rngs).split_at_mut(len);
            let g;
            (g, generated) = std::mem::take(&mut generated).split_at_mut(len);
            let d;
            (d, done) = std::mem::take(&mut done).split_at_mut(len);
            let c;
            (c, contexts) = std::mem::take(&mut contexts).split_at_mut(len);
            let f;
            (f, out) = std::mem::take(&mut out).split_at_mut(len);
            parts.push(Part {
                group,
                logits: l,
                rngs: r,
                generated: g,
                done: d,
                contexts: c,
                fresh: f,
            });
        }
        let (w, cfg) = (&fused.weights, &self.cfg);
        let iters: Vec<u64> = if parts.len() == 1 {
            vec![parts[0].run(w, cfg, vocab, k)?]
        } else {
            parts
                .par_iter_mut()
                .map(|p| p.run(w, cfg, vocab, k))
                .collect::<Result<_>>()?
        };
        self.steps += iters.into_iter().max().unwrap_or(0);
        Ok(fresh)
    }

    /// This sampler moved to the per-step path (tests compare the two paths): call it before
    /// any token is sampled.
    #[cfg(test)]
    pub(crate) fn on_steps_path(mut self) -> Result<Self> {
        if let Some(f) = self.fused.take() {
            self.state = f.state()?;
        }
        Ok(self)
    }

    /// This sampler with its sequences in one wide group (`generation.rs`) whatever the model's
    /// size (tests): call it before any token is sampled.
    #[cfg(test)]
    pub(crate) fn wide(mut self, model: &Model) -> Result<Self> {
        if self.fused.is_some() {
            self.fused = Some(Fused::with_wide_bytes(model, &self.state, 0)?);
        }
        Ok(self)
    }

    /// Whether this sampler runs on the fused path (tests).
    #[cfg(test)]
    pub(crate) fn is_fused(&self) -> bool {
        self.fused.is_some()
    }

    /// The next-token logits `[num_samples, V]` (tests; rows of ended sequences may be stale).
    #[cfg(test)]
    pub(crate) fn logits(&mut self, model: &Model) -> Result<&[f32]> {
        self.flush(model)?;
        Ok(&self.logits)
    }

    /// The carried state (tests).
    #[doc(hidden)]
    pub fn state(&self) -> Result<State> {
        match &self.fused {
            Some(f) => f.state(),
            None => Ok(self.state.clone()),
        }
    }
}

/// Samples continuations of `prompt` (at least one token). Returns only the generated ids, one
/// vector per sample; a sample ends after `max_tokens` or right after a stop sequence.
pub fn generate(model: &Model, prompt: &[u32], cfg: &SampleConfig) -> Result<Vec<Vec<u32>>> {
    let mut sampler = Sampler::new(model, prompt, cfg)?;
    sampler.next(model, cfg.max_tokens)?;
    Ok(sampler.generated)
}

/// The error of next-token logits that are NaN or infinite: the model's weights, finite as they are, make its
/// outputs overflow, so no token can be drawn (a blank or constant text would be garbage).
pub(crate) fn non_finite_logits() -> crate::Error {
    crate::Error::Numeric(
        "the model's outputs (its next-token logits) are not finite numbers: its weights have diverged or are too \
         large, so nothing can be sampled from it; retrain it with a lower learning rate (lr) and gradient clipping \
         (clipNorm)"
            .into(),
    )
}

/// Checks a row of a model's next-token logits `[V]`, before any ban or control masks it: at least
/// one logit must be above -inf. A row that is all -inf (or NaN) is a model whose outputs
/// overflowed, and would otherwise draw an arbitrary id. The scan stops at the first logit above
/// -inf, so a sound row costs one comparison; NaN and +inf in a row that passes are caught by
/// [`sample_row`] (and on a device by [`sample_on_device`]). Every path that samples from model
/// logits runs this on each row of each step.
/// Errors: `Error::Numeric` ([`non_finite_logits`]).
pub(crate) fn check_some_finite(row: &[f32]) -> Result<()> {
    if row.iter().any(|&l| l > f32::NEG_INFINITY) {
        Ok(())
    } else {
        Err(non_finite_logits())
    }
}

/// The error of a row whose every logit is -inf after the banned ids and generation controls (its
/// model logits were checked by [`check_some_finite`]): nothing is left to draw.
fn nothing_left() -> crate::Error {
    crate::Error::Data(
        "the banned ids and generation controls (noRepeatNgram, minTokens) exclude every token at this step, so \
         nothing can be sampled: ban fewer ids or lower noRepeatNgram"
            .into(),
    )
}

/// Draws one token id from a row of logits `[V]` under the temperature / top-k / top-p rules,
/// using `u`, a uniform draw in [0, 1): the token where the cumulative probability passes `u`.
/// Probabilities are `exp((l - max) / T)` (f32, vectorized) summed in f64.
/// Errors: `Error::Numeric` ([`non_finite_logits`]) when a logit not masked to -inf is NaN or +inf,
/// found without another pass over the row: at temperature 0 by the argmax's scan, else because the
/// sum of the probabilities is then not finite; `Error::Data` ([`nothing_left`]) when every logit
/// is -inf (every token masked: the callers check the model's own logits first).
pub(crate) fn sample_row(logits: &[f32], cfg: &SampleConfig, u: f64) -> Result<u32> {
    let argmax = || {
        let mut best = 0;
        let mut nan = false;
        for (i, &l) in logits.iter().enumerate() {
            nan |= l.is_nan();
            if l > logits[best] {
                best = i;
            }
        }
        if nan || logits[best] == f32::INFINITY {
            return Err(non_finite_logits());
        }
        if logits[best] == f32::NEG_INFINITY {
            return Err(nothing_left());
        }
        Ok(best as u32)
    };
    if cfg.temperature == 0.0 {
        return argmax();
    }
    // top_k >= V keeps everything: take the unfiltered path, so the seed gives the same text as topK 0
    let filtered = (cfg.top_k > 0 && cfg.top_k < logits.len()) || cfg.top_p < 1.0;
    let mut idx: Vec<usize> = Vec::new();
    if filtered {
        // Descending logit, then ascending id: a total order, so the kept set is well defined.
        let order = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
        idx = (0..logits.len()).collect();
        if cfg.top_k > 0 && cfg.top_k < idx.len() {
            idx.select_nth_unstable_by(cfg.top_k - 1, order); // O(V): the k best first
            idx.truncate(cfg.top_k);
        }
        idx.sort_unstable_by(order);
    }
    let at = |k: usize| if filtered { idx[k] } else { k };
    let len = if filtered { idx.len() } else { logits.len() };
    let mut probs: Vec<f32> = if filtered {
        idx.iter().map(|&i| logits[i]).collect()
    } else {
        logits.to_vec()
    };
    let max = probs
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    let inv_t = (1.0 / cfg.temperature) as f32;
    probs.iter_mut().for_each(|p| *p = (*p - max) * inv_t);
    f32::exp_in_place(&mut probs);
    // exp saturates at exp(-87): a -inf logit (a banned id) must have no mass at all.
    for (k, p) in probs.iter_mut().enumerate() {
        if logits[at(k)] == f32::NEG_INFINITY {
            *p = 0.0;
        }
    }
    let mut total: f64 = probs.chunks(BLOCK).map(block_sum).sum();
    if !total.is_finite() {
        return Err(non_finite_logits()); // a NaN logit, or +inf (inf - inf is NaN)
    }
    if total <= 0.0 {
        return Err(nothing_left()); // every token is masked
    }
    let mut keep = len;
    if cfg.top_p < 1.0 {
        // Keep the smallest prefix of the sorted tokens whose probability mass reaches top_p.
        let mut acc = 0.0;
        for (k, &p) in probs.iter().enumerate() {
            acc += p as f64 / total;
            if acc >= cfg.top_p {
                keep = k + 1;
                break;
            }
        }
        total = probs[..keep].chunks(BLOCK).map(block_sum).sum();
    }
    // Find where the cumulative mass passes u * total: whole blocks first, then within one.
    let mut r = u * total;
    let mut base = 0;
    for block in probs[..keep].chunks(BLOCK) {
        let s = block_sum(block);
        if r < s {
            let mut last = None;
            for (k, &p) in block.iter().enumerate() {
                r -= p as f64;
                if r < 0.0 {
                    return Ok(at(base + k) as u32);
                }
                if p > 0.0 {
                    last = Some(k);
                }
            }
            // rounding left r just above the block's sum: take its last token with mass
            if let Some(k) = last {
                return Ok(at(base + k) as u32);
            }
        }
        r -= s;
        base += block.len();
    }
    // r passed the total through rounding: the last token with mass
    (0..keep)
        .rev()
        .find(|&k| probs[k] > 0.0)
        .map_or_else(argmax, |k| Ok(at(k) as u32))
}

/// Probabilities per block of the cumulative search in [`sample_row`].
const BLOCK: usize = 64;

/// Sum of a block of probabilities in f64 (vectorized f32 partial sums of 8).
fn block_sum(b: &[f32]) -> f64 {
    let mut acc = [0f32; 8];
    let chunks = b.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    acc.iter().map(|&x| x as f64).sum::<f64>() + tail as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(temperature: f64, top_k: usize, top_p: f64) -> SampleConfig {
        SampleConfig {
            num_samples: 1,
            max_tokens: 1,
            temperature,
            top_k,
            top_p,
            seed: 0,
            stop_sequences: vec![],
            banned_ids: vec![],
            reset_at: None,
            controls: Default::default(),
        }
    }

    /// Frequencies of `sample_row` over evenly spaced draws u = (i + 0.5) / N equal the softmax
    /// probabilities (at temperature T, after top-k / top-p filtering) within 1/N.
    #[test]
    fn draws_follow_the_filtered_softmax() {
        let logits = [2.0f32, -1.0, 0.5, 3.0, 0.0, 1.0];
        let softmax = |t: f64, keep: &[usize]| -> Vec<f64> {
            let w: Vec<f64> = (0..logits.len())
                .map(|i| {
                    if keep.contains(&i) {
                        (logits[i] as f64 / t).exp()
                    } else {
                        0.0
                    }
                })
                .collect();
            let s: f64 = w.iter().sum();
            w.iter().map(|x| x / s).collect()
        };
        let all = [0, 1, 2, 3, 4, 5];
        // sorted by logit: 3, 0, 5, 2, 4, 1
        let cases = [
            (cfg(1.0, 0, 1.0), softmax(1.0, &all)),
            (cfg(0.5, 0, 1.0), softmax(0.5, &all)),
            (cfg(1.0, 2, 1.0), softmax(1.0, &[3, 0])),
            // top-p 0.8 at T=1: p(3)=0.61, p(0)=0.22 -> the first two reach 0.8
            (cfg(1.0, 0, 0.8), softmax(1.0, &[3, 0])),
        ];
        const N: usize = 20_000;
        for (c, want) in cases {
            let mut counts = [0usize; 6];
            for i in 0..N {
                counts[sample_row(&logits, &c, (i as f64 + 0.5) / N as f64).unwrap() as usize] += 1;
            }
            for k in 0..6 {
                let got = counts[k] as f64 / N as f64;
                assert!(
                    (got - want[k]).abs() <= 1.0 / N as f64 + 1e-6,
                    "{c:?}: token {k}: {got} vs {}",
                    want[k]
                );
            }
        }
        assert_eq!(sample_row(&logits, &cfg(0.0, 0, 1.0), 0.99).unwrap(), 3);
    }

    /// The device path's Gumbel-max draws (run here on the CPU with seeded uniforms) follow
    /// softmax(logits / T): every token's frequency within 4.5 standard errors.
    #[test]
    fn gumbel_argmax_draws_follow_the_softmax() {
        use candle_core::Device;
        let logits = [2.0f32, -1.0, 0.5, 3.0, 0.0, 1.0];
        const N: usize = 60_000;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for t in [1.0f64, 0.5, 2.0] {
            let l = Tensor::from_vec(logits.repeat(N), (N, 6), &Device::Cpu).unwrap();
            let u: Vec<f32> = (0..N * 6)
                .map(|_| rng.random::<f32>().max(f32::EPSILON))
                .collect();
            let u = Tensor::from_vec(u, (N, 6), &Device::Cpu).unwrap();
            let ids = run(&GumbelArgmax {
                logits: &l,
                u: &u,
                t,
            })
            .unwrap()
            .to_vec1::<u32>()
            .unwrap();
            let w: Vec<f64> = logits.iter().map(|&x| (x as f64 / t).exp()).collect();
            let z: f64 = w.iter().sum();
            for (k, wk) in w.iter().enumerate() {
                let p = wk / z;
                let got = ids.iter().filter(|&&i| i as usize == k).count() as f64 / N as f64;
                let se = (p * (1.0 - p) / N as f64).sqrt();
                assert!(
                    (got - p).abs() <= 4.5 * se + 1e-9,
                    "T={t} token {k}: {got} vs {p}"
                );
            }
        }
    }

    /// A uniform of exactly 1 (which cuRAND can return) adds a large finite noise, not +inf:
    /// a token 20 nats ahead still wins against it.
    #[test]
    fn gumbel_argmax_survives_a_uniform_of_one() {
        use candle_core::Device;
        let l = Tensor::new(&[[0.0f32, 20.0]], &Device::Cpu).unwrap();
        let u = Tensor::new(&[[1.0f32, 0.5]], &Device::Cpu).unwrap();
        let ids = run(&GumbelArgmax {
            logits: &l,
            u: &u,
            t: 1.0,
        })
        .unwrap()
        .to_vec1::<u32>()
        .unwrap();
        assert_eq!(ids, vec![1]);
    }

    /// A top-k of at least the vocabulary size filters nothing and draws exactly what no filter draws.
    #[test]
    fn top_k_of_the_whole_vocabulary_is_no_filter() {
        let logits = [0.3f32, -1.2, 2.0, 0.0, 1.1];
        for i in 0..200 {
            let u = (i as f64 + 0.5) / 200.0;
            let plain = sample_row(&logits, &cfg(0.9, 0, 1.0), u).unwrap();
            assert_eq!(sample_row(&logits, &cfg(0.9, 5, 1.0), u).unwrap(), plain);
            assert_eq!(sample_row(&logits, &cfg(0.9, 1000, 1.0), u).unwrap(), plain);
        }
    }
    /// A row with a NaN or +inf logit is a Numeric error under every rule (greedy, plain, top-k,
    /// top-p), never a token; -inf logits (masked ids) are not, and an all-masked row is a Data
    /// error, never an arbitrary id.
    #[test]
    fn non_finite_logits_are_a_numeric_error() {
        let rules = [
            cfg(0.0, 0, 1.0),
            cfg(1.0, 0, 1.0),
            cfg(0.7, 2, 1.0),
            cfg(1.0, 0, 0.9),
        ];
        for bad in [
            vec![f32::NAN; 4],
            vec![0.5, f32::NAN, 1.0, -2.0],
            vec![0.5, f32::INFINITY, 1.0, -2.0],
            vec![f32::INFINITY; 4],
        ] {
            for c in &rules {
                let e = sample_row(&bad, c, 0.5).unwrap_err();
                assert_eq!(e.code(), "E_NUMERIC", "{bad:?} {c:?}");
                assert!(e.to_string().contains("not finite"), "{e}");
            }
        }
        let masked = [f32::NEG_INFINITY, 1.0, f32::NEG_INFINITY, 0.0];
        for c in &rules {
            assert!(matches!(sample_row(&masked, c, 0.5), Ok(1 | 3)), "{c:?}");
            let e = sample_row(&[f32::NEG_INFINITY; 3], c, 0.5).unwrap_err();
            assert_eq!(e.code(), "E_DATA", "{c:?}");
            assert!(e.to_string().contains("exclude every token"), "{e}");
        }
    }

    /// Model logits that are all -inf (or NaN) fail the check every sampling path runs before its
    /// masks; one logit above -inf passes it, wherever it is.
    #[test]
    fn logits_without_a_finite_value_fail_the_check() {
        for bad in [
            vec![f32::NEG_INFINITY; 5],
            vec![f32::NAN; 3],
            vec![f32::NEG_INFINITY, f32::NAN],
        ] {
            let e = check_some_finite(&bad).unwrap_err();
            assert_eq!(e.code(), "E_NUMERIC", "{bad:?}");
        }
        let mut row = vec![f32::NEG_INFINITY; 5];
        for i in 0..5 {
            row[i] = -3e38;
            assert!(check_some_finite(&row).is_ok());
            row[i] = f32::NEG_INFINITY;
        }
    }

    /// The device path (here its candle ops on the CPU) refuses a row of NaN or infinite logits as
    /// the host path does, greedy or sampled, and draws finite rows as before.
    #[test]
    fn device_sampling_refuses_non_finite_logits() {
        use candle_core::Device;
        for t in [0.0, 1.0] {
            let ok = Tensor::new(&[[0.0f32, 9.0, 1.0], [5.0, 0.0, 1.0]], &Device::Cpu).unwrap();
            assert_eq!(sample_on_device(&ok, &cfg(t, 0, 1.0), 0).unwrap().len(), 2);
            for v in [f32::NAN, f32::INFINITY] {
                let bad = Tensor::new(&[[0.0f32, 9.0, 1.0], [v, v, v]], &Device::Cpu).unwrap();
                let e = sample_on_device(&bad, &cfg(t, 0, 1.0), 0).unwrap_err();
                assert_eq!(e.code(), "E_NUMERIC", "T={t} {v}");
            }
        }
    }
}

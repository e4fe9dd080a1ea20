//! The fused CPU generation step: for a group of batch rows and one token per row, the embedding
//! row, every layer (input projection, recurrent product, bias and cell in one pass, the projection
//! `W_hr` where the model has one) and the decoder, on host buffers allocated once per sampling run
//! and weights packed once (cached in the model until its next optimizer step), with no candle
//! tensor and no allocation per step. Two ways to keep the cores busy ([`Fused::new`]): small
//! models run as one group of rows per thread, and [`crate::sample::Sampler`] runs each group's
//! whole loop (sampling, then this step) on a thread of its own, so a step costs no thread
//! wake-up; models whose packed weights exceed [`WIDE_BYTES`] run as one wide group whose products
//! are split by output columns between the threads (each streams its share of the weights) and
//! whose cells and draws are split by rows.
//!
//! Equations: those of `lstm.rs` (PyTorch `nn.LSTM`, gates i, f, g, o): per layer
//! `z = [x | h] [W_ih | W_hh]^T + b_ih + b_hh` (the two products as one over the concatenated
//! input), `c = f*c + i*g`, `h = o*tanh(c)` (or `W_hr (o*tanh(c))`), then the logits
//! `h_top W_dec^T + b_dec`; the state of a row resets to zero before a step whose input is the
//! record boundary, as `resets.rs` does. The sums run in another order than the per-step path's
//! (one product over `in + out` terms instead of two added), so results agree with it up to f32
//! rounding.
//!
//! Products run on the engine's one micro-kernel (`gemm/tile.rs`, shared with `gemm/blocked.rs`
//! and `recurrence.rs`: the right operand in strips of 16 columns, the left one read in place), a
//! 6 x 16 AVX2+FMA tile where the CPU has it and `LSTMGEN_CPU_KERNELS=generic` is not set, else a
//! portable tile of the same layout. f32 models
//! with f32 products on the CPU take this path; bf16 products, f64 models and other devices take
//! the per-step path (`Model::step_logits`), and so does every run under
//! `LSTMGEN_CPU_GENERATION=steps`.

use crate::error::{Error, Result};
use crate::gemm::{tile, Precision};
use crate::model::{Model, State};
use crate::params::Layout;
use candle_core::{DType, Tensor};
use rayon::prelude::*;
use std::ops::Range;
use std::sync::Arc;

/// Inner-dimension block: a `KC x 16` strip block is 8 KiB, and with the `32 x KC` rows of the
/// left operand it passes over (16 KiB) it stays in a 32 KiB L1d.
const KC: usize = 128;
/// Fewest batch rows worth a thread of their own.
const MIN_GROUP_ROWS: usize = 8;

/// Whether the fused path is turned off (`LSTMGEN_CPU_GENERATION=steps`, read once).
fn steps_only() -> bool {
    static STEPS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *STEPS.get_or_init(|| std::env::var("LSTMGEN_CPU_GENERATION").is_ok_and(|v| v == "steps"))
}

/// Whether sampling from `model` takes the fused path: a CPU model of f32 weights with f32
/// products, not turned off by `LSTMGEN_CPU_GENERATION=steps`.
pub(crate) fn applies(model: &Model) -> bool {
    model.device().is_cpu()
        && model.dtype() == DType::F32
        && model.precision() == Precision::F32
        && !steps_only()
}

/// A right operand `[k, n]` packed by `gemm::tile::pack_strips` (strips of 16 columns, strip `s`
/// at `data[s * k * 16..]` laid out `[k][16]`, columns past `n` zero).
struct Strips {
    data: Vec<f32>,
    k: usize,
    n: usize,
}

impl Strips {
    /// The transpose of `src` `[n, k]` (row-major), packed: `b(p, j) = src[j * k + p]`.
    fn transposed(src: &[f32], k: usize, n: usize) -> Self {
        let data = tile::pack_strips(src, k, n, k, true);
        Self { data, k, n }
    }
}

/// `c[rows, b.n] = a[rows, b.k] @ b`, `a` with row stride `lda`, `c` with row stride `ldc`, the
/// inner dimension in blocks of [`KC`]: on the calling thread, or with `split` the strips (output
/// columns) split between the CPU threads, each reading only its share of `b` for every row (the
/// same sums, bit for bit). Panics (a caller's bug) when an operand is shorter than these shapes
/// need.
fn product(a: &[f32], lda: usize, rows: usize, b: &Strips, c: &mut [f32], ldc: usize, split: bool) {
    let strips = b.n.div_ceil(tile::NR);
    let parts = if split {
        rayon::current_num_threads().min(strips).max(1)
    } else {
        1
    };
    let per = strips.div_ceil(parts).max(1);
    let (base, len) = (SendPtr(c.as_mut_ptr()), c.len());
    let part = |t: usize| {
        let range = t * per..((t + 1) * per).min(strips);
        // SAFETY: `c` (borrowed mutably here) holds `len` floats; the parts write disjoint strips.
        unsafe {
            let (c, k, n) = (base.get(), b.k, b.n);
            tile::product_part(a, rows, k, lda, &b.data, n, range, KC, c, len, ldc, false)
        }
    };
    if parts == 1 {
        part(0);
    } else {
        (0..strips.div_ceil(per)).into_par_iter().for_each(part);
    }
}

/// `c`'s base pointer, shared by the parts of [`product`] that write disjoint columns.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: the tasks write disjoint elements, and `c` outlives the parallel section.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// One layer's weights, packed: `w` = `[W_ih | W_hh]^T` `[in + out, 4H]`, `bias` = `b_ih + b_hh`
/// `[4H]`, and `W_hr^T` `[H, P]` with a projection.
struct LayerPack {
    input: usize,
    w: Strips,
    bias: Vec<f32>,
    proj: Option<Strips>,
}

/// The model's weights packed for [`Group::step`], and the optimizer step they were taken at.
pub(crate) struct Weights {
    step: u64,
    vocab: usize,
    emb: usize,
    hidden: usize,
    out: usize,
    /// `[V, E]` row-major.
    embedding: Vec<f32>,
    layers: Vec<LayerPack>,
    /// `W_dec^T` `[out, V]`.
    dec: Strips,
    dec_b: Vec<f32>,
}

/// The f32 data of a CPU tensor, row-major.
fn host(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

impl Weights {
    /// Packs `model`'s weights (CPU, f32: see [`applies`]); [`Model::generation_weights`] keeps
    /// them for the next sampling runs.
    /// Errors: `Error::Data` when the packed copy (about the weights' own size) does not fit in
    /// the memory left.
    pub(crate) fn new(model: &Model) -> Result<Self> {
        let cfg = model.config();
        let floats: usize = model.params().iter().map(|p| p.elem_count()).sum();
        crate::memory::ensure_fits(
            4 * floats as u64,
            "packing the weights for sampling",
            "the model's size (hiddenSize, the vocabulary)",
        )?;
        let (hidden, out) = (cfg.hidden_size, cfg.out_size());
        let ly = Layout::new(cfg);
        let p = model.params();
        let h4 = 4 * hidden;
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for l in 0..cfg.num_layers {
            let input = if l == 0 { cfg.embedding_dim } else { out };
            let (w_ih, w_hh) = (host(&p[ly.w_ih(l)])?, host(&p[ly.w_hh(l)])?);
            let (b_ih, b_hh) = (host(&p[ly.b_ih(l)])?, host(&p[ly.b_hh(l)])?);
            if w_ih.len() != h4 * input || w_hh.len() != h4 * out || b_ih.len() != h4 {
                return Err(Error::Native(format!(
                    "layer {l}: weights of unexpected size"
                )));
            }
            // [W_ih | W_hh] [4H, in + out], row j the two weights' rows j side by side
            let mut cat = Vec::with_capacity(h4 * (input + out));
            for j in 0..h4 {
                cat.extend_from_slice(&w_ih[j * input..(j + 1) * input]);
                cat.extend_from_slice(&w_hh[j * out..(j + 1) * out]);
            }
            let w = Strips::transposed(&cat, input + out, h4);
            let bias = b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect();
            let proj = match ly.w_hr(l) {
                Some(k) => {
                    let w_hr = host(&p[k])?; // [P, H]
                    Some(Strips::transposed(&w_hr, hidden, out))
                }
                None => None,
            };
            layers.push(LayerPack {
                input,
                w,
                bias,
                proj,
            });
        }
        let dec_w = host(&p[ly.dec_w()])?; // [V, out]
        let vocab = cfg.vocab_size;
        Ok(Self {
            step: model.step(),
            vocab,
            emb: cfg.embedding_dim,
            hidden,
            out,
            embedding: host(&p[Layout::EMBEDDING])?,
            layers,
            dec: Strips::transposed(&dec_w, out, vocab),
            dec_b: host(&p[ly.dec_b()])?,
        })
    }

    /// Bytes of the packed weights.
    fn bytes(&self) -> usize {
        let strips = |s: &Strips| s.data.len();
        let layers: usize = self
            .layers
            .iter()
            .map(|l| strips(&l.w) + l.proj.as_ref().map_or(0, strips))
            .sum();
        4 * (layers + strips(&self.dec))
    }

    /// Whether these are `model`'s current weights (no optimizer step since they were packed).
    pub(crate) fn current(&self, model: &Model) -> bool {
        self.step == model.step()
    }
}

/// The state and scratch buffers of one group of batch rows.
pub(crate) struct Group {
    /// The group's rows of the batch.
    pub rows: Range<usize>,
    /// `h` `[rows, out]` and `c` `[rows, H]` of every layer.
    h: Vec<Vec<f32>>,
    c: Vec<Vec<f32>>,
    /// The left operand of a layer's product, `[x | h]` per row `[rows, in + out]`.
    a: Vec<f32>,
    /// Gate pre-activations `[rows, 4H]`.
    z: Vec<f32>,
    /// `o * tanh(c)` `[rows, H]` (the projection's input).
    r: Vec<f32>,
    /// The tokens [`Group::step`] feeds, one per row: those sampled last.
    pub tokens: Vec<u32>,
    /// Whether `tokens` were sampled but not yet run through the model.
    pub pending: bool,
    /// Whether the group's products, cells and sampling are split between the CPU threads
    /// ([`Fused::new`] says when).
    pub wide: bool,
}

impl Group {
    /// Runs [`Group::tokens`] (one per row, ids < V) through the model from the group's state:
    /// the state advances, `logits` `[rows, V]` receive the next-token logits, and nothing is
    /// pending any more. A row whose token is `boundary` starts from the zero state.
    pub(crate) fn step(&mut self, w: &Weights, boundary: Option<u32>, logits: &mut [f32]) {
        self.pending = false;
        let n = self.rows.len();
        let tokens = &self.tokens;
        let (hd, out) = (w.hidden, w.out);
        let h4 = 4 * hd;
        assert!(tokens.len() == n && logits.len() == n * w.vocab);
        if let Some(b) = boundary {
            for (i, _) in tokens.iter().enumerate().filter(|(_, &t)| t == b) {
                for (h, c) in self.h.iter_mut().zip(&mut self.c) {
                    h[i * out..(i + 1) * out].fill(0.0);
                    c[i * hd..(i + 1) * hd].fill(0.0);
                }
            }
        }
        for (l, lp) in w.layers.iter().enumerate() {
            let ka = lp.input + out;
            for (i, row) in self.a.chunks_exact_mut(ka).take(n).enumerate() {
                let (x, h) = row.split_at_mut(lp.input);
                if l == 0 {
                    let t = tokens[i] as usize;
                    x.copy_from_slice(&w.embedding[t * w.emb..(t + 1) * w.emb]);
                } else {
                    x.copy_from_slice(&self.h[l - 1][i * out..(i + 1) * out]);
                }
                h.copy_from_slice(&self.h[l][i * out..(i + 1) * out]);
            }
            product(&self.a, ka, n, &lp.w, &mut self.z, h4, self.wide);
            let c = &mut self.c[l];
            if self.wide {
                let per = n.div_ceil(rayon::current_num_threads()).max(1);
                self.z
                    .par_chunks_mut(per * h4)
                    .zip(c.par_chunks_mut(per * hd))
                    .zip(self.r.par_chunks_mut(per * hd))
                    .for_each(|((z, c), r)| cell(z, c, r, &lp.bias));
            } else {
                cell(&mut self.z, c, &mut self.r, &lp.bias);
            }
            match &lp.proj {
                Some(p) => product(&self.r, hd, n, p, &mut self.h[l], out, self.wide),
                None => self.h[l].copy_from_slice(&self.r),
            }
        }
        let top = &self.h[w.layers.len() - 1];
        let add_bias = |row: &mut [f32]| {
            for (l, &b) in row.iter_mut().zip(&w.dec_b) {
                *l += b;
            }
        };
        product(top, out, n, &w.dec, logits, w.vocab, self.wide);
        if self.wide {
            logits.par_chunks_mut(w.vocab).for_each(add_bias);
        } else {
            logits.chunks_mut(w.vocab).for_each(add_bias);
        }
    }
}

/// The cell of every row of `z` `[rows, 4H]` (the gates' pre-activations without bias): adds
/// `bias` `[4H]` and activates `z` in place, updates `c` `[rows, H]` and writes `o * tanh(c)` into
/// `r` `[rows, H]`.
fn cell(z: &mut [f32], c: &mut [f32], r: &mut [f32], bias: &[f32]) {
    use crate::act::Act;
    let h4 = bias.len();
    let hd = h4 / 4;
    for ((zr, cr), tr) in z
        .chunks_exact_mut(h4)
        .zip(c.chunks_exact_mut(hd))
        .zip(r.chunks_exact_mut(hd))
    {
        for (z, &b) in zr.iter_mut().zip(bias) {
            *z += b;
        }
        let (ifg, og) = zr.split_at_mut(3 * hd);
        let (if_, gg) = ifg.split_at_mut(2 * hd);
        f32::sigmoid_in_place(if_);
        f32::tanh_in_place(gg);
        f32::sigmoid_in_place(og);
        let (ig, fg) = if_.split_at(hd);
        for j in 0..hd {
            cr[j] = fg[j] * cr[j] + ig[j] * gg[j];
            tr[j] = cr[j];
        }
        f32::tanh_in_place(tr);
        for (t, &o) in tr.iter_mut().zip(og.iter()) {
            *t *= o;
        }
    }
}

/// Packed weights (bytes) above which a batch runs as one wide group (products split by output
/// columns between the threads, each reading its share of the weights per step) rather than as
/// row groups (each thread reading all of them): about what one core's L2 holds (512 KiB on the
/// 2-core EPYC here, 1-2 MiB on recent cores). Model (c) (hidden 128) has 0.42 MB, (b) (512x2)
/// 13 MB, (a) (1024, vocabulary 10,000) 62 MB.
const WIDE_BYTES: usize = 1 << 20;

/// The row groups of a batch of `batch` rows: one per CPU thread, at least [`MIN_GROUP_ROWS`]
/// rows each (one group for small batches), contiguous and of near-equal size.
pub(crate) fn row_groups(batch: usize) -> Vec<Range<usize>> {
    let groups = rayon::current_num_threads()
        .min(batch / MIN_GROUP_ROWS)
        .max(1);
    let per = batch.div_ceil(groups);
    (0..groups)
        .map(|g| g * per..((g + 1) * per).min(batch))
        .filter(|r| !r.is_empty())
        .collect()
}

/// The fused path's whole state for a batch: packed weights and the row groups' state.
pub(crate) struct Fused {
    pub weights: Arc<Weights>,
    pub groups: Vec<Group>,
}

impl Fused {
    /// Packs `model`'s weights and takes the carried `state` (`[batch, out]` / `[batch, H]` per
    /// layer) into host buffers: one wide group when the weights exceed [`WIDE_BYTES`] and the
    /// batch has rows for more than one thread, else [`row_groups`].
    pub(crate) fn new(model: &Model, state: &State) -> Result<Self> {
        Self::with_wide_bytes(model, state, WIDE_BYTES)
    }

    /// [`Fused::new`] with another threshold (tests run both kinds of groups on small models).
    pub(crate) fn with_wide_bytes(model: &Model, state: &State, wide_bytes: usize) -> Result<Self> {
        let weights = model.generation_weights()?;
        let batch = state.h[0].dim(0)?;
        let (hd, out) = (weights.hidden, weights.out);
        let ka = weights.layers.iter().map(|l| l.input).max().unwrap_or(0) + out;
        let groups = row_groups(batch);
        let wide = groups.len() > 1 && weights.bytes() > wide_bytes;
        let groups = if wide {
            std::iter::once(0..batch).collect()
        } else {
            groups
        };
        let groups = groups
            .into_iter()
            .map(|rows| {
                let n = rows.len();
                Group {
                    rows,
                    h: vec![vec![0.0; n * out]; weights.layers.len()],
                    c: vec![vec![0.0; n * hd]; weights.layers.len()],
                    a: vec![0.0; n * ka],
                    z: vec![0.0; n * 4 * hd],
                    r: vec![0.0; n * hd],
                    tokens: vec![0; n],
                    pending: false,
                    wide,
                }
            })
            .collect();
        let mut f = Self { weights, groups };
        f.load(state)?;
        Ok(f)
    }

    /// Replaces the groups' state by `state` (the batch's, as [`Fused::new`] takes it).
    pub(crate) fn load(&mut self, state: &State) -> Result<()> {
        let (hd, out) = (self.weights.hidden, self.weights.out);
        for l in 0..self.weights.layers.len() {
            let (h, c) = (host(&state.h[l])?, host(&state.c[l])?);
            for g in &mut self.groups {
                g.h[l].copy_from_slice(&h[g.rows.start * out..g.rows.end * out]);
                g.c[l].copy_from_slice(&c[g.rows.start * hd..g.rows.end * hd]);
            }
        }
        Ok(())
    }

    /// The batch's carried state as tensors on the CPU (`[batch, out]` / `[batch, H]` per layer).
    pub(crate) fn state(&self) -> Result<State> {
        let (hd, out) = (self.weights.hidden, self.weights.out);
        let batch = self.groups.last().map_or(0, |g| g.rows.end);
        let gather = |pick: &dyn Fn(&Group) -> &Vec<f32>, width: usize| -> Result<Tensor> {
            let v: Vec<f32> = self.groups.iter().flat_map(|g| pick(g).clone()).collect();
            Ok(Tensor::from_vec(
                v,
                (batch, width),
                &candle_core::Device::Cpu,
            )?)
        };
        let layers = self.weights.layers.len();
        Ok(State {
            h: (0..layers)
                .map(|l| gather(&|g| &g.h[l], out))
                .collect::<Result<_>>()?,
            c: (0..layers)
                .map(|l| gather(&|g| &g.c[l], hd))
                .collect::<Result<_>>()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ModelConfig, SampleConfig};
    use crate::controls::Controls;
    use crate::sample::Sampler;
    use candle_core::Device;

    /// A model of `cfg` with weights 3x PyTorch's default initialisation (so that the logits
    /// spread over several nats and sampling is not near uniform).
    fn model(cfg: ModelConfig, seed: u64) -> Model {
        let params = crate::params::init_params(&cfg, seed, &Device::Cpu)
            .unwrap()
            .into_iter()
            .map(|p| (p * 3.0).unwrap())
            .collect();
        Model::from_params(cfg, params, Device::Cpu).unwrap()
    }

    fn configs() -> Vec<ModelConfig> {
        let c = |vocab, emb, hidden, layers, proj| ModelConfig {
            vocab_size: vocab,
            embedding_dim: emb,
            hidden_size: hidden,
            num_layers: layers,
            dropout: 0.0,
            proj_size: proj,
        };
        // partial strips everywhere (V 37, 4H 84), two layers, a projection, one wide layer
        vec![c(37, 8, 21, 2, 0), c(37, 8, 21, 2, 7), c(65, 16, 64, 1, 0)]
    }

    /// Largest absolute difference of two float slices.
    fn diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    fn host_state(s: &State) -> Vec<f32> {
        s.h.iter()
            .chain(&s.c)
            .flat_map(|t| host(t).unwrap())
            .collect()
    }

    /// One fused step of a 20-row batch (two row groups on two threads) from a random state, with
    /// boundary resets in both groups, gives the logits and the state of the per-step path
    /// (`Model::step_logits`) within f32 rounding.
    #[test]
    fn a_step_matches_the_per_step_path() {
        for (ci, cfg) in configs().into_iter().enumerate() {
            let m = model(cfg, 3 + ci as u64);
            let batch = 20;
            let r = |rows: usize, cols: usize, seed: f64| {
                let v: Vec<f32> = (0..rows * cols)
                    .map(|i| ((i as f64 * 0.737 + seed).sin() * 0.9) as f32)
                    .collect();
                Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
            };
            let state = State {
                h: (0..cfg.num_layers)
                    .map(|l| r(batch, cfg.out_size(), l as f64))
                    .collect(),
                c: (0..cfg.num_layers)
                    .map(|l| r(batch, cfg.hidden_size, 0.5 + l as f64))
                    .collect(),
            };
            let tokens: Vec<u32> = (0..batch as u32).map(|i| (i * 7 + 1) % 37).collect();
            for (boundary, wide) in [
                (None, false),
                (Some(tokens[3]), false),
                (Some(tokens[14]), false),
                (None, true),
                (Some(tokens[14]), true),
            ] {
                let (want, next) = m.step_logits(&tokens, &state, boundary).unwrap();
                let limit = if wide { 0 } else { usize::MAX };
                let mut f = Fused::with_wide_bytes(&m, &state, limit).unwrap();
                let threads = rayon::current_num_threads();
                assert!(threads == 1 || (f.groups.len() == 1) == wide);
                let vocab = cfg.vocab_size;
                let mut got = vec![f32::NAN; batch * vocab];
                for g in &mut f.groups {
                    g.tokens.copy_from_slice(&tokens[g.rows.clone()]);
                    let logits = &mut got[g.rows.start * vocab..g.rows.end * vocab];
                    g.step(&f.weights, boundary, logits);
                }
                let spread = want.iter().fold(0f32, |m, x| m.max(x.abs()));
                assert!(spread > 1.0, "{cfg:?}: logits {spread} too flat for a test");
                let d = diff(&got, &want);
                assert!(
                    d < 2e-5,
                    "{cfg:?} {boundary:?} {wide}: logits differ by {d}"
                );
                let d = diff(&host_state(&f.state().unwrap()), &host_state(&next));
                assert!(
                    d < 2e-5,
                    "{cfg:?} {boundary:?} {wide}: state differs by {d}"
                );
            }
        }
    }

    fn sample_cfg(n: usize, temperature: f64, top_k: usize, top_p: f64) -> SampleConfig {
        SampleConfig {
            num_samples: n,
            max_tokens: 40,
            temperature,
            top_k,
            top_p,
            seed: 11,
            stop_sequences: vec![],
            banned_ids: vec![],
            reset_at: None,
            controls: Default::default(),
        }
    }

    /// Sampling on the fused path draws the same tokens as on the per-step path, token for token,
    /// under every rule (plain, greedy, top-k, top-p, bans, generation controls, stop sequences,
    /// record boundaries, more prompt fed between calls), for one row, one group and two groups;
    /// and the next-token logits agree within f32 rounding at every call.
    #[test]
    fn sampling_matches_the_per_step_path() {
        let mut cases = Vec::new();
        for n in [1, 5, 24] {
            cases.push(sample_cfg(n, 1.0, 0, 1.0));
            cases.push(sample_cfg(n, 0.0, 0, 1.0));
            cases.push(sample_cfg(n, 0.7, 5, 0.9));
        }
        let mut c = sample_cfg(24, 1.2, 0, 0.95);
        c.banned_ids = vec![2, 9];
        c.stop_sequences = vec![vec![4], vec![7, 1]];
        c.reset_at = Some(4);
        cases.push(c);
        let mut c = sample_cfg(17, 0.9, 20, 1.0);
        c.controls = Controls {
            repetition_penalty: 1.3,
            frequency_penalty: 0.2,
            no_repeat_ngram: 3,
            window: 16,
            min_tokens: 5,
            end_ids: vec![4],
        };
        c.reset_at = Some(4);
        cases.push(c);
        for (ci, cfg) in configs().into_iter().enumerate() {
            let m = model(cfg, 20 + ci as u64);
            for (sc, wide) in cases.iter().flat_map(|c| [(c, false), (c, true)]) {
                let prompt = [3, 1, 4, 1, 5];
                let mut fused = Sampler::new(&m, &prompt, sc).unwrap();
                if wide {
                    fused = fused.wide(&m).unwrap();
                }
                assert!(fused.is_fused());
                let mut steps = Sampler::new(&m, &prompt, sc)
                    .unwrap()
                    .on_steps_path()
                    .unwrap();
                assert!(!steps.is_fused());
                for (k, feed) in [(7, vec![]), (1, vec![6, 2]), (40, vec![])] {
                    fused.feed(&m, &feed).unwrap();
                    steps.feed(&m, &feed).unwrap();
                    let (a, b) = (fused.next(&m, k).unwrap(), steps.next(&m, k).unwrap());
                    assert_eq!(a, b, "{cfg:?} {sc:?} {wide}: tokens differ");
                    let vocab = cfg.vocab_size;
                    let (la, lb) = (
                        fused.logits(&m).unwrap().to_vec(),
                        steps.logits(&m).unwrap().to_vec(),
                    );
                    if !fused.finished() {
                        let d = diff(&la, &lb);
                        assert!(d < 1e-4, "{cfg:?} {sc:?}: logits differ by {d} ({vocab})");
                    }
                }
                assert!(fused.finished() && steps.finished());
            }
        }
    }

    /// A NaN that appears only after the prompt (the embedding row of a token sampled later) is
    /// a Numeric error on the fused path as on the per-step path.
    #[test]
    fn non_finite_logits_of_a_later_step_are_a_numeric_error() {
        let cfg = configs()[0];
        let mut params = crate::params::init_params(&cfg, 1, &Device::Cpu).unwrap();
        let mut emb = host(&params[Layout::EMBEDDING]).unwrap();
        emb[5 * cfg.embedding_dim] = f32::NAN;
        params[Layout::EMBEDDING] =
            Tensor::from_vec(emb, (cfg.vocab_size, cfg.embedding_dim), &Device::Cpu).unwrap();
        let m = Model::from_params(cfg, params, Device::Cpu).unwrap();
        let mut sc = sample_cfg(12, 1.0, 0, 1.0);
        sc.banned_ids = (0..37).filter(|&i| i != 5).collect(); // only token 5 can be drawn
        for steps in [false, true] {
            let mut s = Sampler::new(&m, &[1], &sc).unwrap();
            if steps {
                s = s.on_steps_path().unwrap();
            }
            assert_eq!(s.next(&m, 1).unwrap(), vec![vec![5]; 12]);
            let e = s.next(&m, 1).unwrap_err();
            assert_eq!(e.code(), "E_NUMERIC", "{e}");
        }
    }

    /// A product split by columns between the threads is the product on one thread, bit for bit
    /// (`gemm::tile`'s tests check the product itself), for shapes with partial strips, fewer
    /// strips than threads, and strided operands.
    #[test]
    fn split_by_columns_is_the_product() {
        for (rows, k, n) in [(1, 3, 5), (13, 37, 40), (32, 192, 512), (20, 300, 37)] {
            let (lda, ldc) = (k + 3, n + 2);
            let a: Vec<f32> = (0..rows * lda).map(|i| (i as f32 * 0.37).sin()).collect();
            let src: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.53).cos()).collect();
            let b = Strips::transposed(&src, k, n);
            let mut c = vec![7.0f32; rows * ldc];
            product(&a, lda, rows, &b, &mut c, ldc, false);
            let mut split = vec![7.0f32; rows * ldc];
            product(&a, lda, rows, &b, &mut split, ldc, true);
            assert_eq!(c, split, "[{rows},{k},{n}]");
            assert!(
                c.iter().any(|&x| x != 7.0),
                "[{rows},{k},{n}]: nothing written"
            );
        }
    }
}

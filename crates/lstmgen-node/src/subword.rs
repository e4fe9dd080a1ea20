//! The subword tokenizers of `lstmgen_core::subword` for JS: a tokenizer handle, a streaming
//! encoder, and the word counter that trains a byte-level BPE (training runs on the thread pool).

use crate::error::{guard, Engine, EngineTask, Result};
use lstmgen_core::subword::{last_cut, Subword, TrainOptions, WordCounter};
use napi::bindgen_prelude::{AsyncTask, Buffer, Uint32Array};
use napi_derive::napi;
use std::sync::Arc;

/// Text a streaming encoder or counter holds back at most while it waits for a cut point (4 MiB
/// of UTF-8); past it the text is cut at a character boundary, the one place where ids may differ
/// from those of encoding the text whole (a run of over 4 MiB without whitespace).
const MAX_HELD: usize = 1 << 22;

/// Splits `held + piece` into the part to handle now (up to the last cut point) and the rest,
/// which becomes `held`.
fn take_complete(held: &mut String, piece: &str) -> String {
    held.push_str(piece);
    let cut = match last_cut(held) {
        Some(i) => i,
        None if held.len() > MAX_HELD => held.len(),
        None => 0,
    };
    let rest = held.split_off(cut);
    std::mem::replace(held, rest)
}

/// A Hugging Face tokenizer (byte-level BPE trained by lstmgen, or a loaded tokenizer.json).
/// Errors have the engine's codes: `E_DATA` for bad input (JSON, ids).
#[napi]
pub struct NativeTokenizer {
    inner: Arc<Subword>,
    trained_tokens: Option<f64>,
}

#[napi]
impl NativeTokenizer {
    /// Load a tokenizer.json text; `<|endoftext|>` is added as a special token when missing.
    /// Throws `E_DATA` (with the parser's reason) when it is not a tokenizer the crate can load.
    #[napi(factory)]
    pub fn from_json(json: String) -> Result<NativeTokenizer> {
        let inner = guard(|| Subword::from_json(&json))?;
        Ok(NativeTokenizer {
            inner: Arc::new(inner),
            trained_tokens: None,
        })
    }

    /// The tokenizer as compact tokenizer.json text.
    #[napi]
    pub fn to_json(&self) -> Result<String> {
        guard(|| self.inner.to_json())
    }

    /// One past the largest id.
    #[napi(getter)]
    pub fn vocab_size(&self) -> u32 {
        self.inner.vocab_size()
    }

    /// Id of `<|endoftext|>`.
    #[napi(getter)]
    pub fn boundary_id(&self) -> u32 {
        self.inner.boundary_id()
    }

    /// For a tokenizer trained by `NativeWordCounter.train`: the tokens of all the text the counter
    /// counted, encoded with this tokenizer (from the pre-token counts, without encoding the text);
    /// null otherwise.
    #[napi(getter)]
    pub fn trained_tokens(&self) -> Option<f64> {
        self.trained_tokens
    }

    /// Id of the model's unknown token, or null (byte-level BPE has none).
    #[napi(getter)]
    pub fn unk_id(&self) -> Option<u32> {
        self.inner.unk_id()
    }

    /// Whether the decoder is byte-level (tokens stand for bytes).
    #[napi(getter)]
    pub fn byte_level(&self) -> bool {
        self.inner.byte_level()
    }

    /// Token string of every id, id order (`""` for ids without a token).
    #[napi]
    pub fn tokens(&self) -> Vec<String> {
        self.inner.tokens()
    }

    /// Ids of `text` (no special tokens added), encoded on all cores.
    #[napi]
    pub fn encode(&self, text: String) -> Result<Uint32Array> {
        guard(|| self.inner.encode(&text)).map(Uint32Array::from)
    }

    /// Text of `ids` (special tokens as their text; invalid UTF-8 as U+FFFD). `E_DATA` for an id
    /// outside the vocabulary.
    #[napi]
    pub fn decode(&self, ids: Uint32Array) -> Result<String> {
        guard(|| self.inner.decode(&ids))
    }

    /// Bytes of every id (the boundary as `\n`), or null when the decoder is not byte-level.
    #[napi]
    pub fn token_bytes(&self) -> Option<Vec<Buffer>> {
        self.inner
            .token_bytes()
            .map(|all| all.into_iter().map(Buffer::from).collect())
    }

    /// Code points each id adds to decoded text (UTF-8 lead bytes of its bytes), or null when the
    /// decoder is not byte-level.
    #[napi]
    pub fn char_counts(&self) -> Option<Uint32Array> {
        self.inner.char_counts().map(Uint32Array::from)
    }

    /// A streaming encoder over this tokenizer.
    #[napi]
    pub fn encoder(&self) -> NativeEncoder {
        NativeEncoder {
            inner: self.inner.clone(),
            held: String::new(),
        }
    }
}

/// Encodes a text given in pieces: text after the last cut point (a whitespace character after a
/// non-whitespace one) waits for the next piece or `end()`, so ids do not depend on the pieces.
#[napi]
pub struct NativeEncoder {
    inner: Arc<Subword>,
    held: String,
}

#[napi]
impl NativeEncoder {
    /// Ids of the complete part of everything written so far.
    #[napi]
    pub fn write(&mut self, piece: String) -> Result<Uint32Array> {
        let now = take_complete(&mut self.held, &piece);
        guard(|| self.inner.encode(&now)).map(Uint32Array::from)
    }

    /// The text ends: ids of what was held back.
    #[napi]
    pub fn end(&mut self) -> Result<Uint32Array> {
        let rest = std::mem::take(&mut self.held);
        guard(|| self.inner.encode(&rest)).map(Uint32Array::from)
    }
}

/// Counts the byte-level pre-tokens of a training corpus given in pieces (held back as
/// `NativeEncoder` does), then trains a byte-level BPE on them.
#[napi]
pub struct NativeWordCounter {
    counts: WordCounter,
    held: String,
}

impl Default for NativeWordCounter {
    fn default() -> Self {
        Self::new()
    }
}

#[napi]
impl NativeWordCounter {
    /// An empty counter.
    #[napi(constructor)]
    pub fn new() -> Self {
        NativeWordCounter {
            counts: WordCounter::default(),
            held: String::new(),
        }
    }

    /// Count the complete part of everything written so far.
    #[napi]
    pub fn write(&mut self, piece: String) -> Result<()> {
        let now = take_complete(&mut self.held, &piece);
        guard(|| self.counts.add(&now))
    }

    /// The text ends (end of a record): count what was held back.
    #[napi]
    pub fn end(&mut self) -> Result<()> {
        let rest = std::mem::take(&mut self.held);
        guard(|| self.counts.add(&rest))
    }

    /// Distinct pre-tokens counted so far.
    #[napi(getter)]
    pub fn distinct(&self) -> u32 {
        self.counts.distinct() as u32
    }

    /// Train a byte-level BPE of `vocab_size` tokens (boundary and 256 bytes included) on the
    /// counts, on the thread pool, and count the tokens of the text counted (`trainedTokens` of the
    /// result); the counter is empty afterwards. Rejects with `E_DATA` when `vocab_size` < 257.
    #[napi(ts_return_type = "Promise<NativeTokenizer>")]
    pub fn train(&mut self, vocab_size: u32, min_frequency: u32) -> AsyncTask<Engine<Train>> {
        AsyncTask::new(Engine(Train {
            counts: std::mem::take(&mut self.counts),
            options: TrainOptions {
                vocab_size: vocab_size as usize,
                min_frequency: min_frequency as u64,
            },
        }))
    }
}

/// The BPE training task of [`NativeWordCounter::train`].
pub struct Train {
    counts: WordCounter,
    options: TrainOptions,
}

impl EngineTask for Train {
    type Output = (Subword, u64);
    type JsValue = NativeTokenizer;
    fn compute(&mut self) -> lstmgen_core::Result<(Subword, u64)> {
        let tok = Subword::train(&self.counts, &self.options)?;
        let tokens = self.counts.tokens(&tok)?;
        self.counts = WordCounter::default();
        Ok((tok, tokens))
    }
    fn resolve(&mut self, (tok, tokens): (Subword, u64)) -> NativeTokenizer {
        NativeTokenizer {
            inner: Arc::new(tok),
            trained_tokens: Some(tokens as f64),
        }
    }
}

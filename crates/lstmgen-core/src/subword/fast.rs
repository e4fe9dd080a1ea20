//! Ids-only encoding for byte-level BPE tokenizers, the ones lstmgen trains and GPT-2-style ones:
//! the same ids as `Tokenizer::encode_fast`, several times faster. The crate's pipeline builds a
//! `NormalizedString` with byte alignments for every pre-token and an `Encoding` with a `String`
//! per token, which takes most of its time (1.5 MB per CPU second for pre-tokenizing alone on
//! Moby-Dick); here the pattern's matches are looked up in a per-thread cache of their ids, and
//! only a pre-token not seen before goes through the crate's BPE model (its merges).
//!
//! [`Fast::new`] accepts a tokenizer only when its `encode_fast` is exactly this: no normalizer,
//! every added token special (so never matched, as [`super::Subword`] encodes special-token text as
//! text), a pre-tokenizer that splits on a regex (each match and each gap a pre-token, `Isolated`)
//! and maps bytes to GPT-2's byte chars, a BPE model without dropout, and a post-processor that
//! adds no ids. Other tokenizers keep the crate's `encode_fast`.

use super::byte_chars;
use crate::error::{Error, Result};
use ahash::AHashMap;
use std::sync::Mutex;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{Model, ModelWrapper, PostProcessorWrapper, Tokenizer};

/// GPT-2's pattern (openai/gpt-2 `encoder.py`), that of the `ByteLevel` pre-tokenizer with
/// `use_regex`; its look-ahead needs `fancy-regex`'s backtracking VM.
const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// Most pre-tokens each thread's cache holds (about 100 bytes each); later new ones are
/// tokenized every time they occur, as the crate's own cache does when full.
const CACHE_WORDS: usize = 1 << 18;

/// Longest pre-token (bytes) that is cached, as in the crate's cache.
const CACHE_WORD_BYTES: usize = 256;

/// Raw pre-token text -> its ids.
type IdCache = AHashMap<Box<str>, Box<[u32]>>;

/// A pre-tokenizer pattern on the regex engine it needs.
pub(super) enum Splitter {
    /// No look-around: the `regex` crate (what `fancy-regex` delegates such a pattern to).
    Plain(regex::Regex),
    /// GPT-2's pattern, on `fancy-regex` as in the crate.
    Fancy(fancy_regex::Regex),
}

impl Splitter {
    /// `pattern` (without look-around) on the `regex` crate.
    pub(super) fn plain(pattern: &str) -> Result<Splitter> {
        regex::Regex::new(pattern)
            .map(Splitter::Plain)
            .map_err(|e| Error::Native(format!("pre-tokenizer pattern: {e}")))
    }

    /// Occurrences of every pre-token of `text`.
    pub(super) fn count<'t>(&self, text: &'t str) -> Result<AHashMap<&'t str, u64>> {
        let mut map = AHashMap::new();
        self.each(text, |w| {
            *map.entry(w).or_default() += 1;
            Ok(())
        })?;
        Ok(map)
    }

    /// Call `f` on every pre-token of `text` in order, as the crate's `Split` with the
    /// `Isolated` behaviour cuts it: each match, and each gap between matches.
    pub(super) fn each<'t>(
        &self,
        text: &'t str,
        mut f: impl FnMut(&'t str) -> Result<()>,
    ) -> Result<()> {
        let mut prev = 0;
        let mut each = |start: usize, end: usize| -> Result<()> {
            if start > prev {
                f(&text[prev..start])?;
            }
            f(&text[start..end])?;
            prev = end;
            Ok(())
        };
        match self {
            Splitter::Plain(re) => {
                for m in re.find_iter(text) {
                    each(m.start(), m.end())?;
                }
            }
            Splitter::Fancy(re) => {
                // the crate's `SysRegex` ends the matches at the first error (the backtrack limit):
                // the rest of the text is then one gap
                for m in re.find_iter(text) {
                    let Ok(m) = m else { break };
                    each(m.start(), m.end())?;
                }
            }
        }
        if prev < text.len() {
            f(&text[prev..])?;
        }
        Ok(())
    }
}

/// `word`'s bytes as GPT-2's byte chars (what the `ByteLevel` pre-tokenizer makes of it), into `out`.
pub(super) fn to_byte_chars(word: &str, table: &[char; 256], out: &mut String) {
    out.clear();
    out.extend(word.bytes().map(|b| table[b as usize]));
}

/// The fast encoder of one tokenizer.
pub(super) struct Fast {
    splitter: Splitter,
    byte_chars: [char; 256],
    /// One cache per thread of the pool and one for other threads: raw pre-token text -> ids.
    caches: Vec<Mutex<IdCache>>,
}

impl Fast {
    /// The fast encoder of `tok`, or `None` when its pipeline is not one this encodes exactly
    /// (see the module docs). `split_pattern` is the pattern of the `Split` pre-tokenizer that
    /// lstmgen trains with, `trained` that pre-tokenizer.
    pub(super) fn new(
        tok: &Tokenizer,
        trained: &PreTokenizerWrapper,
        split_pattern: &str,
    ) -> Result<Option<Fast>> {
        let bpe_ok =
            matches!(tok.get_model(), ModelWrapper::BPE(b) if b.dropout.is_none_or(|d| d == 0.0));
        let post_ok = matches!(
            tok.get_post_processor(),
            None | Some(PostProcessorWrapper::ByteLevel(_))
        );
        let added_ok = tok.get_added_tokens_decoder().values().all(|t| t.special);
        if !bpe_ok || !post_ok || !added_ok || tok.get_normalizer().is_some() {
            return Ok(None);
        }
        let splitter = match tok.get_pre_tokenizer() {
            Some(p) if p == trained => Splitter::plain(split_pattern)?,
            Some(PreTokenizerWrapper::ByteLevel(b)) if !b.add_prefix_space && b.use_regex => {
                Splitter::Fancy(
                    fancy_regex::Regex::new(GPT2_PATTERN)
                        .map_err(|e| Error::Native(format!("GPT-2 pattern: {e}")))?,
                )
            }
            _ => return Ok(None),
        };
        let caches = (0..=rayon::current_num_threads())
            .map(|_| Mutex::new(AHashMap::new()))
            .collect();
        Ok(Some(Fast {
            splitter,
            byte_chars: byte_chars(),
            caches,
        }))
    }

    /// Ids of `text` (one part: no special tokens, as `encode_fast(text, false)`).
    pub(super) fn encode(&self, model: &ModelWrapper, text: &str) -> Result<Vec<u32>> {
        let slot = rayon::current_thread_index()
            .filter(|&i| i + 1 < self.caches.len())
            .unwrap_or(self.caches.len() - 1);
        let mut cache = self.caches[slot]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out = Vec::with_capacity(text.len() / 3);
        let mut chars = String::new();
        self.splitter.each(text, |w| {
            if let Some(ids) = cache.get(w) {
                out.extend_from_slice(ids);
                return Ok(());
            }
            to_byte_chars(w, &self.byte_chars, &mut chars);
            let ids: Box<[u32]> = model
                .tokenize(&chars)
                .map_err(|e| Error::Data(format!("tokenizer: {e}")))?
                .iter()
                .map(|t| t.id)
                .collect();
            out.extend_from_slice(&ids);
            if w.len() < CACHE_WORD_BYTES && cache.len() < CACHE_WORDS {
                cache.insert(w.into(), ids);
            }
            Ok(())
        })?;
        Ok(out)
    }
}

//! Subword tokenizers from Hugging Face `tokenizers`: a byte-level BPE trained on a corpus (the
//! crate's `BpeTrainer`, a `Split` on [`SPLIT_PATTERN`] then the `ByteLevel` pre-tokenizer, and
//! the `ByteLevel` decoder), or any `tokenizer.json`.
//!
//! Every tokenizer here has the record-boundary token [`BOUNDARY`] (added as a special token when a
//! loaded `tokenizer.json` lacks it) and encodes special-token text as ordinary text, so the
//! boundary only ever comes from the corpus framing and any text round-trips through a byte-level
//! tokenizer. Encoding cuts long texts at [`is_cut`] points (a whitespace character after a
//! non-whitespace one, where both [`SPLIT_PATTERN`] and GPT-2's pattern always split) and encodes
//! the parts on all cores; the ids equal those of encoding the text whole.

mod fast;

use crate::error::{Error, Result};
use ahash::AHashMap;
use compact_str::CompactString;
use rayon::prelude::*;
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, DecoderWrapper, Model, SplitDelimiterBehavior, Tokenizer};

/// The record-boundary token shared with the TypeScript tokenizers.
pub const BOUNDARY: &str = "<|endoftext|>";

/// Bytes of text per part when a text is encoded or counted on all cores (about 64 KiB; a part
/// ends at the first cut point after this many bytes).
const PART_BYTES: usize = 1 << 16;

/// The pre-tokenizer pattern of the BPEs trained here: GPT-2's (openai/gpt-2 `encoder.py`, the
/// `ByteLevel` pre-tokenizer's `use_regex`) without its look-ahead alternative `\s+(?!\S)`. With
/// no look-around `fancy-regex` hands the whole pattern to the `regex` crate's automata instead
/// of its backtracking VM, which makes encoding several times faster. The one difference from
/// GPT-2: a whitespace run before a word stays whole (`"a   b"` gives `a`, `   `, `b`, where GPT-2
/// gives `a`, `  `, ` b`); byte-level BPE round-trips exactly either way.
/// The longest pre-token (in byte chars) the BPE trainer sees: longer ones (a run without spaces,
/// such as minified code or base64) are given to it as pieces of this length. The trainer's
/// merges cost time quadratic in a word's length (a 200 KB run takes ~25 s, 800 KB minutes);
/// encoding keeps the whole pre-token, so only the vocabulary learnt from such runs changes.
const MAX_TRAIN_WORD: usize = 256;

pub const SPLIT_PATTERN: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+";

/// Whether byte offset `i` of `s` (a char boundary) is a cut point: the char there is whitespace
/// and the one before it is not. Neither [`SPLIT_PATTERN`] nor GPT-2's pattern (that of
/// tokenizers trained before it, and of GPT-2-style `tokenizer.json` files) has a match with a
/// non-whitespace char followed by a whitespace char, nor a look-behind, and GPT-2's look-ahead
/// `\s+(?!\S)` never looks past a cut (a part ends with a non-whitespace char); so pre-tokens, and
/// hence BPE ids, are the same whether the text is cut there or not.
fn is_cut(s: &str, i: usize) -> bool {
    let (before, after) = s.split_at(i);
    match (before.chars().next_back(), after.chars().next()) {
        (Some(b), Some(a)) => a.is_whitespace() && !b.is_whitespace(),
        _ => false,
    }
}

/// Byte offset of the last cut point of `s`, if any.
pub fn last_cut(s: &str) -> Option<usize> {
    let mut prev_ws = None;
    for (i, c) in s.char_indices().rev() {
        let ws = c.is_whitespace();
        if prev_ws == Some(true) && !ws {
            return Some(i + c.len_utf8());
        }
        prev_ws = Some(ws);
    }
    None
}

/// `s` cut into parts of about [`PART_BYTES`] bytes, each ending at a cut point (the last at the
/// end of `s`).
fn parts(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    while s.len() - start > PART_BYTES {
        let mut i = start + PART_BYTES;
        while i < s.len() && !(s.is_char_boundary(i) && is_cut(s, i)) {
            i += 1;
        }
        out.push(&s[start..i]);
        start = i;
    }
    if start < s.len() || out.is_empty() {
        out.push(&s[start..]);
    }
    out
}

/// GPT-2's table from the 256 bytes to the chars byte-level tokens are written with
/// (openai/gpt-2 `encoder.py` `bytes_to_unicode`, which `tokenizers`' `ByteLevel` uses): the
/// printable bytes `!`..=`~`, 0xA1..=0xAC and 0xAE..=0xFF stand for themselves, the others for
/// U+0100 onwards in byte order. Entry `b` is the char of byte `b`.
fn byte_chars() -> [char; 256] {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    let mut next = 256u32;
    std::array::from_fn(|b| {
        let c = if printable(b as u8) {
            b as u32
        } else {
            next += 1;
            next - 1
        };
        // U+0000..=U+00FF and U+0100..U+0200 are all valid chars
        char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER)
    })
}

/// The byte of every char of [`byte_chars`].
fn byte_of_char() -> AHashMap<char, u8> {
    byte_chars()
        .iter()
        .enumerate()
        .map(|(b, &c)| (c, b as u8))
        .collect()
}

/// A `tokenizers` tokenizer with lstmgen's conventions (see the module docs).
pub struct Subword {
    tok: Tokenizer,
    boundary: u32,
    unk: Option<u32>,
    vocab_size: u32,
    byte_level: bool,
    /// The ids-only encoder, for pipelines it encodes exactly.
    fast: Option<fast::Fast>,
}

/// Options of [`Subword::train`].
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Vocabulary size including the 256 byte tokens and [`BOUNDARY`]; training stops earlier when
    /// no pair of tokens occurs `min_frequency` times.
    pub vocab_size: usize,
    /// Fewest occurrences of a pair for it to be merged.
    pub min_frequency: u64,
}

/// Counts the pre-tokens ("words") of a training corpus given in pieces, for [`Subword::train`].
#[derive(Default)]
pub struct WordCounter {
    counts: AHashMap<CompactString, u64>,
    /// [`SPLIT_PATTERN`], compiled on first use.
    splitter: Option<fast::Splitter>,
}

impl WordCounter {
    /// Count the byte-level pre-tokens of `text` (on all cores for long texts). The caller cuts
    /// the corpus into texts at cut points ([`last_cut`]) so that counts do not depend on the cuts.
    pub fn add(&mut self, text: &str) -> Result<()> {
        if self.splitter.is_none() {
            self.splitter = Some(fast::Splitter::plain(SPLIT_PATTERN)?);
        }
        let Some(splitter) = self.splitter.as_ref() else {
            return Ok(());
        };
        // the pre-tokens of the trained pre-tokenizer (a Split on the pattern, then ByteLevel), as
        // fast::Fast cuts them: counted as text, mapped to byte chars once per distinct word
        let maps = parts(text)
            .into_par_iter()
            .map(|part| splitter.count(part))
            .collect::<Result<Vec<_>>>()?;
        let table = byte_chars();
        let mut chars = String::new();
        for map in maps {
            for (word, n) in map {
                fast::to_byte_chars(word, &table, &mut chars);
                *self
                    .counts
                    .entry(CompactString::from(chars.as_str()))
                    .or_default() += n;
            }
        }
        Ok(())
    }

    /// Distinct pre-tokens counted so far.
    pub fn distinct(&self) -> usize {
        self.counts.len()
    }

    /// Tokens of all the text counted when encoded with `tok` (a tokenizer trained on these
    /// counts): each pre-token's count times the number of tokens its merges give, which is what
    /// encoding the text gives, since BPE merges never cross pre-tokens.
    pub fn tokens(&self, tok: &Subword) -> Result<u64> {
        let model = tok.tok.get_model();
        let words: Vec<(&CompactString, &u64)> = self.counts.iter().collect();
        words
            .par_iter()
            .map(|(word, &n)| {
                model
                    .tokenize(word)
                    .map(|t| n * t.len() as u64)
                    .map_err(|e| Error::Native(format!("BPE model: {e}")))
            })
            .try_reduce(|| 0, |a, b| Ok(a + b))
    }
}

/// `counts` with every word longer than `max` chars replaced by its pieces of `max` chars (the
/// last one shorter), or `None` when no word is that long.
fn capped_counts(
    counts: &AHashMap<CompactString, u64>,
    max: usize,
) -> Option<AHashMap<CompactString, u64>> {
    if counts.keys().all(|w| w.chars().count() <= max) {
        return None;
    }
    let mut out = AHashMap::with_capacity(counts.len());
    for (word, &n) in counts {
        let chars: Vec<char> = word.chars().collect();
        for piece in chars.chunks(max) {
            *out.entry(piece.iter().collect::<CompactString>())
                .or_default() += n;
        }
    }
    Some(out)
}

/// The pre-tokenizer of trained tokenizers: a `Split` on [`SPLIT_PATTERN`] (each match a
/// pre-token), then `ByteLevel` without its own regex and without a prefix space (so that decoding
/// gives the text back exactly). Both are built-in `tokenizers` types, so the `tokenizer.json`
/// loads in the Python package too.
fn byte_level_pre_tokenizer() -> Result<PreTokenizerWrapper> {
    let split = Split::new(
        SplitPattern::Regex(SPLIT_PATTERN.into()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| Error::Native(format!("pre-tokenizer pattern: {e}")))?;
    Ok(Sequence::new(vec![
        split.into(),
        ByteLevel::new(false, true, false).into(),
    ])
    .into())
}

impl Subword {
    /// Train a byte-level BPE on the words of `counter`: [`BOUNDARY`] is id 0, the 256 byte tokens
    /// follow, then the merges in the trainer's order.
    /// @throws `Error::Data` when `vocab_size` is below 257 (the boundary and the bytes).
    pub fn train(counter: &WordCounter, options: &TrainOptions) -> Result<Subword> {
        if options.vocab_size < 257 {
            return Err(Error::Data(format!(
                "a byte-level BPE vocabulary needs at least 257 tokens (the boundary token and the 256 bytes), got vocabSize {}",
                options.vocab_size
            )));
        }
        let trainer = BpeTrainer::builder()
            .vocab_size(options.vocab_size)
            .min_frequency(options.min_frequency)
            .special_tokens(vec![AddedToken::from(BOUNDARY, true)])
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .show_progress(false)
            .build();
        let mut model = BPE::default();
        let capped = capped_counts(&counter.counts, MAX_TRAIN_WORD);
        let specials = trainer
            .do_train(capped.as_ref().unwrap_or(&counter.counts), &mut model)
            .map_err(|e| Error::Native(format!("BPE trainer: {e}")))?;
        let mut tok = Tokenizer::new(model);
        tok.with_pre_tokenizer(Some(byte_level_pre_tokenizer()?));
        tok.with_decoder(Some(ByteLevel::default()));
        tok.add_special_tokens(specials)
            .map_err(|e| Error::Native(format!("BPE special tokens: {e}")))?;
        Subword::new(tok)
    }

    /// Load a `tokenizer.json` (as written by `tokenizers`, Python or Rust). Padding and truncation
    /// are switched off; [`BOUNDARY`] is added as a special token when the vocabulary lacks it.
    /// @throws `Error::Data` when `json` is not a tokenizer the crate can load (the message says why).
    pub fn from_json(json: &str) -> Result<Subword> {
        let tok: Tokenizer = json
            .parse()
            .map_err(|e| Error::Data(format!("not a Hugging Face tokenizer.json: {e}")))?;
        Subword::new(tok)
    }

    fn new(mut tok: Tokenizer) -> Result<Subword> {
        tok.with_truncation(None)
            .map_err(|e| Error::Native(format!("tokenizer truncation: {e}")))?;
        tok.with_padding(None);
        tok.set_encode_special_tokens(true);
        let boundary = match tok.token_to_id(BOUNDARY) {
            Some(id) => id,
            None => {
                tok.add_special_tokens([AddedToken::from(BOUNDARY, true)])
                    .map_err(|e| Error::Native(format!("adding the boundary token: {e}")))?;
                tok.token_to_id(BOUNDARY)
                    .ok_or_else(|| Error::Native("could not add the boundary token".into()))?
            }
        };
        let vocab_size = tok
            .get_vocab(true)
            .values()
            .max()
            .map_or(0, |&m| m as u64 + 1);
        if vocab_size > u32::MAX as u64 {
            return Err(Error::Data("tokenizer ids exceed 2^32".into()));
        }
        let byte_level = matches!(tok.get_decoder(), Some(DecoderWrapper::ByteLevel(_)));
        let unk = unk_token(&tok).and_then(|t| tok.token_to_id(&t));
        let fast = fast::Fast::new(&tok, &byte_level_pre_tokenizer()?, SPLIT_PATTERN)?;
        Ok(Subword {
            tok,
            boundary,
            unk,
            vocab_size: vocab_size as u32,
            byte_level,
            fast,
        })
    }

    /// The tokenizer as `tokenizer.json` text (compact).
    pub fn to_json(&self) -> Result<String> {
        self.tok
            .to_string(false)
            .map_err(|e| Error::Native(format!("tokenizer to JSON: {e}")))
    }

    /// Ids `0..vocab_size` (one past the largest id; ids without a token are gaps).
    pub fn vocab_size(&self) -> u32 {
        self.vocab_size
    }

    /// Id of [`BOUNDARY`].
    pub fn boundary_id(&self) -> u32 {
        self.boundary
    }

    /// Id of the model's unknown token, if it has one (byte-level BPE has none).
    pub fn unk_id(&self) -> Option<u32> {
        self.unk
    }

    /// Whether decoding is byte-level (`ByteLevel` decoder): a token then stands for bytes, and
    /// [`Subword::char_counts`] counts exactly.
    pub fn byte_level(&self) -> bool {
        self.byte_level
    }

    /// Token string of every id in id order (`""` for gaps), as the vocabulary writes them (byte
    /// tokens in GPT-2's byte chars, e.g. `Ġthe` for " the").
    pub fn tokens(&self) -> Vec<String> {
        let mut out = vec![String::new(); self.vocab_size as usize];
        for (t, id) in self.tok.get_vocab(true) {
            out[id as usize] = t;
        }
        out
    }

    /// Ids of `text` without special tokens or post-processing, encoded on all cores in parts cut
    /// at cut points (the same ids as one encoding of the whole text), through the ids-only
    /// encoder where the pipeline allows it (the same ids as the crate's `encode_fast`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoded = parts(text)
            .into_par_iter()
            .map(|p| self.encode_part(p))
            .collect::<Result<Vec<_>>>()?;
        Ok(encoded.concat())
    }

    /// Ids of one part of a text.
    fn encode_part(&self, part: &str) -> Result<Vec<u32>> {
        match &self.fast {
            Some(fast) => fast.encode(self.tok.get_model(), part),
            None => self.encode_crate(part),
        }
    }

    /// Ids of `text` through the crate's `encode_fast`, in one piece.
    fn encode_crate(&self, text: &str) -> Result<Vec<u32>> {
        self.tok
            .encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| Error::Data(format!("tokenizer: {e}")))
    }

    /// Text of `ids` through the tokenizer's decoder (special tokens kept as their text); bytes that
    /// are not valid UTF-8 become U+FFFD.
    /// @throws `Error::Data` for an id outside the vocabulary.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        if let Some(&bad) = ids.iter().find(|&&id| self.tok.id_to_token(id).is_none()) {
            return Err(Error::Data(format!(
                "token id {bad} is outside the vocabulary [0, {})",
                self.vocab_size
            )));
        }
        self.tok
            .decode(ids, false)
            .map_err(|e| Error::Data(format!("tokenizer decode: {e}")))
    }

    /// Bytes of every id for a byte-level tokenizer (special tokens: their text's UTF-8; the
    /// boundary: `\n`, the text lstmgen decodes it to); `None` for other tokenizers.
    pub fn token_bytes(&self) -> Option<Vec<Vec<u8>>> {
        if !self.byte_level {
            return None;
        }
        let map = byte_of_char();
        let specials = self.tok.get_added_tokens_decoder();
        Some(
            self.tokens()
                .iter()
                .enumerate()
                .map(|(id, t)| {
                    if id as u32 == self.boundary {
                        return b"\n".to_vec();
                    }
                    if specials.contains_key(&(id as u32)) {
                        return t.as_bytes().to_vec();
                    }
                    t.chars()
                        .map(|c| map.get(&c).copied())
                        .collect::<Option<Vec<u8>>>()
                        .unwrap_or_else(|| t.as_bytes().to_vec())
                })
                .collect(),
        )
    }

    /// Characters (Unicode code points) each id adds to decoded text, for a byte-level tokenizer:
    /// the bytes of the token that start a UTF-8 character (so the sum over a text's ids is its
    /// number of code points); `None` for other tokenizers.
    pub fn char_counts(&self) -> Option<Vec<u32>> {
        self.token_bytes().map(|all| {
            all.iter()
                .map(|b| b.iter().filter(|&&x| x & 0xC0 != 0x80).count() as u32)
                .collect()
        })
    }
}

/// The unknown token of the tokenizer's model, read from its JSON (`unk_token`, or Unigram's
/// `unk_id`).
fn unk_token(tok: &Tokenizer) -> Option<String> {
    let model = serde_json::to_value(tok.get_model()).ok()?;
    if let Some(t) = model.get("unk_token").and_then(|v| v.as_str()) {
        return Some(t.to_string());
    }
    let id = model.get("unk_id")?.as_u64()?;
    tok.id_to_token(id as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

    fn trained(text: &str, vocab_size: usize) -> Subword {
        let mut counter = WordCounter::default();
        counter.add(text).unwrap();
        Subword::train(
            &counter,
            &TrainOptions {
                vocab_size,
                min_frequency: 0,
            },
        )
        .unwrap()
    }

    #[test]
    fn round_trips_and_boundary_is_id_0() {
        let t = trained("the cat sat on the mat. the cat ate.\r\n\tthe end", 300);
        assert_eq!(t.boundary_id(), 0);
        assert_eq!(t.unk_id(), None);
        for s in ["the cat", " leading\u{0}nul", "é👍🏽 中文 ع", "<|endoftext|>"] {
            let ids = t.encode(s).unwrap();
            assert!(!ids.contains(&0), "{s:?} must not encode to the boundary");
            assert_eq!(t.decode(&ids).unwrap(), s);
            let counts = t.char_counts().unwrap();
            let n: u32 = ids.iter().map(|&i| counts[i as usize]).sum();
            assert_eq!(n as usize, s.chars().count());
        }
    }

    #[test]
    fn parts_end_at_cut_points_and_encode_as_the_whole() {
        let word = "ab, cd  ef\n\n gh 12 ";
        let text: String = word.repeat(3 * PART_BYTES / word.len());
        let p = parts(&text);
        assert!(p.len() >= 3);
        assert_eq!(p.concat(), text);
        let t = trained(&text, 280);
        let whole = t.tok.encode_fast(text.as_str(), false).unwrap();
        assert_eq!(t.encode(&text).unwrap(), whole.get_ids());
    }

    /// Text with every kind of char the patterns treat apart, in a seeded random order: letters
    /// (Latin, CJK, Arabic, combining marks), digits, punctuation, emoji with ZWJ and modifiers,
    /// contractions, and runs of spaces, tabs, CR, LF, NUL and other controls.
    fn mixed_text(n: usize, seed: u64) -> String {
        use rand::{Rng, SeedableRng};
        let pieces = [
            "the",
            " cat",
            "'s",
            "'ll",
            "I'm",
            " 42",
            "3.14",
            ", ",
            ". ",
            "!?",
            "  ",
            "   ",
            "\t",
            "\r\n",
            "\n\n",
            " \n ",
            "\u{0}",
            "\u{7}",
            "é",
            "e\u{301}",
            "中文",
            "العربية",
            "👍🏽",
            "👩‍🚀",
            " (x)",
            "<|endoftext|>",
            "\u{a0}",
            "\u{2028}",
            "--",
            "_",
            " ",
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| pieces[rng.random_range(0..pieces.len())])
            .collect()
    }

    /// `t` with GPT-2's `ByteLevel` pre-tokenizer, as BPEs trained before [`SPLIT_PATTERN`] had.
    fn with_gpt2_pattern(t: &Subword) -> Subword {
        let mut tok = t.tok.clone();
        tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        Subword::new(tok).unwrap()
    }

    #[test]
    fn ids_only_encoding_gives_the_crate_ids_for_both_patterns() {
        let text = mixed_text(40_000, 7);
        let t = trained(&text, 600);
        let old = with_gpt2_pattern(&t);
        for (name, tok) in [("trained", &t), ("gpt2", &old)] {
            assert!(tok.fast.is_some(), "{name} takes the ids-only path");
            for s in [
                text.as_str(),
                "",
                " ",
                "a   b",
                "  x  ",
                "\n\n\nA",
                "it's  ok\t\t",
            ] {
                let whole = tok.encode_crate(s).unwrap();
                assert_eq!(tok.encode(s).unwrap(), whole, "{name}: {s:?}");
                // every cut point, one at a time, leaves the ids as they are
                if s.len() < 100 {
                    for i in (1..s.len()).filter(|&i| s.is_char_boundary(i) && is_cut(s, i)) {
                        let (a, b) = s.split_at(i);
                        let cut = [tok.encode_crate(a).unwrap(), tok.encode_crate(b).unwrap()];
                        assert_eq!(cut.concat(), whole, "{name}: {s:?} cut at {i}");
                    }
                }
            }
        }
        // the patterns differ only where a whitespace run ends in a space before a word
        assert_eq!(t.encode("a b").unwrap(), old.encode("a b").unwrap());
        assert_ne!(t.encode("a   b").unwrap(), old.encode("a   b").unwrap());
    }

    #[test]
    fn a_normalizing_tokenizer_takes_the_crate_path() {
        let t = trained("Hello World hello world", 270);
        let mut json: serde_json::Value = serde_json::from_str(&t.to_json().unwrap()).unwrap();
        json["normalizer"] = serde_json::json!({ "type": "Lowercase" });
        let lower = Subword::from_json(&json.to_string()).unwrap();
        assert!(lower.fast.is_none());
        assert_eq!(lower.encode("HELLO").unwrap(), t.encode("hello").unwrap());
    }

    #[test]
    fn long_words_reach_the_trainer_in_pieces() {
        let mut counts = AHashMap::new();
        counts.insert(CompactString::from("ab"), 3u64);
        assert!(capped_counts(&counts, 4).is_none());
        counts.insert(CompactString::from("\u{e9}".repeat(10)), 2);
        let capped = capped_counts(&counts, 4).unwrap();
        assert!(capped.keys().all(|w| w.chars().count() <= 4));
        let chars = |m: &AHashMap<CompactString, u64>| -> u64 {
            m.iter().map(|(w, n)| w.chars().count() as u64 * n).sum()
        };
        assert_eq!(chars(&capped), chars(&counts));
        assert_eq!(capped[&CompactString::from("\u{e9}".repeat(4))], 4);
        assert_eq!(capped[&CompactString::from("\u{e9}".repeat(2))], 2);
        // a long run trains, and its text still round-trips
        let run = "a".repeat(20_000) + " b";
        let t = trained(&run, 300);
        assert_eq!(t.decode(&t.encode(&run).unwrap()).unwrap(), run);
    }

    #[test]
    fn counts_are_those_of_the_crate_pre_tokenizer() {
        let text = mixed_text(30_000, 5);
        let mut counter = WordCounter::default();
        counter.add(&text).unwrap();
        let mut pts = PreTokenizedString::from(text.as_str());
        byte_level_pre_tokenizer()
            .unwrap()
            .pre_tokenize(&mut pts)
            .unwrap();
        let mut expected: AHashMap<CompactString, u64> = AHashMap::new();
        for (word, _, _) in pts.get_splits(OffsetReferential::Original, OffsetType::None) {
            *expected.entry(CompactString::from(word)).or_default() += 1;
        }
        assert_eq!(counter.counts, expected);
    }

    #[test]
    fn counted_tokens_equal_the_encoded_length() {
        let text = mixed_text(60_000, 3);
        let mut counter = WordCounter::default();
        counter.add(&text).unwrap();
        let t = Subword::train(
            &counter,
            &TrainOptions {
                vocab_size: 500,
                min_frequency: 2,
            },
        )
        .unwrap();
        assert_eq!(
            counter.tokens(&t).unwrap(),
            t.encode(&text).unwrap().len() as u64
        );
    }

    #[test]
    fn last_cut_is_before_the_last_whitespace_run() {
        assert_eq!(last_cut("ab cd"), Some(2));
        assert_eq!(last_cut("ab  \ncd  "), Some(7));
        assert_eq!(last_cut("abcd"), None);
        assert_eq!(last_cut("  "), None);
    }

    #[test]
    fn small_vocabularies_and_bad_json_are_data_errors() {
        let mut counter = WordCounter::default();
        counter.add("x").unwrap();
        let err = Subword::train(
            &counter,
            &TrainOptions {
                vocab_size: 100,
                min_frequency: 0,
            },
        )
        .err()
        .unwrap();
        assert_eq!(err.code(), "E_DATA");
        assert_eq!(Subword::from_json("{").err().unwrap().code(), "E_DATA");
    }

    #[test]
    fn json_round_trip_keeps_ids() {
        let t = trained("hello world hello there", 270);
        let u = Subword::from_json(&t.to_json().unwrap()).unwrap();
        assert_eq!(
            u.encode("hello there").unwrap(),
            t.encode("hello there").unwrap()
        );
        assert_eq!(u.vocab_size(), t.vocab_size());
    }
}

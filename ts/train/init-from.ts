/**
 * Fine-tuning (`initFrom`): a run that starts from a saved model's weights and tokenizer on a new corpus, with a
 * fresh optimizer and step count. The architecture is the model's; symbols of the new corpus that its
 * vocabulary lacks map to `<unk>`, or with `extendVocab` get new ids after the model's, with new embedding and
 * output rows drawn as a fresh model's (the engine's `forFineTuning`).
 */
import type { TrainConfigInput } from '../config';
import { type CorpusOptions, type TokenizedCorpus, tokenizeCorpus } from '../corpus/dataset';
import type { CorpusSource, ResolvedCorpus } from '../corpus/sources';
import { ConfigError } from '../errors';
import type { TrainWarningCode } from '../events';
import type { LstmModel } from '../model';
import type { NativeHandle } from '../native/handle';
import { type Tokenizer, type TokenizerOptions, tokenizerFromJSON, UNK } from '../tokenizer';

/**
 * The train options a fine-tuning run of `base` has: the architecture fields that `input` leaves unset are the
 * model's (`tokenizer`, `embeddingDim`, `hiddenSize`, `numLayers`, `projSize`; for word and bpe models
 * `vocabSize`; for word models `lowercase` and `wordSplit`),
 * and `dropout` defaults to the model's; everything else is `input`'s.
 * @param file the model file, as named in messages.
 * @throws ConfigError naming the first architecture field that `input` sets to a value other than the model's,
 *   with both values.
 */
export function initInput(input: TrainConfigInput, base: LstmModel, file: string): TrainConfigInput {
  const shape = base.native.config();
  const json = base.tokenizer.toJSON();
  const locked: Record<string, unknown> = {
    tokenizer: json.type,
    embeddingDim: shape.embeddingDim,
    hiddenSize: shape.hiddenSize,
    numLayers: shape.numLayers,
    projSize: shape.projSize ?? 0,
    // the vocabulary size is the model's for word and bpe models (a char model's takes no vocabSize)
    ...(json.type === 'word' || json.type === 'bpe'
      ? { vocabSize: base.config.vocabSize ?? base.tokenizer.vocabSize }
      : {}),
    ...(json.type === 'word' ? { lowercase: json.lowercase, wordSplit: json.split ?? 'punctuation' } : {}),
  };
  const merged: Record<string, unknown> = { ...input };
  for (const [field, kept] of Object.entries(locked)) {
    const given = (input as Record<string, unknown>)[field];
    if (given === undefined) merged[field] = kept;
    else if (given !== kept) {
      throw new ConfigError(
        field,
        `cannot change when fine-tuning: the model ${JSON.stringify(file)} has ${JSON.stringify(kept)}, ` +
          `got ${JSON.stringify(given)}; leave it unset to keep the model's, or train a new model without initFrom`,
      );
    }
  }
  if (input.dropout === undefined) merged.dropout = base.config.dropout ?? shape.dropout; // the stored value is exact
  return merged as TrainConfigInput;
}

/** Where the vocabulary of a run's corpus comes from when the run continues a model's (see {@link vocabularyCorpus}). */
export interface StartVocabulary {
  /** The tokenizer of the model the run starts from (`initFrom`) or of the checkpoint resumed. */
  tokenizer: Tokenizer;
  /** Add the corpus's symbols that `tokenizer` lacks (`extendVocab` of the run). */
  extend: boolean;
  /**
   * False when resuming: the checkpoint's vocabulary is the run's, so a corpus with symbols it lacks under
   * `extend` is not the corpus of the run.
   */
  mayGrow: boolean;
}

/**
 * Tokenize the corpus of a run that starts from a model's vocabulary. With `extend`, the corpus's own
 * vocabulary is built (with the tokenizer `options`: the model's settings) and its tokens missing from
 * `from.tokenizer` are appended, in the order of that vocabulary (code points for char, frequency for word);
 * then the corpus is encoded with the result (beyond-vocabulary words of a word corpus are `<unk>`, silently, as
 * in any run), all in one tokenization (two passes over the text, as any run's). Without `extend` it is encoded with
 * `from.tokenizer` and symbols outside it map to `<unk>` with one `LSTMGEN_UNKNOWN_SYMBOLS` warning through
 * `warn`. Records are framed only when the vocabulary has the boundary token (with `extend` it is added when the
 * corpus needs it).
 * @throws ConfigError (field `corpus`) when resuming (`!mayGrow`) with `extend` and the corpus has symbols the
 *   checkpoint lacks; as `tokenizeCorpus` otherwise.
 */
export async function vocabularyCorpus(
  source: CorpusSource | ResolvedCorpus,
  from: StartVocabulary,
  options: TokenizerOptions,
  corpusOptions: CorpusOptions,
  warn: (message: string, code: TrainWarningCode) => void,
): Promise<TokenizedCorpus> {
  if (!from.extend) {
    return tokenizeCorpus(source, from.tokenizer, corpusOptions, {
      onWarning: (m) =>
        warn(`corpus: ${m} (extendVocab, --extend-vocab, adds them to the vocabulary)`, 'LSTMGEN_UNKNOWN_SYMBOLS'),
    });
  }
  // the corpus's own vocabulary and its ids come from one reading: the vocabulary is grown before encoding
  const derive = {
    key: JSON.stringify({ extends: from.tokenizer.toJSON(), mayGrow: from.mayGrow }),
    from: (own: Tokenizer) => {
      if (JSON.stringify(own.toJSON()) === JSON.stringify(from.tokenizer.toJSON())) return own; // same ids
      const added = own.tokens.filter((t) => t !== UNK && from.tokenizer.idOf(t) === undefined);
      if (added.length > 0 && !from.mayGrow) {
        throw new ConfigError(
          'corpus',
          `has ${added.length} symbols that the checkpoint's vocabulary lacks (${added
            .slice(0, 5)
            .map((t) => JSON.stringify(t))
            .join(', ')}${added.length > 5 ? ', ...' : ''}); resume with the corpus the checkpoint was trained on`,
        );
      }
      return added.length > 0 ? extendTokenizer(from.tokenizer, added) : from.tokenizer;
    },
  };
  return tokenizeCorpus(source, options, corpusOptions, { onWarning: () => {}, derive });
}

/**
 * `tokenizer` with `added` tokens appended (ids `vocabSize`, `vocabSize + 1`, ...); its own ids are unchanged.
 * @throws ModelFileError when the result is not a valid vocabulary of its kind (e.g. a char token of two code points).
 */
export function extendTokenizer(tokenizer: Tokenizer, added: readonly string[]): Tokenizer {
  const json = tokenizer.toJSON();
  if (json.type === 'bpe') return tokenizer; // a byte-level vocabulary covers every text
  return tokenizerFromJSON({ ...json, tokens: [...json.tokens, ...added] });
}

/**
 * The native model a fine-tuning run of `base` starts from: `base`'s weights, with new embedding and output rows
 * (weight and bias) for the ids `tokenizer` has beyond `base`'s vocabulary, drawn as a fresh model of `seed`
 * draws them (the old rows unchanged, so the logits of old ids are `base`'s); training `dropout`; a fresh
 * optimizer and step count 0. `base` is left as it was.
 * @throws ConfigError (field `corpus`) when `tokenizer` does not begin with `base`'s vocabulary; DataError when the
 *   grown model does not fit in memory.
 */
export function fineTuneNative(base: LstmModel, tokenizer: Tokenizer, dropout: number, seed: number): NativeHandle {
  const old = base.tokenizer.tokens;
  if (tokenizer.kind !== base.tokenizer.kind || old.some((t, i) => tokenizer.tokens[i] !== t)) {
    throw new ConfigError('corpus', "the fine-tuning vocabulary must begin with the model's own, in its order");
  }
  return base.native.forFineTuning(tokenizer.vocabSize, dropout, seed);
}

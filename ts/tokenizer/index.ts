/** Tokenizer construction and (de)serialization. */
import * as path from 'node:path';
import { z } from 'zod';
import { ConfigError, DataError, ModelFileError } from '../errors';
import { readRegularFile } from '../io/files';
import { BOUNDARY, type Tokenizer, type TokenizerJSON, type TokenizerKind, UNK, type VocabCounter } from './base';
import { BPE_MIN_FREQUENCY, BpeTokenizer, MIN_BPE_VOCAB } from './bpe';
import { CharTokenizer } from './char';
import { EOS, WORD_SPLITS, type WordSplit, WordTokenizer } from './word';

export type {
  EncodeOptions,
  StreamEncoder,
  TokenIds,
  Tokenizer,
  TokenizerJSON,
  TokenizerKind,
  VocabCounter,
} from './base';
export { BOUNDARY_TEXT, codePoints, idArray, UnknownSymbols, warnUnknownSymbols } from './base';
export { TextStream } from './stream';
export { MAX_WORD, WORD_SPLITS, type WordSplit } from './word';
export { BOUNDARY, BPE_MIN_FREQUENCY, BpeTokenizer, CharTokenizer, EOS, MIN_BPE_VOCAB, UNK, WordTokenizer };

/**
 * Options of {@link buildTokenizer}; `vocabSize` applies to word and bpe tokenizers, `lowercase` to word
 * tokenizers only, and so does `wordSplit`.
 */
export interface TokenizerOptions {
  kind: TokenizerKind;
  vocabSize: number;
  lowercase: boolean;
  /** How words are cut (see {@link WordSplit}); unset: `'punctuation'`. */
  wordSplit?: WordSplit;
}

/** What the vocabulary of each tokenizer but word is, for the messages that refuse an option it does not use. */
const OWN_VOCABULARY = {
  char: 'the char vocabulary is every symbol of the training text',
  bpe: 'the bpe tokenizer learns its tokens from the bytes of the text as they are',
  file: 'a tokenizer.json file brings its own vocabulary and rules',
} as const;

/** The tokenizer options of `train()` that apply to some tokenizers only, and the kinds each applies to. */
const APPLIES_TO: ReadonlyArray<[field: 'vocabSize' | 'lowercase' | 'wordSplit', kinds: readonly TokenizerKind[]]> = [
  ['vocabSize', ['word', 'bpe']],
  ['lowercase', ['word']],
  ['wordSplit', ['word']],
];

/**
 * Check that the tokenizer options the user gave (`given`: the options as written, before defaults) apply to
 * `tokenizer`, the run's tokenizer: `vocabSize` to word and bpe, `lowercase` and `wordSplit` to word only (a
 * tokenizer.json file takes none), so that none is silently ignored.
 * @throws ConfigError naming the first option given that `tokenizer` ignores, the tokenizers it applies to and
 *   what to change.
 */
export function assertTokenizerOptionsApply(
  tokenizer: TokenizerKind | { file: string },
  given: { vocabSize?: unknown; lowercase?: unknown; wordSplit?: unknown },
): void {
  const kind = typeof tokenizer === 'object' ? 'file' : tokenizer;
  if (kind === 'word') return;
  for (const [field, kinds] of APPLIES_TO) {
    if (given[field] === undefined || (kinds as readonly string[]).includes(kind)) continue;
    const names = kinds.length === 1 ? `the ${kinds[0]} tokenizer` : `the ${kinds.join(' and ')} tokenizers`;
    throw new ConfigError(
      field,
      `applies to ${names} only: ${OWN_VOCABULARY[kind]}; drop ${field} or choose tokenizer ${kinds.map((k) => `"${k}"`).join(' or ')}`,
    );
  }
}

/** A counter of the text a vocabulary is built from, and the build. */
export interface VocabBuilder {
  /** Receives the text, in pieces, one record at a time. */
  readonly counter: VocabCounter;
  /**
   * The vocabulary of the text counted; with `boundary` it also has {@link BOUNDARY}. `warn` receives a warning
   * about the text (word tokens of scripts without spaces); default `process.emitWarning`.
   */
  build(boundary: boolean, warn?: (message: string) => void): Tokenizer | Promise<Tokenizer>;
  /**
   * Whether `counter.tokens` counts the tokens of the vocabulary `build` makes as the text comes, record by
   * record (char, word). False for bpe, whose counter sees pre-tokens before the merges exist: after `build`,
   * `counter.tokens` is the total of the text counted, and the records' lengths come out of encoding it.
   */
  readonly countsTokens: boolean;
}

/** A {@link VocabBuilder} for a tokenizer of `options`. */
export function vocabBuilder(options: TokenizerOptions): VocabBuilder {
  if (options.kind === 'char') {
    const counter = CharTokenizer.counter();
    return { counter, build: (boundary) => counter.build(boundary), countsTokens: true };
  }
  if (options.kind === 'bpe') {
    const counter = BpeTokenizer.counter();
    // the boundary is always in a BPE vocabulary (id 0), as in GPT-2's
    return { counter, build: () => counter.build(options.vocabSize), countsTokens: false };
  }
  const counter = WordTokenizer.counter(options.lowercase, options.wordSplit);
  return {
    counter,
    build: (boundary, warn) => counter.build({ vocabSize: options.vocabSize, boundary, warn }),
    countsTokens: true,
  };
}

/**
 * Build the vocabulary of `text` (the training text), without a boundary token for char and word; a bpe
 * vocabulary (trained on a worker thread, hence the promise) always has one.
 * @throws DataError for a bpe vocabSize below 257.
 */
export function buildTokenizer(text: string, options: TokenizerOptions & { kind: 'bpe' }): Promise<Tokenizer>;
export function buildTokenizer(text: string, options: TokenizerOptions & { kind: 'char' | 'word' }): Tokenizer;
export function buildTokenizer(text: string, options: TokenizerOptions): Tokenizer | Promise<Tokenizer>;
export function buildTokenizer(text: string, options: TokenizerOptions): Tokenizer | Promise<Tokenizer> {
  const { counter, build } = vocabBuilder(options);
  counter.write(text);
  counter.end();
  return build(false);
}

/** A counter of the tokens of text given in pieces for a given `tokenizer` (no vocabulary is built). */
export function tokenCounter(tokenizer: Tokenizer): VocabCounter {
  if (tokenizer instanceof BpeTokenizer) return tokenizer.tokenCounter();
  return tokenizer instanceof WordTokenizer
    ? WordTokenizer.counter(tokenizer.lowercase, tokenizer.split)
    : CharTokenizer.counter();
}

const unique = (tokens: string[]) => new Set(tokens).size === tokens.length;
// The boundary token may follow the specials (a vocabulary built from a corpus) or come later (one extended for
// fine-tuning appends the tokens it adds, the boundary among them).
const JsonSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('char'),
    tokens: z
      .array(z.string())
      .refine(
        (t) => t[0] === UNK && t.slice(1).every((s) => s === BOUNDARY || [...s].length === 1) && unique(t),
        'bad char vocabulary',
      ),
  }),
  z.object({ type: z.literal('bpe'), json: z.string() }),
  z.object({
    type: z.literal('word'),
    lowercase: z.boolean(),
    split: z.enum(WORD_SPLITS).optional(),
    tokens: z.array(z.string()).refine((t) => t[0] === UNK && t[1] === EOS && unique(t), 'bad word vocabulary'),
  }),
]);

/**
 * Restore a tokenizer from {@link Tokenizer.toJSON} output (an object or its JSON text); a bpe tokenizer's
 * `tokenizer.json` is loaded by the `tokenizers` crate, which checks it.
 * @throws ModelFileError when the value is not a valid serialized tokenizer (it comes from a model file).
 */
export function tokenizerFromJSON(json: TokenizerJSON | string): Tokenizer {
  let value: unknown = json;
  try {
    if (typeof json === 'string') value = JSON.parse(json);
  } catch (err) {
    throw new ModelFileError(`tokenizer metadata is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = JsonSchema.safeParse(value);
  if (!parsed.success) {
    throw new ModelFileError(`tokenizer metadata is invalid: ${parsed.error.issues[0].message}`);
  }
  const data = parsed.data;
  if (data.type === 'bpe') {
    try {
      return BpeTokenizer.fromJSON(data.json);
    } catch (err) {
      throw new ModelFileError(`tokenizer metadata is invalid: ${(err as Error).message}`, { cause: err });
    }
  }
  return data.type === 'char'
    ? new CharTokenizer(data.tokens)
    : new WordTokenizer(data.tokens, data.lowercase, data.split);
}

/** What a Hugging Face `tokenizer.json` holds, for the errors of {@link tokenizerFromFile}. */
const TOKENIZER_JSON_HOLDS =
  'a tokenizer.json is the file that Hugging Face tokenizers writes (tokenizer.save(path), or the tokenizer.json ' +
  'of save_pretrained()): a JSON object whose "model" holds the vocabulary (e.g. {"type": "BPE", "vocab": {...}, ' +
  '"merges": [...]}), with its "normalizer", "pre_tokenizer", "decoder" and "added_tokens"';

/** Why the text `json` is plainly no tokenizer.json (not JSON, not an object, no "model"), else undefined. */
function tokenizerJsonProblem(json: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    return `it is not JSON (${(err as Error).message})`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `it holds ${Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`}, not an object`;
  }
  const { model, type } = value as { model?: unknown; type?: unknown };
  if (typeof type === 'string' && ['char', 'word', 'bpe'].includes(type) && model === undefined) {
    return `it is lstmgen's own ${type} tokenizer JSON (tokenizer.toJSON()), not a Hugging Face one`;
  }
  if (typeof model !== 'object' || model === null) return 'it has no "model" object';
  return undefined;
}

/**
 * Load a Hugging Face `tokenizer.json` file (the `tokenizer: { file }` option) as a {@link BpeTokenizer}.
 * @throws ConfigError (field `tokenizer.file`) when the file cannot be read, is not a regular file (a FIFO, a
 *   device: never read, see {@link readRegularFile}) or is not a tokenizer.json the
 *   `tokenizers` crate loads: the message names the file, says why and what a tokenizer.json holds.
 */
export function tokenizerFromFile(file: string): BpeTokenizer {
  const json = readRegularFile(file, (reason) => {
    // a name without a folder or .json is more likely a misspelt kind than a file
    const kinds =
      path.extname(file) === '' && !file.includes(path.sep)
        ? ' (tokenizer is "char", "word", "bpe" or a tokenizer.json file)'
        : '';
    return new ConfigError('tokenizer.file', `cannot read ${JSON.stringify(file)}: ${reason}${kinds}`);
  }).toString('utf8');
  try {
    return BpeTokenizer.fromJSON(json);
  } catch (err) {
    if (!(err instanceof DataError)) throw err;
    const problem = tokenizerJsonProblem(json); // parsed again only on failure, for a plainer reason
    const why = problem ? ` is not a Hugging Face tokenizer.json: ${problem}` : `: ${err.message}`;
    throw new ConfigError('tokenizer.file', `${JSON.stringify(file)}${why}; ${TOKENIZER_JSON_HOLDS}`);
  }
}

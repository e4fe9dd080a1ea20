/** Tokenizer construction and (de)serialization. */
import { z } from 'zod';
import { ModelFileError } from '../errors';
import { BOUNDARY, type Tokenizer, type TokenizerJSON, UNK, type VocabCounter } from './base';
import { CharTokenizer } from './char';
import { EOS, WordTokenizer } from './word';

export type { EncodeOptions, StreamEncoder, TokenIds, Tokenizer, TokenizerJSON, VocabCounter } from './base';
export { BOUNDARY_TEXT, idArray, UnknownSymbols, warnUnknownSymbols } from './base';
export { MAX_WORD } from './word';
export { BOUNDARY, CharTokenizer, EOS, UNK, WordTokenizer };

/** Options of {@link buildTokenizer}; `vocabSize` and `lowercase` apply to word tokenizers only. */
export interface TokenizerOptions {
  kind: 'char' | 'word';
  vocabSize: number;
  lowercase: boolean;
}

/** A counter of the text a vocabulary is built from, and the build. */
export interface VocabBuilder {
  /** Receives the text, in pieces, one record at a time. */
  readonly counter: VocabCounter;
  /**
   * The vocabulary of the text counted; with `boundary` it also has {@link BOUNDARY}. `warn` receives a warning
   * about the text (word tokens of scripts without spaces); default `process.emitWarning`.
   */
  build(boundary: boolean, warn?: (message: string) => void): Tokenizer;
}

/** A {@link VocabBuilder} for a tokenizer of `options`. */
export function vocabBuilder(options: TokenizerOptions): VocabBuilder {
  if (options.kind === 'char') {
    const counter = CharTokenizer.counter();
    return { counter, build: (boundary) => counter.build(boundary) };
  }
  const counter = WordTokenizer.counter(options.lowercase);
  return { counter, build: (boundary, warn) => counter.build({ vocabSize: options.vocabSize, boundary, warn }) };
}

/** Build the vocabulary of `text` (the training text), without a boundary token. */
export function buildTokenizer(text: string, options: TokenizerOptions): Tokenizer {
  const { counter, build } = vocabBuilder(options);
  counter.write(text);
  counter.end();
  return build(false);
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
  z.object({
    type: z.literal('word'),
    lowercase: z.boolean(),
    tokens: z.array(z.string()).refine((t) => t[0] === UNK && t[1] === EOS && unique(t), 'bad word vocabulary'),
  }),
]);

/**
 * Restore a tokenizer from {@link Tokenizer.toJSON} output (an object or its JSON text).
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
  return data.type === 'char' ? new CharTokenizer(data.tokens) : new WordTokenizer(data.tokens, data.lowercase);
}

/** Tokenizer construction and (de)serialization. */
import { z } from 'zod';
import { ModelFileError } from '../errors';
import { type Tokenizer, type TokenizerJSON, UNK } from './base';
import { CharTokenizer } from './char';
import { EOS, WordTokenizer } from './word';

export type { EncodeOptions, Tokenizer, TokenizerJSON } from './base';
export { warnUnknownSymbols } from './base';
export { CharTokenizer, EOS, UNK, WordTokenizer };

/** Options of {@link buildTokenizer}; `vocabSize` and `lowercase` apply to word tokenizers only. */
export interface TokenizerOptions {
  kind: 'char' | 'word';
  vocabSize: number;
  lowercase: boolean;
}

/** Build the vocabulary of `text` (the training text). */
export function buildTokenizer(text: string, options: TokenizerOptions): Tokenizer {
  return options.kind === 'char' ? CharTokenizer.fromText(text) : WordTokenizer.fromText(text, options);
}

const unique = (tokens: string[]) => new Set(tokens).size === tokens.length;
const JsonSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('char'),
    tokens: z
      .array(z.string())
      .refine((t) => t[0] === UNK && t.slice(1).every((s) => [...s].length === 1) && unique(t), 'bad char vocabulary'),
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

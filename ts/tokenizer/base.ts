/**
 * What every tokenizer shares: a fixed id -> token table with `<unk>` at id 0, an optional record-boundary
 * token, incremental (streaming) encoding of text pieces into typed arrays of ids, and unknown pieces mapped
 * to `<unk>` (one warning per call, naming a bounded number of them, each cut to a bounded length) or rejected
 * under `strict`.
 */
import { DataError } from '../errors';

/** The unknown-symbol token; always id 0. */
export const UNK = '<unk>';

/**
 * The record-boundary token: it joins the documents and records of a corpus (and frames each record), so a
 * model learns where records start and end. It never comes from text: only the corpus framing inserts it.
 * Present only in vocabularies built from a corpus of several documents or of records.
 */
export const BOUNDARY = '<|endoftext|>';

/** Text that `decode` writes for {@link BOUNDARY}: a line break. */
export const BOUNDARY_TEXT = '\n';

/** Token ids in the smallest unsigned type that holds every id of the vocabulary. */
export type TokenIds = Uint8Array | Uint16Array | Uint32Array;

/**
 * A zeroed id array of `length` ids for a vocabulary of `vocabSize` ids: `Uint8Array` up to 256 ids,
 * `Uint16Array` up to 65,536, else `Uint32Array`.
 */
export function idArray(vocabSize: number, length: number): TokenIds {
  if (vocabSize <= 0x100) return new Uint8Array(length);
  if (vocabSize <= 0x10000) return new Uint16Array(length);
  return new Uint32Array(length);
}

/** The default receiver of unknown-symbol warnings: `process.emitWarning(message, { code: 'LSTMGEN_UNKNOWN_SYMBOLS' })`. */
export function warnUnknownSymbols(message: string): void {
  process.emitWarning(message, { code: 'LSTMGEN_UNKNOWN_SYMBOLS' });
}

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /** Throw a DataError on symbols outside the vocabulary instead of mapping them to `<unk>`. */
  strict?: boolean;
  /**
   * Receives the single warning of a call that mapped symbols to `<unk>`.
   * Default: {@link warnUnknownSymbols}.
   */
  onWarning?: (message: string) => void;
}

/**
 * Serialized tokenizer, stored as JSON in the model file metadata (key `tokenizer`). A `bpe` tokenizer holds
 * its Hugging Face `tokenizer.json` text in `json`.
 */
export type TokenizerJSON =
  | { type: 'char'; tokens: string[] }
  | { type: 'word'; lowercase: boolean; split?: 'punctuation' | 'whitespace'; tokens: string[] }
  | { type: 'bpe'; json: string };

/** The kinds of tokenizer: code points, words, or subwords of a Hugging Face tokenizer (see tokenizer/bpe). */
export type TokenizerKind = 'char' | 'word' | 'bpe';

/** Code points of `s` (a surrogate pair counts once, a lone surrogate once). */
export function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xdc00 && c <= 0xdfff && i > 0) {
      const h = s.charCodeAt(i - 1);
      if (h >= 0xd800 && h <= 0xdbff) n--;
    }
  }
  return n;
}

/** Unknown symbols a warning or error names; the others are counted ("and N more"). */
export const MAX_EXAMPLES = 20;
/** Code points of an unknown symbol shown in a message; a longer one is cut, with an ellipsis and its length. */
export const MAX_EXAMPLE_LENGTH = 40;
/** Distinct unknown symbols an encoder keeps to count them; past this many a message says "over". */
export const MAX_DISTINCT = 100_000;

/**
 * The unknown symbols of a message: the first {@link MAX_EXAMPLES} of `symbols` (distinct, in order of first
 * appearance) quoted, each cut to {@link MAX_EXAMPLE_LENGTH} code points (`"abc…"… (90000 characters)`), then
 * `and N more` for the rest.
 */
export function describeSymbols(symbols: readonly string[]): string {
  const shown = symbols.slice(0, MAX_EXAMPLES).map((s) => {
    const points = [...s];
    if (points.length <= MAX_EXAMPLE_LENGTH) return JSON.stringify(s);
    return `${JSON.stringify(points.slice(0, MAX_EXAMPLE_LENGTH).join(''))}… (${points.length} characters)`;
  });
  const rest = symbols.length - shown.length;
  return rest > 0 ? `${shown.join(', ')} and ${rest} more` : shown.join(', ');
}

/** Symbols an encoder mapped to `<unk>`: how many, and the distinct ones (up to {@link MAX_DISTINCT}) in order of first occurrence. */
export class UnknownSymbols {
  /** Occurrences mapped to `<unk>`. */
  count = 0;
  private readonly distinct = new Set<string>();

  /**
   * @param replacement what messages say the symbols became (default `<unk>`); `what` what they are (default
   *   `not in the vocabulary`).
   */
  constructor(
    private readonly replacement: string = UNK,
    private readonly what: string = 'not in the vocabulary',
  ) {}

  /** Record one occurrence of the symbol `symbol()` returns (called only while fewer than MAX_DISTINCT are held). */
  add(symbol: () => string): void {
    this.count++;
    if (this.distinct.size < MAX_DISTINCT) this.distinct.add(symbol());
  }

  /**
   * Nothing when no symbol was unknown; else a DataError under `strict`, or one call of `onWarning` (default
   * {@link warnUnknownSymbols}) with `prefix` before the message.
   * @throws DataError with `strict` when symbols were unknown.
   */
  report(options: EncodeOptions = {}, prefix = ''): void {
    if (this.count === 0) return;
    const symbols = [...this.distinct];
    const over = symbols.length === MAX_DISTINCT ? 'over ' : '';
    const distinct = this.count > symbols.length ? `${over}${symbols.length} distinct: ` : '';
    const what =
      `${this.count} symbol${this.count > 1 ? 's' : ''} ${this.what} ` + `(${distinct}${describeSymbols(symbols)})`;
    if (options.strict)
      throw new DataError(`${prefix}${what}; remove them or encode without strict to map them to ${this.replacement}`);
    (options.onWarning ?? warnUnknownSymbols)(`${prefix}${what} mapped to ${this.replacement}`);
  }
}

/**
 * Encodes a text that arrives in pieces (chunks of a file, fields of records). Tokens never depend on where
 * the pieces are cut: text at the end of a piece that may continue (a word, a `\r` before `\n`, half a
 * surrogate pair) is held back until the next piece or {@link end}.
 */
export interface StreamEncoder {
  /**
   * Encode `piece` into `out` starting at `pos` (ids of complete tokens only).
   * @returns the position after the last id written; `out` must have room for `piece.length` more ids
   *   plus what was held back (a token is at least one UTF-16 unit).
   */
  write(piece: string, out: TokenIds, pos: number): number;
  /** The text ends (end of a record): encode what was held back. @returns the new position. */
  end(out: TokenIds, pos: number): number;
  /** Symbols mapped to `<unk>` (or, for `bpe`, lone surrogates mapped to U+FFFD) so far. */
  readonly unknown: UnknownSymbols;
}

/**
 * Counts the tokens of a text that arrives in pieces (same piece rules as {@link StreamEncoder}) and gathers
 * what a vocabulary needs (the symbols, or the word frequencies).
 */
export interface VocabCounter {
  /** Count the tokens of `piece` (text that may continue is held back). */
  write(piece: string): void;
  /** The text ends (end of a record): count what was held back. */
  end(): void;
  /** Tokens counted so far (complete ones). */
  readonly tokens: number;
}

/** Maps text to token ids (values in [0, vocabSize)) and back. */
export interface Tokenizer {
  readonly kind: TokenizerKind;
  /** Number of ids, specials included. */
  readonly vocabSize: number;
  /** Token string of every id, id order. */
  readonly tokens: readonly string[];
  /** Id of the unknown token: `<unk>` (0) for char and word; for bpe the model's own, if any (byte-level: none). */
  readonly unkId: number | undefined;
  /** Id of the record-boundary token {@link BOUNDARY}, or undefined when the vocabulary has none. */
  readonly boundaryId: number | undefined;
  /** Token ids of `text`. @throws DataError with `strict` when `text` has symbols outside the vocabulary. */
  encode(text: string, options?: EncodeOptions): Uint32Array;
  /** An encoder for text that arrives in pieces; it reports unknown symbols through its `unknown` field. */
  encoder(): StreamEncoder;
  /** Text of `ids`. @throws DataError for an id outside [0, vocabSize). */
  decode(ids: ArrayLike<number>): string;
  /** Id of a single token string, or undefined when it is not in the vocabulary. */
  idOf(token: string): number | undefined;
  /**
   * Characters (Unicode code points) that `ids` add to the text decoded after the token `context` (none: at the
   * start of a text): the code points of `decode([context, ...ids])` minus those of `decode([context])`. Summed
   * over consecutive slices of a token stream (each with the last id of the slice before as context) it is the
   * code-point length of the stream's decoded text. Used for bits per character.
   * @throws DataError for an id outside [0, vocabSize).
   */
  countChars(ids: ArrayLike<number>, context?: number): number;
  /** Serializable form; {@link tokenizerFromJSON} restores it. */
  toJSON(): TokenizerJSON;
}

/** Common implementation over an id -> token table; subclasses define how text splits into tokens. */
export abstract class TableTokenizer implements Tokenizer {
  abstract readonly kind: 'char' | 'word';
  readonly unkId = 0;
  readonly boundaryId: number | undefined;
  private readonly index: Map<string, number>;

  /** @param tokens id -> token table; `tokens[0]` must be `<unk>`, entries unique. */
  constructor(readonly tokens: readonly string[]) {
    this.index = new Map(tokens.map((t, i) => [t, i]));
    this.boundaryId = this.index.get(BOUNDARY);
  }

  get vocabSize(): number {
    return this.tokens.length;
  }

  idOf(token: string): number | undefined {
    return this.index.get(token);
  }

  abstract encoder(): StreamEncoder;

  encode(text: string, options: EncodeOptions = {}): Uint32Array {
    const encoder = this.encoder();
    const out = new Uint32Array(text.length);
    const n = encoder.end(out, encoder.write(text, out, 0));
    encoder.unknown.report(options);
    return out.slice(0, n);
  }

  /** Token strings of `ids`. @throws DataError for an id outside [0, vocabSize). */
  protected lookup(ids: ArrayLike<number>): string[] {
    const out: string[] = new Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const t = this.tokens[ids[i]];
      if (t === undefined || !Number.isInteger(ids[i])) {
        throw new DataError(`token id ${ids[i]} is outside the vocabulary [0, ${this.vocabSize})`);
      }
      out[i] = t;
    }
    return out;
  }

  abstract decode(ids: ArrayLike<number>): string;
  abstract toJSON(): TokenizerJSON;

  countChars(ids: ArrayLike<number>, context?: number): number {
    return decodedChars(this, ids, context);
  }
}

/**
 * {@link Tokenizer.countChars} by decoding: code points of `decode([context, ...ids])` minus those of
 * `decode([context])`, exact for tokenizers whose decoding of a token depends on at most the token before it.
 */
export function decodedChars(tokenizer: Tokenizer, ids: ArrayLike<number>, context?: number): number {
  if (context === undefined) return codePoints(tokenizer.decode(ids));
  const all = new Uint32Array(ids.length + 1);
  all[0] = context;
  all.set(Array.from(ids), 1);
  return codePoints(tokenizer.decode(all)) - codePoints(tokenizer.decode([context]));
}

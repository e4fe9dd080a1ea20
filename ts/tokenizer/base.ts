/**
 * What every tokenizer shares: a fixed id -> token table with `<unk>` at id 0, and encoding of a sequence
 * of pieces with unknown pieces mapped to `<unk>` (one warning per call, naming a bounded number of them,
 * each cut to a bounded length) or rejected under `strict`.
 */
import { DataError } from '../errors';

/** The unknown-symbol token; always id 0. */
export const UNK = '<unk>';

/**
 * The default receiver of unknown-symbol warnings: `process.emitWarning(message, { code: 'LSTMGEN_UNKNOWN_SYMBOLS' })`.
 */
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

/** Serialized tokenizer, stored as JSON in the model file metadata (key `tokenizer`). */
export type TokenizerJSON = { type: 'char'; tokens: string[] } | { type: 'word'; lowercase: boolean; tokens: string[] };

/** Maps text to token ids (`Uint32Array`, values in [0, vocabSize)) and back. */
export interface Tokenizer {
  readonly kind: 'char' | 'word';
  /** Number of ids, specials included. */
  readonly vocabSize: number;
  /** Token string of every id, id order. */
  readonly tokens: readonly string[];
  /** Id of `<unk>` (0). */
  readonly unkId: number;
  /** Token ids of `text`. @throws DataError with `strict` when `text` has symbols outside the vocabulary. */
  encode(text: string, options?: EncodeOptions): Uint32Array;
  /** Text of `ids`. @throws DataError for an id outside [0, vocabSize). */
  decode(ids: ArrayLike<number>): string;
  /** Id of a single token string, or undefined when it is not in the vocabulary. */
  idOf(token: string): number | undefined;
  /** Serializable form; {@link tokenizerFromJSON} restores it. */
  toJSON(): TokenizerJSON;
}

/** Unknown symbols a warning or error names; the others are counted ("and N more"). */
export const MAX_EXAMPLES = 20;
/** Code points of an unknown symbol shown in a message; a longer one is cut, with an ellipsis and its length. */
export const MAX_EXAMPLE_LENGTH = 40;

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

/** Common implementation over an id -> token table; subclasses define how text splits into pieces. */
export abstract class TableTokenizer implements Tokenizer {
  abstract readonly kind: 'char' | 'word';
  readonly unkId = 0;
  private readonly index: Map<string, number>;

  /** @param tokens id -> token table; `tokens[0]` must be `<unk>`, entries unique. */
  constructor(readonly tokens: readonly string[]) {
    this.index = new Map(tokens.map((t, i) => [t, i]));
  }

  get vocabSize(): number {
    return this.tokens.length;
  }

  idOf(token: string): number | undefined {
    return this.index.get(token);
  }

  /** The pieces of `text`, each looked up as one token. */
  protected abstract pieces(text: string): Iterable<string>;

  encode(text: string, options: EncodeOptions = {}): Uint32Array {
    const ids: number[] = [];
    const unknown = new Set<string>(); // distinct, in order of first appearance
    let unknownCount = 0;
    for (const piece of this.pieces(text)) {
      const id = this.index.get(piece);
      if (id === undefined) {
        unknownCount++;
        unknown.add(piece);
        ids.push(this.unkId);
      } else {
        ids.push(id);
      }
    }
    if (unknownCount > 0) {
      const distinct = unknownCount > unknown.size ? `${unknown.size} distinct: ` : '';
      const what =
        `${unknownCount} symbol${unknownCount > 1 ? 's' : ''} not in the vocabulary ` +
        `(${distinct}${describeSymbols([...unknown])})`;
      if (options.strict) throw new DataError(`${what}; remove them or encode without strict to map them to ${UNK}`);
      const warn = options.onWarning ?? warnUnknownSymbols;
      warn(`${what} mapped to ${UNK}`);
    }
    return Uint32Array.from(ids);
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
}

/**
 * Subword tokenizers of Hugging Face `tokenizers` (the Rust crate, compiled into the addon): a byte-level BPE
 * trained on the training corpus (the crate's BpeTrainer, ByteLevel pre-tokenizer and decoder, as GPT-2 uses
 * them, without a prefix space), or any `tokenizer.json` (e.g. one written by the Python `tokenizers`
 * package).
 *
 * - Byte-level BPE has no unknown token and decodes any valid Unicode text back exactly:
 *   `decode(encode(s)) === s`. A lone surrogate (not valid Unicode) is encoded as U+FFFD, with one warning
 *   per call (a DataError under `strict`).
 * - Every such tokenizer has the boundary token `<|endoftext|>` as a special token (added when a loaded
 *   `tokenizer.json` lacks it); text is never matched against special tokens, so the boundary only comes from
 *   the corpus framing, and the literal text `<|endoftext|>` round-trips as ordinary text. `decode` writes the
 *   boundary as a line break, as the other tokenizers do.
 * - Encoding runs in Rust on all cores, in parts cut where the pre-tokenizer always splits (a whitespace
 *   character after a non-whitespace one), so ids do not depend on how a corpus is cut into pieces. That holds
 *   for byte-level and whitespace pre-tokenizers; others (e.g. a Metaspace that prepends to every part) may
 *   differ at those cuts.
 */
import type { NativeEncoder, NativeTokenizer, NativeWordCounter } from '../../index';
import { DataError, wrapNative } from '../errors';
import { defaultLoader } from '../native/loader';
import {
  BOUNDARY,
  BOUNDARY_TEXT,
  codePoints,
  decodedChars,
  type EncodeOptions,
  type StreamEncoder,
  type TokenIds,
  type Tokenizer,
  type TokenizerJSON,
  UnknownSymbols,
  type VocabCounter,
} from './base';

/** Fewest occurrences of a pair of tokens for the BPE trainer to merge it (the Python package's default). */
export const BPE_MIN_FREQUENCY = 2;
/** Smallest byte-level BPE vocabulary: the boundary token and the 256 byte tokens. */
export const MIN_BPE_VOCAB = 257;

/** Runs `fn` (an addon call), turning what it throws into a typed error. */
function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw wrapNative(err);
  }
}

/** The addon's tokenizer classes (the CPU build: tokenizers never need a GPU). */
const addon = () => defaultLoader.cpu().binding;

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;

/** ES2024 string methods (Node >= 20), beyond the ES2022 library this package compiles against. */
type WellFormed = { isWellFormed(): boolean; toWellFormed(): string };

/** Lone surrogates of `s` (strings that are not valid Unicode), in order; empty for well-formed text. */
function loneSurrogates(s: string): string[] {
  if ((s as unknown as WellFormed).isWellFormed()) return [];
  return s.match(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g) ?? [];
}

/** Names a lone surrogate in messages: `U+D83D`. */
const showSurrogate = (s: string) => `U+${s.charCodeAt(0).toString(16).toUpperCase()}`;

/**
 * `held + piece` as well-formed text ready for the addon, and the final high surrogate that waits for its
 * pair; lone surrogates become U+FFFD and are recorded in `unknown`.
 */
function wellFormed(held: string, piece: string, unknown: UnknownSymbols, final: boolean): [string, string] {
  let s = held + piece;
  let rest = '';
  if (!final && s.length > 0 && isHigh(s.charCodeAt(s.length - 1))) {
    rest = s.slice(-1);
    s = s.slice(0, -1);
  }
  const lone = loneSurrogates(s);
  if (lone.length === 0) return [s, rest];
  for (const l of lone) unknown.add(() => showSurrogate(l));
  return [(s as unknown as WellFormed).toWellFormed(), rest];
}

/** The record of lone surrogates of one encoding. */
const surrogateReport = () => new UnknownSymbols('U+FFFD', 'that are lone surrogates (not valid Unicode)');

/** A subword tokenizer over the addon's `NativeTokenizer` (see the module docs). */
export class BpeTokenizer implements Tokenizer {
  readonly kind = 'bpe' as const;
  readonly vocabSize: number;
  readonly boundaryId: number;
  readonly unkId: number | undefined;
  /** Whether the decoder is byte-level (every text round-trips exactly; bits per character count exactly). */
  readonly byteLevel: boolean;
  private tokenList?: readonly string[];
  private index?: Map<string, number>;
  private charTable?: Uint32Array | null;

  /** Wrap an addon tokenizer; made by {@link BpeTokenizer.fromJSON} or {@link BpeCounter.build}. */
  constructor(readonly native: NativeTokenizer) {
    this.vocabSize = native.vocabSize;
    this.boundaryId = native.boundaryId;
    this.unkId = native.unkId ?? undefined;
    this.byteLevel = native.byteLevel;
  }

  /**
   * Load a Hugging Face `tokenizer.json` text; `<|endoftext|>` is added as a special token when it lacks it.
   * Padding and truncation settings are dropped.
   * @throws DataError when `json` is not a tokenizer.json the `tokenizers` crate can load (its reason).
   */
  static fromJSON(json: string): BpeTokenizer {
    return new BpeTokenizer(call(() => addon().NativeTokenizer.fromJson(json)));
  }

  /** A counter of training text whose `build()` trains a byte-level BPE on it. */
  static counter(): BpeCounter {
    return new BpeCounter();
  }

  /** Train a byte-level BPE of at most `vocabSize` tokens on `text`. @throws DataError when vocabSize < 257. */
  static async fromText(text: string, vocabSize: number): Promise<BpeTokenizer> {
    const counter = BpeTokenizer.counter();
    counter.write(text);
    counter.end();
    return counter.build(vocabSize);
  }

  /** Token string of every id, in id order, as the vocabulary writes them (byte tokens in GPT-2's byte chars: `Ġthe`). */
  get tokens(): readonly string[] {
    this.tokenList ??= this.native.tokens();
    return this.tokenList;
  }

  idOf(token: string): number | undefined {
    this.index ??= new Map(this.tokens.map((t, i) => [t, i]));
    return this.index.get(token);
  }

  /**
   * Token ids of `text` (no special tokens: the text `<|endoftext|>` is ordinary text). Lone surrogates become
   * U+FFFD, reported once per call through `onWarning` (default: a process warning).
   * @throws DataError with `strict` when `text` has lone surrogates.
   */
  encode(text: string, options: EncodeOptions = {}): Uint32Array {
    const unknown = surrogateReport();
    const [s] = wellFormed('', text, unknown, true);
    unknown.report(options);
    return call(() => this.native.encode(s));
  }

  encoder(): StreamEncoder {
    return new BpeStreamEncoder(call(() => this.native.encoder()));
  }

  /** A counter of the tokens of text given in pieces (by encoding it). */
  tokenCounter(): VocabCounter {
    const encoder = call(() => this.native.encoder());
    const unknown = surrogateReport();
    let held = '';
    let tokens = 0;
    return {
      get tokens() {
        return tokens;
      },
      write(piece) {
        const [s, rest] = wellFormed(held, piece, unknown, false);
        held = rest;
        tokens += call(() => encoder.write(s)).length;
      },
      end() {
        const [s] = wellFormed(held, '', unknown, true);
        held = '';
        tokens += call(() => encoder.write(s)).length + call(() => encoder.end()).length;
      },
    };
  }

  /**
   * Text of `ids` through the tokenizer's decoder; the boundary token becomes a line break, other special
   * tokens their text, and bytes that do not form valid UTF-8 (a piece of a character) U+FFFD.
   * @throws DataError for an id outside [0, vocabSize).
   */
  decode(ids: ArrayLike<number>): string {
    const parts: string[] = [];
    let start = 0;
    const all = ids instanceof Uint32Array ? ids : Uint32Array.from(ids as ArrayLike<number>);
    for (let i = 0; i <= all.length; i++) {
      if (i === all.length || all[i] === this.boundaryId) {
        if (i > start) parts.push(call(() => this.native.decode(all.subarray(start, i))));
        if (i < all.length) parts.push(BOUNDARY_TEXT);
        start = i + 1;
      }
    }
    return parts.join('');
  }

  /**
   * Code points `ids` add to decoded text: for a byte-level tokenizer the sum of each token's UTF-8 lead bytes
   * (exact whatever the context, also when a slice ends inside a character); otherwise by decoding.
   */
  countChars(ids: ArrayLike<number>, context?: number): number {
    if (this.charTable === undefined) this.charTable = this.native.charCounts();
    const table = this.charTable;
    if (table === null) return decodedChars(this, ids, context);
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const c = table[ids[i]];
      if (c === undefined || !Number.isInteger(ids[i]))
        throw new DataError(`token id ${ids[i]} is outside the vocabulary [0, ${this.vocabSize})`);
      n += c;
    }
    return n;
  }

  /** Bytes each of `ids` stands for (byte-level tokenizers; the boundary as `\n`), else undefined. */
  tokenBytes(ids: ArrayLike<number>): Buffer[] | undefined {
    const all = this.native.tokenBytes();
    if (!all) return undefined;
    return Array.from(ids, (id) => {
      const b = all[id];
      if (b === undefined) throw new DataError(`token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
      return b;
    });
  }

  toJSON(): TokenizerJSON {
    return { type: 'bpe', json: call(() => this.native.toJson()) };
  }
}

/** The {@link StreamEncoder} of a {@link BpeTokenizer}: the addon's streaming encoder, after surrogate checks. */
class BpeStreamEncoder implements StreamEncoder {
  readonly unknown = surrogateReport();
  private held = '';

  constructor(private readonly native: NativeEncoder) {}

  /** `out` must have room for the ids (up to the UTF-8 bytes of the text; the corpus reader counts them first). */
  write(piece: string, out: TokenIds, pos: number): number {
    const [s, rest] = wellFormed(this.held, piece, this.unknown, false);
    this.held = rest;
    return put(
      call(() => this.native.write(s)),
      out,
      pos,
    );
  }

  end(out: TokenIds, pos: number): number {
    const [s] = wellFormed(this.held, '', this.unknown, true);
    this.held = '';
    const p = put(
      call(() => this.native.write(s)),
      out,
      pos,
    );
    return put(
      call(() => this.native.end()),
      out,
      p,
    );
  }
}

/** Copy `ids` into `out` at `pos`. @returns the position after them. @throws DataError when they do not fit. */
function put(ids: Uint32Array, out: TokenIds, pos: number): number {
  if (pos + ids.length > out.length)
    throw new DataError('the text changed while it was being read (more tokens than counted); try again');
  out.set(ids, pos);
  return pos + ids.length;
}

/**
 * Counts the pre-tokens of a byte-level BPE's training text (in the addon) and the code points of the text;
 * `build` trains the BPE on them.
 */
export class BpeCounter implements VocabCounter {
  /**
   * Before `build`: the code points counted (the vocabulary does not exist yet). After `build`: the tokens of
   * all the text counted, encoded with the trained BPE (each pre-token's count times its number of tokens, so
   * without encoding the text again).
   */
  tokens = 0;
  private readonly native: NativeWordCounter = call(() => new (addon().NativeWordCounter)());
  private readonly unknown = surrogateReport();
  private held = '';

  write(piece: string): void {
    const [s, rest] = wellFormed(this.held, piece, this.unknown, false);
    this.held = rest;
    this.tokens += codePoints(s);
    call(() => this.native.write(s));
  }

  end(): void {
    const [s] = wellFormed(this.held, '', this.unknown, true);
    this.held = '';
    this.tokens += codePoints(s);
    call(() => {
      this.native.write(s);
      this.native.end();
    });
  }

  /**
   * Train a byte-level BPE of at most `vocabSize` tokens ({@link BOUNDARY} id 0, the 256 bytes, then merges of
   * pairs seen at least {@link BPE_MIN_FREQUENCY} times) on the text counted, on a worker thread; `tokens`
   * becomes the number of tokens of that text.
   * @throws DataError when `vocabSize` < {@link MIN_BPE_VOCAB}.
   */
  async build(vocabSize: number): Promise<BpeTokenizer> {
    if (vocabSize < MIN_BPE_VOCAB) {
      throw new DataError(
        `a byte-level BPE vocabulary needs vocabSize >= ${MIN_BPE_VOCAB} (${BOUNDARY} and the 256 bytes), got ${vocabSize}`,
      );
    }
    let native: NativeTokenizer;
    try {
      native = await this.native.train(vocabSize, BPE_MIN_FREQUENCY);
    } catch (err) {
      throw wrapNative(err);
    }
    this.tokens = native.trainedTokens ?? 0;
    return new BpeTokenizer(native);
  }
}

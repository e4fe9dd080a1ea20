/** Character-level tokenizer over Unicode code points (an emoji or CJK character is one token, never two UTF-16 halves). */
import {
  BOUNDARY,
  BOUNDARY_TEXT,
  type StreamEncoder,
  TableTokenizer,
  type TokenIds,
  type TokenizerJSON,
  UNK,
  UnknownSymbols,
  type VocabCounter,
} from './base';

/** Text that `decode` writes for `<unk>`: U+FFFD REPLACEMENT CHARACTER, so one token stays one character. */
export const CHAR_UNK_TEXT = '\uFFFD';

const CODE_POINTS = 0x110000;
const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;

/** The code point at `s[i]` (before `end`): a surrogate pair's, or a lone surrogate's own value. */
function codePointAt(s: string, i: number, end: number): number {
  const c = s.charCodeAt(i);
  if (!isHigh(c) || i + 1 >= end) return c;
  const d = s.charCodeAt(i + 1);
  return isLow(d) ? ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000 : c;
}

/** The text of `piece` after `held`, and the length of it that can be handled now (a final high surrogate waits). */
function complete(held: string, piece: string): { s: string; end: number } {
  const s = held ? held + piece : piece;
  const last = s.length - 1;
  return { s, end: last >= 0 && isHigh(s.charCodeAt(last)) ? last : s.length };
}

/** Counts the code points of a text given in pieces and collects the set of them (see {@link CharTokenizer.counter}). */
export class CharCounter implements VocabCounter {
  tokens = 0;
  private readonly seen = new Uint8Array(CODE_POINTS);
  private held = '';

  write(piece: string): void {
    const { s, end } = complete(this.held, piece);
    this.count(s, end);
    this.held = s.slice(end);
  }

  end(): void {
    this.count(this.held, this.held.length);
    this.held = '';
  }

  private count(s: string, end: number): void {
    const seen = this.seen;
    let n = 0;
    for (let i = 0; i < end; i++, n++) {
      const c = s.charCodeAt(i);
      if (c < 0xd800) seen[c] = 1;
      else {
        const cp = codePointAt(s, i, end);
        seen[cp] = 1;
        if (cp > 0xffff) i++;
      }
    }
    this.tokens += n;
  }

  /** The vocabulary of every code point counted; with `boundary`, {@link BOUNDARY} gets id 1. */
  build(boundary: boolean): CharTokenizer {
    const symbols: string[] = [];
    for (let cp = 0; cp < CODE_POINTS; cp++) if (this.seen[cp]) symbols.push(String.fromCodePoint(cp));
    return new CharTokenizer([UNK, ...(boundary ? [BOUNDARY] : []), ...symbols]);
  }
}

/**
 * Character tokenizer: id 0 is `<unk>`, then {@link BOUNDARY} (id 1) when the vocabulary has it, then the code
 * points of the training text in code-point order.
 */
export class CharTokenizer extends TableTokenizer {
  readonly kind = 'char' as const;
  private idsByCodePoint?: Uint32Array;

  /** Vocabulary of every code point in `text`, sorted by code point, after `<unk>` (id 0); no boundary token. */
  static fromText(text: string): CharTokenizer {
    const counter = CharTokenizer.counter();
    counter.write(text);
    counter.end();
    return counter.build(false);
  }

  /** A counter whose `build()` makes the vocabulary of the text it counted. */
  static counter(): CharCounter {
    return new CharCounter();
  }

  /** Id of every code point (0 = not in the vocabulary), built on first use. */
  private lut(): Uint32Array {
    if (!this.idsByCodePoint) {
      const lut = new Uint32Array(CODE_POINTS);
      this.tokens.forEach((t, id) => {
        const cp = t.codePointAt(0); // every char token is one code point
        if (cp !== undefined && id !== this.unkId && id !== this.boundaryId) lut[cp] = id;
      });
      this.idsByCodePoint = lut;
    }
    return this.idsByCodePoint;
  }

  encoder(): StreamEncoder {
    const lut = this.lut();
    const unknown = new UnknownSymbols();
    let held = '';
    const run = (s: string, end: number, out: TokenIds, pos: number) => {
      let p = pos;
      for (let i = 0; i < end; i++) {
        const c = s.charCodeAt(i);
        const cp = c < 0xd800 ? c : codePointAt(s, i, end);
        if (cp > 0xffff) i++;
        const id = lut[cp];
        if (id === 0) unknown.add(() => String.fromCodePoint(cp));
        out[p++] = id;
      }
      return p;
    };
    return {
      unknown,
      write(piece, out, pos) {
        const { s, end } = complete(held, piece);
        held = s.slice(end);
        return run(s, end, out, pos);
      },
      end(out, pos) {
        const p = run(held, held.length, out, pos);
        held = '';
        return p;
      },
    };
  }

  /** Concatenated characters; `<unk>` decodes to U+FFFD and the boundary to a line break. */
  decode(ids: ArrayLike<number>): string {
    return this.lookup(ids)
      .map((t, i) => (ids[i] === this.unkId ? CHAR_UNK_TEXT : ids[i] === this.boundaryId ? BOUNDARY_TEXT : t))
      .join('');
  }

  /** One character per id: every token, `<unk>` and the boundary included, decodes to one code point. */
  override countChars(ids: ArrayLike<number>): number {
    this.lookup(ids);
    return ids.length;
  }

  toJSON(): TokenizerJSON {
    return { type: 'char', tokens: [...this.tokens] };
  }
}

/**
 * Word-level tokenizer in the style of the PTB language-model data and the Keras reference: optional
 * lower-casing, words and single punctuation marks as tokens, every line end as `<eos>`, the vocabulary
 * capped at the most frequent tokens, everything else `<unk>`.
 */
import { TableTokenizer, type TokenizerJSON, UNK } from './base';

/** End-of-line token; always id 1 in word vocabularies. */
export const EOS = '<eos>';

/**
 * Literal specials (PTB text contains `<unk>`), words (letters, marks, digits, `_`, inner apostrophes), or one other
 * non-space symbol.
 */
const TOKEN_RE = /<unk>|<eos>|[\p{L}\p{M}\p{N}_]+(?:['’][\p{L}\p{M}\p{N}_]+)*|[^\s\p{L}\p{M}\p{N}_]/gu;
const LINE_BREAK_RE = /\r\n|\n|\r/;
const NO_SPACE_BEFORE = new Set(['.', ',', ';', ':', '!', '?', ')', ']', '}', '%', '-']);
const NO_SPACE_AFTER = new Set(['(', '[', '{', '$', '-']);

/** Split `text` into word tokens: each line's words followed by `<eos>` for each line break. */
function* splitWords(text: string, lowercase: boolean): Generator<string> {
  const lines = (lowercase ? text.toLowerCase() : text).split(LINE_BREAK_RE);
  for (let i = 0; i < lines.length; i++) {
    if (i > 0) yield EOS;
    for (const m of lines[i].matchAll(TOKEN_RE)) yield m[0];
  }
}

/**
 * Word tokenizer: id 0 `<unk>`, id 1 `<eos>`, then words by frequency. `decode` normalizes spacing (not an exact
 * inverse).
 */
export class WordTokenizer extends TableTokenizer {
  readonly kind = 'word' as const;

  constructor(
    tokens: readonly string[],
    readonly lowercase: boolean,
  ) {
    super(tokens);
  }

  /**
   * Vocabulary: `<unk>` (id 0), `<eos>` (id 1), then the `vocabSize - 2` most frequent tokens of `text`,
   * by descending count, ties by code-unit order of the token (deterministic).
   */
  static fromText(text: string, options: { vocabSize: number; lowercase: boolean }): WordTokenizer {
    const counts = new Map<string, number>();
    for (const w of splitWords(text, options.lowercase)) {
      if (w !== UNK && w !== EOS) counts.set(w, (counts.get(w) ?? 0) + 1);
    }
    const ranked = [...counts]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(0, Math.max(0, options.vocabSize - 2))
      .map(([w]) => w);
    return new WordTokenizer([UNK, EOS, ...ranked], options.lowercase);
  }

  protected pieces(text: string): Iterable<string> {
    return splitWords(text, this.lowercase);
  }

  /** Tokens joined by spaces, `<eos>` as a line break, no space before closing punctuation or after opening. */
  decode(ids: ArrayLike<number>): string {
    let out = '';
    let prev = EOS;
    for (const t of this.lookup(ids)) {
      if (t === EOS) out += '\n';
      else out += (prev === EOS || NO_SPACE_BEFORE.has(t) || NO_SPACE_AFTER.has(prev) ? '' : ' ') + t;
      prev = t;
    }
    return out;
  }

  toJSON(): TokenizerJSON {
    return { type: 'word', lowercase: this.lowercase, tokens: [...this.tokens] };
  }
}

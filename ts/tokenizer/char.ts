/**
 * Character-level tokenizer over Unicode code points (an emoji or CJK character is one token, never two UTF-16 halves).
 */
import { TableTokenizer, type TokenizerJSON, UNK } from './base';

/** Text that `decode` writes for `<unk>`: U+FFFD REPLACEMENT CHARACTER, so one token stays one character. */
export const CHAR_UNK_TEXT = '\uFFFD';

/** Character tokenizer: ids 1.. are the code points of the training text in code-point order; id 0 is `<unk>`. */
export class CharTokenizer extends TableTokenizer {
  readonly kind = 'char' as const;

  /** Vocabulary of every code point in `text`, sorted by code point, after `<unk>` (id 0). */
  static fromText(text: string): CharTokenizer {
    const code = (s: string) => s.codePointAt(0) ?? 0; // each symbol is one code point
    const symbols = [...new Set(text)].sort((a, b) => code(a) - code(b));
    return new CharTokenizer([UNK, ...symbols]);
  }

  protected pieces(text: string): Iterable<string> {
    return text; // string iteration yields whole code points
  }

  /** Concatenated characters; `<unk>` decodes to U+FFFD. */
  decode(ids: ArrayLike<number>): string {
    return this.lookup(ids)
      .map((t, i) => (ids[i] === this.unkId ? CHAR_UNK_TEXT : t))
      .join('');
  }

  toJSON(): TokenizerJSON {
    return { type: 'char', tokens: [...this.tokens] };
  }
}

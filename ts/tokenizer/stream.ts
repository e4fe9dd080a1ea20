/**
 * Incremental decoding: the text that token ids add, as they arrive, never ending inside a character. The
 * algorithm of Hugging Face `tokenizers`' `DecodeStream` (`step_decode_stream`), over any {@link Tokenizer}:
 * decode a window of recent ids, and hand out the text past what the window's older ids decoded to once it
 * does not end in U+FFFD (a byte-level token may end inside a multi-byte character; the rest comes with the
 * next token).
 */
import type { Tokenizer } from './base';

/** Text of ids pushed in order, after `context` ids; the pieces joined equal the text `decode` gives them in context. */
export class TextStream {
  private ids: number[];
  private prefix: string;
  private prefixIndex: number;

  /** @param context ids already decoded (e.g. the prompt); their text is not returned. */
  constructor(
    private readonly tokenizer: Tokenizer,
    context: ArrayLike<number> = [],
  ) {
    this.ids = Array.from(context);
    this.prefix = tokenizer.decode(this.ids);
    this.prefixIndex = this.ids.length;
  }

  /**
   * The new complete text after `ids` (possibly empty: text that ends in U+FFFD waits for the next ids or
   * {@link end}). @throws DataError for an id outside the vocabulary.
   */
  push(ids: ArrayLike<number>): string {
    for (let i = 0; i < ids.length; i++) this.ids.push(ids[i]);
    const text = this.tokenizer.decode(this.ids);
    if (text.length <= this.prefix.length || text.endsWith('\uFFFD')) return '';
    const fresh = text.slice(this.prefix.length);
    // keep the ids after the old prefix as the context of the next window
    this.ids = this.ids.slice(this.prefixIndex);
    this.prefix = this.tokenizer.decode(this.ids);
    this.prefixIndex = this.ids.length;
    return fresh;
  }

  /** The ids end: the text still held back (pieces of a character as U+FFFD). */
  end(): string {
    const rest = this.tokenizer.decode(this.ids).slice(this.prefix.length);
    this.ids = this.ids.slice(this.prefixIndex);
    this.prefix = this.tokenizer.decode(this.ids);
    this.prefixIndex = this.ids.length;
    return rest;
  }
}

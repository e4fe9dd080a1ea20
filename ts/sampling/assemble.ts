/** Text assembly of one sampled sequence: decoded pieces that are final, stop strings held back and cut. */
import { TextStream, type Tokenizer } from '../tokenizer';
import { firstStop } from './plan';

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;

/**
 * Turns the token ids of one sequence, as they are sampled, into text pieces that are final: text that could
 * start one of `stopTexts` is held back until it is decided, the text is cut before the first stop string, and
 * no piece ends inside a code point. The pieces joined are the sequence's text as `generate()` returns it.
 */
export class TextAssembler {
  private text = '';
  private emitted = 0;
  private readonly holdback: number;
  private readonly decoder: TextStream;
  /** Whether a stop string was reached (the text ends before it). */
  stopped = false;

  /**
   * @param context the ids before the first sampled one (the prompt), decoded incrementally after them
   *   ({@link TextStream}: word spacing, and BPE tokens that end inside a character held back until it is whole).
   * @param stopTexts the stop strings (see `planSampling`).
   */
  constructor(
    tokenizer: Tokenizer,
    context: ArrayLike<number>,
    private readonly stopTexts: readonly string[],
  ) {
    this.holdback = Math.max(1, ...stopTexts.map((s) => s.length)) - 1;
    this.decoder = new TextStream(tokenizer, context);
  }

  /**
   * Add the next sampled `ids`; `ended` says that no more will come (the sequence reached its end). Returns the
   * new final text (possibly empty); once {@link stopped} or `ended`, that is the rest of the text.
   */
  push(ids: readonly number[], ended: boolean): string {
    if (this.stopped) return '';
    this.text += this.decoder.push(ids);
    const from = Math.max(0, this.emitted - this.holdback);
    let stop = firstStop(this.text.slice(from), this.stopTexts);
    if (ended && stop < 0) {
      this.text += this.decoder.end();
      stop = firstStop(this.text.slice(from), this.stopTexts);
    }
    this.stopped = stop >= 0;
    const done = this.stopped || ended;
    let end = this.stopped ? from + stop : done ? this.text.length : this.text.length - this.holdback;
    if (!done && end > 0 && end < this.text.length && isHighSurrogate(this.text.charCodeAt(end - 1))) end--;
    if (end <= this.emitted) return '';
    const piece = this.text.slice(this.emitted, end);
    this.emitted = end;
    return piece;
  }
}

/** Language-model metrics from the mean cross-entropy over all predicted positions, in nats/token. */
import type { TokenStream } from './data';
import type { Tokenizer } from './tokenizer';

/** Perplexity = exp(mean cross-entropy in nats/token). */
export function perplexity(lossNats: number): number {
  return Math.exp(lossNats);
}

/**
 * Bits per character = total nats / total characters / ln 2, the characters being the Unicode code points of
 * the predicted text (see {@link Tokenizer.countChars}), so that models with different tokenizers compare on the
 * same text. `chars` defaults to 1: then it is nats / ln 2, a char model's mean loss in bits.
 */
export function bitsPerChar(totalNats: number, chars = 1): number {
  return totalNats / chars / Math.LN2;
}

/** Slices of this many ids are read from a stream to count its characters. */
const COUNT_SLICE = 1 << 16;

/**
 * Characters (code points) of ids `[from, to)` of `stream` as text decoded after the id at `from - 1` (none
 * when `from` is 0), by {@link Tokenizer.countChars} over slices.
 * @throws DataError for ids outside the vocabulary.
 */
export function streamChars(tokenizer: Tokenizer, stream: TokenStream, from: number, to: number): number {
  const buf = new Uint32Array(COUNT_SLICE + 1);
  let chars = 0;
  for (let pos = from; pos < to; pos += COUNT_SLICE) {
    const n = Math.min(COUNT_SLICE, to - pos);
    if (pos === 0) {
      stream.read(0, n, buf, 1);
      chars += tokenizer.countChars(buf.subarray(1, 1 + n));
    } else {
      stream.read(pos - 1, n + 1, buf, 0);
      chars += tokenizer.countChars(buf.subarray(1, 1 + n), buf[0]);
    }
  }
  return chars;
}

/** Next-token accuracy = correct / count, in [0, 1]; NaN when count is 0. */
export function accuracy(correct: number, count: number): number {
  return count > 0 ? correct / count : NaN;
}

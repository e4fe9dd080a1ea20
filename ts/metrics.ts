/** Language-model metrics from the mean cross-entropy over all predicted positions, in nats/token. */

/** Perplexity = exp(mean cross-entropy in nats/token). */
export function perplexity(lossNats: number): number {
  return Math.exp(lossNats);
}

/** Bits per character = nats / ln 2; meaningful for character models only (one token = one character). */
export function bitsPerChar(lossNats: number): number {
  return lossNats / Math.LN2;
}

/** Next-token accuracy = correct / count, in [0, 1]; NaN when count is 0. */
export function accuracy(correct: number, count: number): number {
  return count > 0 ? correct / count : NaN;
}

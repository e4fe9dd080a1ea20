/** Streaming generation: text pieces as they are sampled, through the engine's incremental sampler. */
import type { StreamOptions } from '../config';
import type { NativeHandle } from '../native/handle';
import type { Tokenizer } from '../tokenizer';
import { TextAssembler } from './assemble';
import { planSampling } from './plan';

const NOTHING = new Uint32Array(0);

/**
 * Sample one continuation of `o.prompt` and yield its text piece by piece: each native call samples up to
 * `o.chunkTokens` tokens, and the new text is yielded as soon as no stop string can start in it (text that
 * could begin a stop string is held back until it is decided). The pieces joined equal
 * `generate({ ...o, numSamples: 1 })[0]` for the same seed. Text is assembled by {@link TextAssembler}, as for sessions and the server:
 * a BPE token that ends inside a multi-byte character is held back until the character is complete, so no
 * piece holds half a character (U+FFFD) unless the sampling ends there. Nothing more is sampled once the consumer stops
 * iterating (`break`, `return`, a thrown error).
 * @throws ConfigError / DataError as `generate()` (on the first iteration); errors of the engine as typed errors.
 */
export async function* streamText(
  native: NativeHandle,
  tokenizer: Tokenizer,
  o: StreamOptions,
): AsyncGenerator<string, void, undefined> {
  const plan = planSampling(tokenizer, { ...o, numSamples: 1 });
  const sampler = native.startSampling(plan.prompt, plan.native);
  const text = new TextAssembler(tokenizer, plan.prompt, plan.stopTexts);
  let produced = 0;
  for (;;) {
    const { tokens, finished } = await sampler.next(NOTHING, Math.min(o.chunkTokens, o.maxTokens - produced));
    const ids = tokens[0] ?? [];
    produced += ids.length;
    const ended = finished || ids.length === 0 || produced >= o.maxTokens;
    const piece = text.push(ids, ended);
    if (piece) yield piece;
    if (ended || text.stopped) return;
  }
}

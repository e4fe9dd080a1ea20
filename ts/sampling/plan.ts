/** What `generate()` and `stream()` share: turning generate options into a native sampling call, and text assembly. */
import { randomInt } from 'node:crypto';
import type { GenerateOptions, GenerationControls } from '../config';
import { ConfigError } from '../errors';
import type { SampleOptions } from '../native/handle';
import { BOUNDARY, EOS, type TextStream, type Tokenizer } from '../tokenizer';

/** The native side of one sampling request. */
export interface SamplingPlan {
  /** Prompt ids (>= 1: an empty prompt becomes the line-break token). */
  prompt: Uint32Array;
  /** Options for `NativeHandle.generate` / `startSampling`. */
  native: SampleOptions;
  /** Stop strings the engine can produce (those fully inside the vocabulary); text is cut before the first. */
  stopTexts: string[];
}

/** The sampling options of a plan, without the prompt: what a session's `sample()` and the server need. Unset
 * generation controls are off. */
export type SamplingOptions = Omit<
  GenerateOptions,
  'numSamples' | 'prompt' | 'seed' | 'strict' | 'records' | 'onlyNovel' | keyof GenerationControls
> &
  Partial<GenerationControls> & {
    numSamples?: number;
    seed?: number;
  };

/**
 * The engine's options and the stop texts for validated options `o` (`numSamples` defaults to 1). An unset seed
 * becomes a fresh random one. Stop strings with symbols outside the vocabulary are dropped (never generated).
 * Unless `o.allowUnk`, `<unk>` is banned from sampling (`bannedIds`), as are `o.bannedTokens`. With `minTokens`,
 * the boundary token and every one-token stop string are the `endIds` banned until then.
 * @throws ConfigError (field `bannedTokens`) for a banned string that is not one token of the vocabulary.
 */
export function sampleOptions(
  tokenizer: Tokenizer,
  o: SamplingOptions,
): { native: SampleOptions; stopTexts: string[] } {
  const stops = (o.stop ?? [])
    .map((s) => tokenizer.encode(s, { onWarning: () => {} }))
    .filter((ids) => ids.length > 0 && (tokenizer.unkId === undefined || !ids.includes(tokenizer.unkId)));
  const banned = (o.bannedTokens ?? []).map((t, i) => {
    const id = tokenizer.idOf(t);
    if (id === undefined)
      throw new ConfigError(`bannedTokens.${i}`, `${JSON.stringify(t)} is not one token of this model's vocabulary`);
    return id;
  });
  const endIds = [
    ...(tokenizer.boundaryId === undefined ? [] : [tokenizer.boundaryId]),
    ...stops.filter((ids) => ids.length === 1).map((ids) => ids[0]),
  ];
  return {
    native: {
      numSamples: o.numSamples ?? 1,
      maxTokens: o.maxTokens,
      temperature: o.temperature,
      topK: o.topK ?? 0,
      topP: o.topP,
      seed: o.seed ?? randomInt(0, 2 ** 32),
      stopSequences: stops.map((ids) => Array.from(ids)),
      bannedIds: [...(o.allowUnk || tokenizer.unkId === undefined ? [] : [tokenizer.unkId]), ...banned],
      // after a sampled record boundary a sample goes on from the zero state, as training resets there
      boundaryId: tokenizer.boundaryId,
      repetitionPenalty: o.repetitionPenalty,
      frequencyPenalty: o.frequencyPenalty,
      noRepeatNgram: o.noRepeatNgram,
      penaltyWindow: o.penaltyWindow,
      minTokens: o.minTokens,
      endIds: (o.minTokens ?? 0) > 0 ? endIds : [],
    },
    stopTexts: stops.map((ids) => tokenizer.decode(ids)),
  };
}

/**
 * Encode the prompt of validated options `o` and make the engine's options ({@link sampleOptions}). With
 * `o.records`, `o.records` sequences start from the record boundary followed by the prompt, and each ends at the
 * next boundary (a stop sequence).
 * @throws ConfigError for an empty prompt when the vocabulary has no line break and no record boundary, `records` when it has no record
 *   boundary, or a bad `bannedTokens` entry; DataError for unknown prompt symbols with `strict` (otherwise they
 *   become `<unk>` with one warning).
 */
export function planSampling(
  tokenizer: Tokenizer,
  o: SamplingOptions & Pick<GenerateOptions, 'prompt' | 'strict'> & { records?: number },
): SamplingPlan {
  let prompt = tokenizer.encode(o.prompt, { strict: o.strict });
  const boundary = o.records !== undefined ? recordBoundaryId(tokenizer) : undefined;
  if (boundary !== undefined) {
    const framed = new Uint32Array(prompt.length + 1);
    framed[0] = boundary;
    framed.set(prompt, 1);
    prompt = framed;
  } else if (prompt.length === 0) prompt = Uint32Array.of(startId(tokenizer));
  const { native, stopTexts } = sampleOptions(tokenizer, { ...o, numSamples: o.records ?? o.numSamples });
  if (boundary !== undefined) native.stopSequences.push([boundary]);
  return { prompt, native, stopTexts };
}

/** The ConfigError (field `records`) of whole records asked of a model trained on one plain text. */
export function plainTextRecordsError(): ConfigError {
  return new ConfigError(
    'records',
    `this model was trained on one plain text, so it knows no record boundary (${BOUNDARY}); train it on records (format lines, jsonl or csv, or several documents) to generate whole records`,
  );
}

/**
 * Id of the record-boundary token that starts and ends whole records.
 * @throws ConfigError (field `records`) when the vocabulary has none: the model was trained on one plain text.
 */
function recordBoundaryId(tokenizer: Tokenizer): number {
  if (tokenizer.boundaryId === undefined) throw plainTextRecordsError();
  return tokenizer.boundaryId;
}

/**
 * Id of the token that starts generation from an empty prompt: the line break, or where the vocabulary has none
 * (a model of records, whose texts hold no line break) the record boundary, the state records start from.
 * @throws ConfigError when the vocabulary has neither.
 */
export function startId(tokenizer: Tokenizer): number {
  const id =
    (tokenizer.kind === 'bpe'
      ? single(tokenizer.encode('\n'))
      : tokenizer.idOf(tokenizer.kind === 'word' ? EOS : '\n')) ?? tokenizer.boundaryId;
  if (id === undefined)
    throw new ConfigError(
      'prompt',
      'must not be empty for this model (its vocabulary has no line break and no record boundary to start from)',
    );
  return id;
}

/** The id of a one-token text, else undefined. */
const single = (ids: Uint32Array) => (ids.length === 1 ? ids[0] : undefined);

/**
 * Text that `ids` add after `context` (decoding in context keeps word spacing right). char and word tokenizers
 * decode each token from itself and the token before it, so a one-token context gives the same text as the
 * full one; a byte-level BPE token may be part of a character, so streams decode with {@link TextStream}.
 */
export function decodeAfter(tokenizer: Tokenizer, context: ArrayLike<number>, ids: ArrayLike<number>): string {
  const all = new Uint32Array(context.length + ids.length);
  all.set(Array.from(context));
  all.set(Array.from(ids), context.length);
  return tokenizer.decode(all).slice(tokenizer.decode(context).length);
}

/** Index of the earliest occurrence of any of `stops` in `text`, or -1. */
export function firstStop(text: string, stops: readonly string[]): number {
  let end = -1;
  for (const s of stops) {
    const at = text.indexOf(s);
    if (at >= 0 && (end < 0 || at < end)) end = at;
  }
  return end;
}

/** `text` cut before the earliest occurrence of any of `stops`. */
export function cutAtFirst(text: string, stops: readonly string[]): string {
  const at = firstStop(text, stops);
  return at < 0 ? text : text.slice(0, at);
}

/**
 * Whole-record generation: records sampled as one batch from the state a record starts from (the boundary
 * token fed from the zero state, as training resets the state there), each ending at the next boundary, and
 * checked against the training records ({@link TrainingRecords}).
 */
import { type GenerateOptions, MAX_SAMPLES, ONLY_NOVEL_ATTEMPTS } from '../config';
import type { TrainingRecords } from '../corpus/recordset';
import { ConfigError } from '../errors';
import type { GenerateWarningCode } from '../events';
import type { NativeHandle } from '../native/handle';
import type { Tokenizer } from '../tokenizer';
import { decodeAfter, plainTextRecordsError, planSampling } from './plan';

/** One generated record. */
export interface GeneratedRecord {
  /**
   * The record's text, without the boundary token: the prompt as given (symbols outside the vocabulary, which the
   * model read as `<unk>`, included), then what was sampled, decoded after it.
   */
  text: string;
  /**
   * Whether the record is not one of the training records (verbatim, as token ids): true or false; null when
   * the model file holds no record hashes (a warning `LSTMGEN_NOVELTY_UNKNOWN` says why).
   */
  novel: boolean | null;
  /** Why it ended: `boundary`, the record's end; `maxTokens`, cut after `maxTokens` sampled tokens. */
  end: 'boundary' | 'maxTokens';
}

/** Where the warnings of generation go: `process.emitWarning` with the code. */
function emitWarning(message: string, code: GenerateWarningCode): void {
  process.emitWarning(message, { code });
}

/** The seed of round `k` of an `onlyNovel` run seeded with `seed` (round 0 is `seed` itself). */
const roundSeed = (seed: number, k: number) => (k === 0 ? seed : (seed ^ Math.imul(k, 0x9e3779b1)) >>> 0);

/**
 * Sample `o.records` whole records (see {@link GeneratedRecord}) in one native batch. With `o.onlyNovel`, keep
 * sampling batches (each round with a seed derived from `o.seed` and the round) until `o.records` whole records
 * that are not training records are found, at most {@link ONLY_NOVEL_ATTEMPTS} per record asked for; when that
 * runs out, a warning `LSTMGEN_FEW_NOVEL` and the novel ones found. A record cut at `maxTokens` never counts as
 * novel there. Sample i of the first round is sample i of `generate({ records })` with the same seed.
 * @throws ConfigError when the model knows no record boundary or was trained on one plain text (`records`), for
 *   `onlyNovel` without records or
 *   without record hashes, or for `records` with `numSamples` or `stop`; as `generate()` otherwise.
 */
export async function sampleRecords(
  native: NativeHandle,
  tokenizer: Tokenizer,
  known: TrainingRecords,
  o: GenerateOptions & { records: number },
  warn: (message: string, code: GenerateWarningCode) => void = emitWarning,
): Promise<GeneratedRecord[]> {
  if (o.numSamples !== 1) {
    throw new ConfigError('numSamples', 'cannot be combined with records: records says how many are sampled');
  }
  if (o.stop !== undefined) {
    throw new ConfigError('stop', 'cannot be combined with records: a record ends at the record boundary');
  }
  // a BPE vocabulary always holds the boundary token: the model file says whether training ever showed it
  if (known.plainText) throw plainTextRecordsError();
  if (o.onlyNovel && !known.known) throw new ConfigError('onlyNovel', `cannot tell novel records: ${known.why}`);
  const first = planSampling(tokenizer, o);
  const promptIds = first.prompt.subarray(1); // after the boundary
  const boundary = first.prompt[0];
  const toRecord = (ids: number[]): GeneratedRecord => {
    const end = ids.at(-1) === boundary ? 'boundary' : 'maxTokens';
    const body = new Uint32Array(promptIds.length + ids.length - (end === 'boundary' ? 1 : 0));
    body.set(promptIds);
    for (let i = promptIds.length; i < body.length; i++) body[i] = ids[i - promptIds.length];
    const inTraining = known.has(body);
    // the prompt as given, as generate() and the CLI show it (symbols the vocabulary lacks, read as <unk>, too)
    const text = o.prompt + decodeAfter(tokenizer, first.prompt, body.subarray(promptIds.length));
    return { text, novel: inTraining === null ? null : !inTraining, end };
  };
  if (!o.onlyNovel) {
    const records = (await native.generate(first.prompt, first.native)).map(toRecord);
    if (!known.known) {
      warn(`novel is null: ${known.why}`, 'LSTMGEN_NOVELTY_UNKNOWN');
    }
    return records;
  }
  const budget = ONLY_NOVEL_ATTEMPTS * o.records;
  const found: GeneratedRecord[] = [];
  let sampled = 0;
  for (let round = 0; found.length < o.records && sampled < budget; round++) {
    const need = o.records - found.length;
    // round 0: as many as asked for; then as many as the novel share so far says are needed (at least the number
    // missing, at most 4 times the number asked for)
    const guess = round === 0 ? need : found.length > 0 ? Math.ceil((need * sampled) / found.length) : 4 * need;
    const size = Math.min(budget - sampled, Math.max(need, guess), 4 * o.records, MAX_SAMPLES);
    const seed = roundSeed(first.native.seed, round);
    const batch = await native.generate(first.prompt, { ...first.native, numSamples: size, seed });
    sampled += size;
    for (const r of batch.map(toRecord)) {
      if (r.novel && r.end === 'boundary' && found.length < o.records) found.push(r);
    }
  }
  if (found.length < o.records) {
    warn(
      `onlyNovel: found ${found.length} of ${o.records} novel whole records in ${sampled} sampled (the most it samples is ${ONLY_NOVEL_ATTEMPTS} per record asked for); the model mostly repeats its training records or does not end them within maxTokens ${o.maxTokens}`,
      'LSTMGEN_FEW_NOVEL',
    );
  }
  return found;
}

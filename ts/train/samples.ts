/**
 * Samples while training: every `sampleEvery` steps the model continues `samplePrompt` for `sampleTokens` tokens.
 * Generation runs on the inference path with its own seeded random stream and a fresh state; it reads the
 * weights and touches neither the carried training state nor the dropout seeds (those come from the step), so a
 * run takes the same steps with samples as without. Its time lies outside the timed native steps (tokens/s).
 */
import type { TrainConfig } from '../config';
import { ConfigError } from '../errors';
import type { SampleInfo } from '../events';
import type { LstmModel } from '../model';
import type { SampleOptions } from '../native/handle';
import { decodeAfter, planSampling } from '../sampling/plan';
import { UNK } from '../tokenizer';

/** Options of `planSampling` that leave only the start of an empty prompt to decide. */
const LINE_START = { maxTokens: 1, temperature: 1, topP: 1, strict: true, allowUnk: false } as const;

/** The train options that shape the samples while training. */
export type SampleSettings = Pick<
  TrainConfig,
  'sampleEvery' | 'samplePrompt' | 'sampleTokens' | 'sampleTemperature' | 'sampleSeed' | 'seed'
>;

/** Takes the samples of one run from its model. */
export class TrainingSampler {
  /** Prompt ids of every sample (>= 1 id). */
  private readonly prompt: Uint32Array;
  private readonly options: SampleOptions;

  /**
   * Encodes the prompt once, before the first step. An empty prompt starts from the boundary token when the
   * vocabulary has one (the start of a record or document), else from a line break as `generate()` does.
   * `<unk>` is never sampled.
   * @throws ConfigError (field `samplePrompt`) for a prompt with symbols outside the vocabulary (they would be
   *   `<unk>` in every sample), or an empty prompt when the vocabulary has neither a boundary nor a line break.
   */
  constructor(
    private readonly model: LstmModel,
    private readonly settings: SampleSettings,
  ) {
    const { tokenizer } = model;
    let unknown: string | undefined;
    const ids = tokenizer.encode(settings.samplePrompt, { onWarning: (m) => (unknown = m) });
    if (unknown !== undefined) {
      const suffix = ` mapped to ${UNK}`;
      const what = unknown.endsWith(suffix) ? unknown.slice(0, -suffix.length) : unknown;
      throw new ConfigError('samplePrompt', `has ${what}; use symbols of the training corpus, or an empty prompt`);
    }
    this.options = {
      numSamples: 1,
      maxTokens: settings.sampleTokens,
      temperature: settings.sampleTemperature,
      topK: 0,
      topP: 1,
      seed: settings.sampleSeed ?? settings.seed,
      stopSequences: [],
      bannedIds: tokenizer.unkId === undefined ? [] : [tokenizer.unkId],
      boundaryId: tokenizer.boundaryId, // a sampled boundary starts the next record from the fresh state
    };
    if (ids.length > 0) this.prompt = ids;
    else if (tokenizer.boundaryId !== undefined) this.prompt = Uint32Array.of(tokenizer.boundaryId);
    else {
      try {
        this.prompt = planSampling(tokenizer, { ...LINE_START, prompt: '' }).prompt; // a line break
      } catch (err) {
        if (err instanceof ConfigError) throw new ConfigError('samplePrompt', err.reason);
        throw err;
      }
    }
  }

  /** Whether a sample is due after global step `step` (1-based). */
  due(step: number): boolean {
    return this.settings.sampleEvery > 0 && step % this.settings.sampleEvery === 0;
  }

  /** Sample the model as it is after `step` of `epoch`. */
  async sample(step: number, epoch: number): Promise<SampleInfo> {
    const [ids] = await this.model.native.generate(this.prompt, this.options);
    return {
      step,
      epoch,
      prompt: this.settings.samplePrompt,
      text: decodeAfter(this.model.tokenizer, this.prompt, ids),
      temperature: this.options.temperature,
      seed: this.options.seed,
    };
  }
}

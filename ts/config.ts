/**
 * Validation of user options with zod. Every parse either returns a fully-defaulted object or throws a
 * {@link ConfigError} naming the first bad field and saying why, e.g. `"hiddenSize: must be a positive integer, got -3"`.
 */
import { z } from 'zod';
import type { CorpusSource } from './data';
import { ConfigError } from './errors';
import type { CheckpointInfo, EpochInfo, EvalInfo, StartInfo, StepInfo } from './events';

const isNum = (v: unknown): v is number => typeof v === 'number';
/** A schema accepting numbers that satisfy `ok`; `why` is the reason shown when they do not. */
const num = (ok: (v: number) => boolean, why: string) => z.custom<number>((v) => isNum(v) && ok(v), why);

/**
 * A schema accepting numbers that pass every rule; the message is the `why` of the first rule that fails
 * (so `0` reads "must be a positive integer" and `1e8` "must be <= 1048576").
 */
const rules = (...checks: Array<[ok: (v: number) => boolean, why: string]>) =>
  z.custom<number>((v) => isNum(v) && checks.every(([ok]) => ok(v)), {
    error: (issue) => checks.find(([ok]) => !(isNum(issue.input) && ok(issue.input)))?.[1] ?? checks[0][1],
  });

const isPositiveInt = (v: number) => Number.isInteger(v) && v > 0;
const positiveInt = num(isPositiveInt, 'must be a positive integer');

/** Largest size the engine accepts for any single model dimension (vocabSize, embeddingDim, hiddenSize): 2^20. */
export const MAX_DIM = 1 << 20;
/** Most stacked LSTM layers the engine accepts: 256. */
export const MAX_LAYERS = 256;
/** Largest `maxTokens` the engine accepts: 2^24. */
export const MAX_TOKENS = 1 << 24;
/** Largest `numSamples` the engine accepts: 65536. */
export const MAX_SAMPLES = 65536;
const atMost = (max: number): [(v: number) => boolean, string] => [(v) => v <= max, `must be <= ${max}`];
/** A model dimension: a positive integer <= {@link MAX_DIM}. */
const dim = rules([isPositiveInt, 'must be a positive integer'], atMost(MAX_DIM));
const seed = num((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff, 'must be an integer in [0, 2^32-1]');
const unitOpen = num((v) => v >= 0 && v < 1, 'must be a number in [0, 1)');
const fn = <T extends (...args: never[]) => unknown>() =>
  z.custom<T>((v) => typeof v === 'function', 'must be a function');
const corpus = z.custom<CorpusSource>(
  (v) =>
    (typeof v === 'string' && v.length > 0) ||
    (typeof v === 'object' &&
      v !== null &&
      (typeof (v as { path?: unknown }).path === 'string' || typeof (v as { text?: unknown }).text === 'string')),
  'must be a file path, "moby-dick", { path: string } or { text: string }',
);

/**
 * Defaults of {@link TrainConfig}; sized so a CPU with 2 cores learns moby-dick to readable text in a few
 * minutes (measured here: ~60k tokens/s; 600 steps, ~30 s, reach validation loss 1.58 nats = 2.28 bits/char;
 * lr 3e-3 reached 1.70 in the same steps).
 */
export const TRAIN_DEFAULTS = {
  valFraction: 0.1,
  tokenizer: 'char' as 'char' | 'word',
  vocabSize: 10000,
  lowercase: true,
  embeddingDim: 64,
  hiddenSize: 256,
  numLayers: 1,
  dropout: 0,
  seqLen: 64,
  batchSize: 32,
  lr: 1e-2,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0,
  clipNorm: 5,
  seed: 1234,
  device: 'auto' as 'auto' | 'cpu' | 'cuda',
  precision: 'f32' as 'f32' | 'bf16',
};

const device = z.enum(['auto', 'cpu', 'cuda'], { error: 'must be "auto", "cpu" or "cuda"' });
/** Matrix-product precision; see `Precision` in native.ts. */
export const PrecisionSchema = z.enum(['f32', 'bf16'], { error: 'must be "f32" or "bf16"' });
const nonNegInt = num((v) => Number.isInteger(v) && v >= 0, 'must be an integer >= 0');
const nonNegNum = num((v) => Number.isFinite(v) && v >= 0, 'must be a finite number >= 0');
const path = z.string({ error: 'must be a path' }).min(1, 'must not be empty');

/**
 * Learning-rate schedules (`lr` is the base rate; `step` below is the 0-based index of the step about to run):
 * - `constant`: `lr`.
 * - `step`: `lr * gamma ^ floor(step / stepSize)`.
 * - `cosine`: linear warmup `lr * (step + 1) / warmupSteps` for the first `warmupSteps` steps, then a
 *   half cosine from `lr` down to `minLr` at `totalSteps` (default: the run's planned total steps).
 * - `plateau` (reduce on plateau): multiply the rate by `factor` when `patience` monitored validations in a
 *   row did not improve the best validation loss by more than `minDelta`; never below `minLr`.
 */
export const LrScheduleSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('constant') }),
    z.strictObject({
      type: z.literal('step'),
      stepSize: positiveInt,
      gamma: num((v) => v > 0 && v <= 1, 'must be a number in (0, 1]').default(0.5),
    }),
    z.strictObject({
      type: z.literal('cosine'),
      warmupSteps: nonNegInt.default(0),
      minLr: nonNegNum.default(0),
      totalSteps: positiveInt.optional(),
    }),
    z.strictObject({
      type: z.literal('plateau'),
      factor: num((v) => v > 0 && v < 1, 'must be a number in (0, 1)').default(0.5),
      patience: positiveInt.default(2),
      minDelta: nonNegNum.default(0),
      minLr: nonNegNum.default(0),
    }),
  ],
  { error: 'must be { type: "constant" | "step" | "cosine" | "plateau", ... }' },
);

/** A validated learning-rate schedule. */
export type LrScheduleConfig = z.output<typeof LrScheduleSchema>;

/**
 * Early stopping: stop when `patience` monitored validations in a row did not improve the best validation
 * loss by more than `minDelta`; with `restoreBest` (default) the returned model has the best weights.
 */
export const EarlyStoppingSchema = z.strictObject({
  patience: positiveInt,
  minDelta: nonNegNum.default(0),
  restoreBest: z.boolean({ error: 'must be true or false' }).default(true),
});

/** Validated early-stopping options. */
export type EarlyStoppingConfig = z.output<typeof EarlyStoppingSchema>;

/** Schema of the options of `train()`. */
export const TrainConfigSchema = z
  .strictObject({
    /** Training text: a file path, the builtin name `'moby-dick'`, `{ path }` or `{ text }`. */
    corpus,
    /** Separate validation text; when absent the last `valFraction` of `corpus` is held out. */
    valCorpus: corpus.optional(),
    valFraction: num((v) => v > 0 && v < 1, 'must be a number in (0, 1)').default(TRAIN_DEFAULTS.valFraction),
    tokenizer: z.enum(['char', 'word'], { error: 'must be "char" or "word"' }).default(TRAIN_DEFAULTS.tokenizer),
    /** Word models only: vocabulary size including `<unk>` and `<eos>`. */
    vocabSize: rules([(v) => Number.isInteger(v) && v >= 3, 'must be an integer >= 3'], atMost(MAX_DIM)).default(
      TRAIN_DEFAULTS.vocabSize,
    ),
    /** Word models only: lower-case the text before splitting. */
    lowercase: z.boolean({ error: 'must be true or false' }).default(TRAIN_DEFAULTS.lowercase),
    embeddingDim: dim.default(TRAIN_DEFAULTS.embeddingDim),
    hiddenSize: dim.default(TRAIN_DEFAULTS.hiddenSize),
    numLayers: rules([isPositiveInt, 'must be a positive integer'], atMost(MAX_LAYERS)).default(
      TRAIN_DEFAULTS.numLayers,
    ),
    /** Inverted-dropout probability between layers and before the output layer (training only). */
    dropout: unitOpen.default(TRAIN_DEFAULTS.dropout),
    /** Truncated-BPTT length in tokens. */
    seqLen: positiveInt.default(TRAIN_DEFAULTS.seqLen),
    batchSize: positiveInt.default(TRAIN_DEFAULTS.batchSize),
    /** Passes over the training text; default 1, or as many as `maxSteps` needs when that is set. */
    epochs: positiveInt.optional(),
    /** Upper bound on the total number of optimizer steps. */
    maxSteps: positiveInt.optional(),
    /** Adam learning rate. */
    lr: num((v) => Number.isFinite(v) && v > 0, 'must be a finite number > 0').default(TRAIN_DEFAULTS.lr),
    beta1: unitOpen.default(TRAIN_DEFAULTS.beta1),
    beta2: unitOpen.default(TRAIN_DEFAULTS.beta2),
    eps: num((v) => Number.isFinite(v) && v > 0, 'must be a finite number > 0').default(TRAIN_DEFAULTS.eps),
    /** Decoupled (AdamW) weight decay. */
    weightDecay: num((v) => Number.isFinite(v) && v >= 0, 'must be a finite number >= 0').default(
      TRAIN_DEFAULTS.weightDecay,
    ),
    /** Clip the global gradient L2 norm to this value; 0 turns clipping off. */
    clipNorm: num((v) => Number.isFinite(v) && v >= 0, 'must be a finite number >= 0 (0 = off)').default(
      TRAIN_DEFAULTS.clipNorm,
    ),
    /** Seeds the initial weights and the dropout masks. */
    seed: seed.default(TRAIN_DEFAULTS.seed),
    device: device.default(TRAIN_DEFAULTS.device),
    /**
     * Matrix-product precision: `f32` (default) or `bf16` (bf16 inputs, f32 accumulation, on Intel AMX when
     * present; CPU only). The model file is the same either way; the saved weights are f32.
     */
    precision: PrecisionSchema.default(TRAIN_DEFAULTS.precision),
    /** Also evaluate on the validation text every this many steps (reported through `onEval`). */
    evalEvery: positiveInt.optional(),
    onStart: fn<(info: StartInfo) => void | Promise<void>>().optional(),
    onStep: fn<(info: StepInfo) => void | Promise<void>>().optional(),
    onEval: fn<(info: EvalInfo) => void | Promise<void>>().optional(),
    onEpoch: fn<(info: EpochInfo) => void | Promise<void>>().optional(),
    /** Checked between steps: when aborted, training stops and `train()` resolves with the model so far. */
    signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, 'must be an AbortSignal').optional(),
    /** Learning-rate schedule over the base `lr`; default constant. */
    lrSchedule: LrScheduleSchema.default({ type: 'constant' }),
    /** Stop when the monitored validation loss stops improving (see {@link EarlyStoppingSchema}). */
    earlyStopping: EarlyStoppingSchema.optional(),
    /**
     * A step whose loss or gradient is non-finite: `'stop'` (default) throws a NumericError naming the step;
     * `'skip'` leaves the weights unchanged, records the step in `history.skippedSteps` and goes on.
     */
    onNonFinite: z.enum(['skip', 'stop'], { error: 'must be "skip" or "stop"' }).default('stop'),
    /** Directory for checkpoints (created if missing): `step-<n>.lstm` every `checkpointEvery` steps and at the end, `best.lstm` at each new best validation loss. */
    checkpointDir: path.optional(),
    /** Steps between periodic checkpoints; default 1000 (needs `checkpointDir`). */
    checkpointEvery: positiveInt.optional(),
    /** Periodic checkpoints to keep (the newest); default 3 (needs `checkpointDir`). */
    keepCheckpoints: positiveInt.optional(),
    /**
     * Continue from a checkpoint file (or the newest `step-<n>.lstm` of a directory): weights, Adam state, data
     * position, dropout RNG, schedule and early-stopping state. Shape, tokenizer, seqLen, batchSize, dropout and
     * seed come from the checkpoint (giving a different value is a ConfigError); lr, epochs, maxSteps and the
     * schedule may change. `epochs` and `maxSteps` count from the start of the original run.
     */
    resumeFrom: path.optional(),
    /** Write metrics as JSON lines to this file (see `RunRecord`); appended to when resuming. */
    logFile: path.optional(),
    onCheckpoint: fn<(info: CheckpointInfo) => void | Promise<void>>().optional(),
  })
  .superRefine((cfg, ctx) => {
    for (const field of ['checkpointEvery', 'keepCheckpoints'] as const) {
      if (cfg[field] !== undefined && cfg.checkpointDir === undefined) {
        ctx.addIssue({ code: 'custom', path: [field], message: 'needs checkpointDir', input: cfg[field] });
      }
    }
    const sched = cfg.lrSchedule;
    if ((sched.type === 'cosine' || sched.type === 'plateau') && sched.minLr > cfg.lr) {
      ctx.addIssue({
        code: 'custom',
        path: ['lrSchedule', 'minLr'],
        message: `must not exceed lr (${cfg.lr})`,
        input: sched.minLr,
      });
    }
  });

/** Options of `train()` as the user writes them (everything but `corpus` has a default). */
export type TrainConfigInput = z.input<typeof TrainConfigSchema>;
/** Options of `train()` after validation and defaults. */
export type TrainConfig = z.output<typeof TrainConfigSchema>;

/** Schema of the options of `model.generate()`. */
export const GenerateOptionsSchema = z.strictObject({
  /** Text to continue. Empty: generation starts from a line break (`'\n'` or `<eos>`). */
  prompt: z.string({ error: 'must be a string' }).default(''),
  /** Tokens to generate per sample (characters or words). */
  maxTokens: rules([isPositiveInt, 'must be a positive integer'], atMost(MAX_TOKENS)).default(200),
  /** Softmax temperature; 0 = greedy (argmax). */
  temperature: num((v) => Number.isFinite(v) && v >= 0, 'must be a finite number >= 0').default(1),
  /** Keep only the k most likely tokens; unset = off. */
  topK: num((v) => Number.isInteger(v) && v >= 1, 'must be an integer >= 1').optional(),
  /** Nucleus sampling mass; 1 = off. */
  topP: num((v) => v > 0 && v <= 1, 'must be a number in (0, 1]').default(1),
  numSamples: rules([isPositiveInt, 'must be a positive integer'], atMost(MAX_SAMPLES)).default(1),
  /** Sampling seed; same seed, same text. Unset: a fresh random seed per call. */
  seed: seed.optional(),
  /** A sample ends at the first of these strings; the returned text is cut before it. */
  stop: z
    .array(z.string({ error: 'must be a string' }).min(1, 'must not be empty'), {
      error: 'must be an array of strings',
    })
    .optional(),
  /** Throw a DataError for prompt symbols outside the vocabulary instead of mapping them to `<unk>`. */
  strict: z.boolean({ error: 'must be true or false' }).default(false),
});

/** Options of `model.generate()` as the user writes them. */
export type GenerateOptionsInput = z.input<typeof GenerateOptionsSchema>;
/** Options of `model.generate()` after validation and defaults. */
export type GenerateOptions = z.output<typeof GenerateOptionsSchema>;

/** Schema of the options of `model.stream()`: those of `generate()` for one sample, plus `chunkTokens`. */
export const StreamOptionsSchema = GenerateOptionsSchema.omit({ numSamples: true }).extend({
  /** Tokens sampled per native call; each call yields at most one text piece. 1 = a piece per token. */
  chunkTokens: positiveInt.default(1),
});

/** Options of `model.stream()` as the user writes them. */
export type StreamOptionsInput = z.input<typeof StreamOptionsSchema>;
/** Options of `model.stream()` after validation and defaults. */
export type StreamOptions = z.output<typeof StreamOptionsSchema>;

/** Schema of the options of `model.evaluate()`. */
export const EvaluateOptionsSchema = z.strictObject({
  /** Streams per batch; default the training batchSize, lowered to fit a short text. */
  batchSize: positiveInt.optional(),
  /** Positions per batch; default the training seqLen. */
  seqLen: positiveInt.optional(),
  /** Throw a DataError for symbols outside the vocabulary instead of counting them as `<unk>`. */
  strict: z.boolean({ error: 'must be true or false' }).optional(),
  /** Receives the single warning about symbols counted as `<unk>`. */
  onWarning: fn<(message: string) => void>().optional(),
});

/** Options of `model.evaluate()` as the user writes them. */
export type EvaluateOptionsInput = z.input<typeof EvaluateOptionsSchema>;
/** Options of `model.evaluate()` after validation. */
export type EvaluateOptionsParsed = z.output<typeof EvaluateOptionsSchema>;

/** Show a rejected value in a message: strings quoted, NaN and numbers as written. */
function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === undefined || value === null)
    return String(value);
  if (typeof value === 'function') return 'a function';
  return Array.isArray(value) ? 'an array' : 'an object';
}

function valueAt(input: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v = input;
  for (const key of path)
    v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[key] : undefined;
  return v;
}

/**
 * Parse `input` with `schema`.
 * @throws ConfigError for the first issue: `field` is its dotted path, the message ends with the rejected value.
 */
function parseWith<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue.code === 'unrecognized_keys') {
    const prefix = issue.path.map((p) => `${String(p)}.`).join('');
    throw new ConfigError(
      issue.keys.map((k) => prefix + k).join(', '),
      `unknown option${issue.keys.length > 1 ? 's' : ''} of ${what}`,
    );
  }
  const field = issue.path.map(String).join('.');
  if (!field) throw new ConfigError('', `${what} must be an object, got ${show(input)}`);
  throw new ConfigError(field, `${issue.message}, got ${show(valueAt(input, issue.path))}`);
}

/**
 * Check a file-path argument of a public function.
 * @throws ConfigError naming `field` unless `value` is a non-empty string.
 */
export function assertPath(value: unknown, field: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0)
    throw new ConfigError(field, `must be a file path (a non-empty string), got ${show(value)}`);
}

/**
 * Check a corpus argument (as the `corpus` option of `train()`).
 * @throws ConfigError naming `field` unless `value` is a path, a builtin name, `{ path }` or `{ text }`.
 */
export function parseCorpusSource(value: unknown, field = 'corpus'): CorpusSource {
  const r = corpus.safeParse(value);
  if (!r.success) throw new ConfigError(field, `${r.error.issues[0].message}, got ${show(value)}`);
  return r.data;
}

/** Options of `loadModel()` / `LstmModel.load()`. */
export const LoadOptionsSchema = z
  .object({
    /** Where the weights go; default `auto` (CUDA when usable, else CPU). */
    device: device.optional(),
    /** Matrix-product precision for generation, evaluation and further training; default `f32`. */
    precision: PrecisionSchema.optional(),
  })
  .strict();

/**
 * Validate the options of `loadModel()`.
 * @throws ConfigError naming the field, e.g. `"precision: must be \"f32\" or \"bf16\", got \"fp8\""`.
 */
export function parseLoadOptions(input: unknown = {}): z.output<typeof LoadOptionsSchema> {
  return parseWith(LoadOptionsSchema, input, 'the load options');
}

/**
 * Validate a precision value (`model.setPrecision()`).
 * @throws ConfigError with field `precision` for anything but `"f32"` or `"bf16"`.
 */
export function parsePrecision(input: unknown): 'f32' | 'bf16' {
  return parseWith(z.object({ precision: PrecisionSchema }), { precision: input }, 'the precision').precision;
}

/**
 * Validate and default the options of `train()`.
 * @throws ConfigError naming the field, e.g. `"lr: must be a finite number > 0, got NaN"`.
 */
export function parseTrainConfig(input: TrainConfigInput): TrainConfig {
  return parseWith(TrainConfigSchema, input, 'the train config');
}

/**
 * Validate and default the options of `model.stream()`.
 * @throws ConfigError naming the field, e.g. `"chunkTokens: must be a positive integer, got 0"`.
 */
export function parseStreamOptions(input: StreamOptionsInput = {}): StreamOptions {
  return parseWith(StreamOptionsSchema, input, 'the stream options');
}

/**
 * Validate and default the options of `model.generate()`.
 * @throws ConfigError naming the field, e.g. `"topP: must be a number in (0, 1], got 0"`.
 */
export function parseGenerateOptions(input: GenerateOptionsInput = {}): GenerateOptions {
  return parseWith(GenerateOptionsSchema, input, 'the generate options');
}

/**
 * Validate the options of `model.evaluate()`.
 * @throws ConfigError naming the field, e.g. `"seqLen: must be a positive integer, got -4"`.
 */
export function parseEvaluateOptions(input: EvaluateOptionsInput = {}): EvaluateOptionsParsed {
  return parseWith(EvaluateOptionsSchema, input, 'the evaluate options');
}

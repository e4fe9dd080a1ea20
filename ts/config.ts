/**
 * The options of every public call, one zod schema per option set. Each field is written once, in its schema:
 * its type and validation, its default (`.default()`), its API documentation (the JSDoc on the key, which the
 * exported `z.input` / `z.output` types carry into editors) and its one-line `lstmgen --help` text
 * (`.describe()`; the CLI adds the default from the schema). Every parse either returns a fully-defaulted object
 * or throws a {@link ConfigError} naming the first bad field and saying why, e.g.
 * `"hiddenSize: must be a positive integer, got -3"`.
 */
import { z } from 'zod';
import type { DataProgress } from './corpus/dataset';
import { CORPUS_ENCODINGS } from './corpus/read';
import { CORPUS_FORMATS } from './corpus/records';
import type { CorpusItem, CorpusSource } from './corpus/sources';
import { ConfigError, show } from './errors';
import type {
  AveragingInfo,
  CheckpointInfo,
  EpochInfo,
  EvalInfo,
  SampleInfo,
  StartInfo,
  StepInfo,
  TrainWarningCode,
} from './events';
import { PRECISIONS, type Precision } from './native/handle';
import { DEVICES } from './native/loader';
import { MIN_BPE_VOCAB } from './tokenizer/bpe';
import { WORD_SPLITS } from './tokenizer/word';

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

/** A schema accepting one of `values`; the message lists them: `must be "a", "b" or "c"`. */
const choice = <const T extends readonly [string, ...string[]]>(values: T) => {
  const quoted = values.map((v) => JSON.stringify(v));
  return z.enum(values, { error: `must be ${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}` });
};

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
const positiveNum = num((v) => Number.isFinite(v) && v > 0, 'must be a finite number > 0');
const nonNegInt = num((v) => Number.isInteger(v) && v >= 0, 'must be an integer >= 0');
const nonNegNum = num((v) => Number.isFinite(v) && v >= 0, 'must be a finite number >= 0');

/**
 * Smallest positive softmax temperature: 1e-30. Sampling works in float32: the CPU scales logits by
 * `1 / temperature` and the CUDA kernel divides each logit by it, and both stay finite (float32 ends at 3.4e38)
 * for logits up to 3.4e8 in magnitude only from here up; below ~2.9e-39 even `1 / temperature` overflows. 0 is
 * greedy decoding (argmax), the limit of ever smaller temperatures.
 */
export const MIN_TEMPERATURE = 1e-30;
/** A softmax temperature: 0 (greedy) or a finite number >= {@link MIN_TEMPERATURE}. */
const temperature = num(
  (v) => v === 0 || (Number.isFinite(v) && v >= MIN_TEMPERATURE),
  `must be 0 (greedy) or a finite number >= ${MIN_TEMPERATURE} (a smaller one overflows the engine's float32 sampling)`,
);
const bool = z.boolean({ error: 'must be true or false' });
const path = z.string({ error: 'must be a path' }).min(1, 'must not be empty');
const fn = <T extends (...args: never[]) => unknown>() =>
  z.custom<T>((v) => typeof v === 'function', 'must be a function');
const isCorpusItem = (v: unknown): v is CorpusItem =>
  (typeof v === 'string' && v.length > 0) ||
  (typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    (typeof (v as { path?: unknown }).path === 'string' || typeof (v as { text?: unknown }).text === 'string'));
const corpus = z.custom<CorpusSource>(
  (v) => isCorpusItem(v) || (Array.isArray(v) && v.length > 0 && v.every(isCorpusItem)),
  'must be a file, directory or glob path, a builtin name ("moby-dick" or "builtin:moby-dick"), { path }, { text }, or a non-empty list of these',
);
const format = choice(CORPUS_FORMATS);
const encoding = choice(CORPUS_ENCODINGS);
const field = z.union([z.string().min(1), num((v) => Number.isInteger(v) && v >= 0, '')], {
  error: 'must be a field or column name, or a 0-based column index',
});
const extensions = z
  .array(z.string().regex(/^\.?[^./\\]+$/, 'must be a file extension such as ".txt"'), {
    error: 'must be a list of file extensions such as [".txt"]',
  })
  .min(1, 'must not be empty');
const device = choice(DEVICES);
const precision = choice(PRECISIONS);

/** The fields of an object schema's shape that have a default. */
type DefaultedKeys<S extends z.ZodRawShape> = {
  [K in keyof S]: S[K] extends z.ZodDefault ? K : never;
}[keyof S];

/** The defaults of an object schema, read from its fields' `.default()`. */
function defaultsOf<S extends z.ZodRawShape>(shape: S): { readonly [K in DefaultedKeys<S>]: z.output<S[K]> } {
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(shape)) {
    if (field instanceof z.ZodDefault) out[key] = field.def.defaultValue;
  }
  return out as { readonly [K in DefaultedKeys<S>]: z.output<S[K]> };
}

/**
 * Learning-rate schedule over the base `lr` (`step` below is the 0-based index of the step about to run):
 * - `constant`: `lr` throughout.
 * - `step`: `lr * gamma ^ floor(step / stepSize)`.
 * - `cosine`: linear warmup `lr * (step + 1) / warmupSteps` for the first `warmupSteps` steps, then a
 *   half cosine from `lr` down to `minLr` at `totalSteps` (unset: the run's planned total steps).
 * - `plateau` (reduce on plateau): multiply the rate by `factor` when `patience` monitored validations in a
 *   row did not improve the best validation loss (nats) by more than `minDelta`; never below `minLr`.
 */
export const LrScheduleSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('constant') }),
    z.strictObject({
      type: z.literal('step'),
      /** Steps between two reductions. */
      stepSize: positiveInt,
      /** Factor of each reduction, in (0, 1]. */
      gamma: num((v) => v > 0 && v <= 1, 'must be a number in (0, 1]').default(0.5),
    }),
    z.strictObject({
      type: z.literal('cosine'),
      /** Steps of linear warmup before the cosine. */
      warmupSteps: nonNegInt.default(0),
      /** Rate at the end of the cosine, <= `lr`. */
      minLr: nonNegNum.default(0),
      /** Step at which the cosine reaches `minLr`; unset: the run's planned total steps. */
      totalSteps: positiveInt.optional(),
    }),
    z.strictObject({
      type: z.literal('plateau'),
      /** Factor of each reduction, in (0, 1). */
      factor: num((v) => v > 0 && v < 1, 'must be a number in (0, 1)').default(0.5),
      /** Monitored validations in a row without improvement before a reduction. */
      patience: positiveInt.default(2),
      /** Smallest decrease of the validation loss (nats) that counts as an improvement. */
      minDelta: nonNegNum.default(0),
      /** The rate never goes below this, <= `lr`. */
      minLr: nonNegNum.default(0),
    }),
  ],
  { error: 'must be { type: "constant" | "step" | "cosine" | "plateau", ... }' },
);

/** A learning-rate schedule as the user writes it (see {@link LrScheduleSchema}). */
export type LrScheduleOptions = z.input<typeof LrScheduleSchema>;
/** A validated learning-rate schedule, defaults filled in. */
export type LrScheduleConfig = z.output<typeof LrScheduleSchema>;

/**
 * Early stopping: stop when `patience` monitored validations in a row did not improve the best validation
 * loss (nats/token) by more than `minDelta`; with `restoreBest` the returned model has the best weights.
 */
export const EarlyStoppingSchema = z.strictObject({
  /** Monitored validations in a row without improvement that end the run. */
  patience: positiveInt.describe('stop after this many validations without improvement; keep the best weights'),
  /** Smallest decrease of the validation loss (nats) that counts as an improvement. */
  minDelta: nonNegNum.default(0),
  /** Return the model with the best weights rather than the last. */
  restoreBest: bool.default(true),
});

/** Early-stopping options as the user writes them. */
export type EarlyStoppingOptions = z.input<typeof EarlyStoppingSchema>;
/** Validated early-stopping options. */
export type EarlyStoppingConfig = z.output<typeof EarlyStoppingSchema>;

/**
 * The fields of the options of `train()`. The defaults are sized so that a CPU with 2 cores learns moby-dick to
 * readable text in a few minutes (~60k tokens/s; 600 steps, ~30 s, reach validation loss 1.58 nats = 2.28
 * bits/char; lr 3e-3 reached 1.70 in the same steps).
 */
const trainFields = {
  /**
   * Training corpus: a file; a directory (every file under it, recursively, hidden ones skipped, sorted by
   * path; see `extensions`); a glob (`'data/**\/*.txt'`); a builtin (`'moby-dick'`, or `'builtin:moby-dick'`
   * whatever files exist: an existing path wins over a bare builtin name); `{ path }` (a file or directory
   * only); `{ text }`; or a list of these. Each file is a document; documents and records are joined by the
   * tokenizer's boundary token. Read in chunks, never as one string: any size trains.
   */
  corpus: corpus.describe(
    'file, directory, glob or builtin (moby-dick; builtin:moby-dick whatever files exist); repeatable',
  ),
  /** Separate validation corpus, read with the same options; when absent `valFraction` of `corpus` is held out. */
  valCorpus: corpus
    .optional()
    .describe('separate validation corpus, as --corpus (default: --val-fraction of the corpus); repeatable'),
  /**
   * Held-out fraction of `corpus` for validation, in [0, 1). In the `text` format the last `valFraction` of the
   * tokens (the cut falls between two tokens: any code point for the char tokenizer, a word boundary for the
   * word tokenizer), in a record format a seeded random `valFraction` of the records. 0: no validation (no
   * validation metrics; `earlyStopping`, `evalEvery` and the plateau schedule need validation).
   */
  valFraction: num((v) => v >= 0 && v < 1, 'must be a number in [0, 1)')
    .default(0.1)
    .describe('held-out fraction, 0 = no validation'),
  /**
   * How documents become records: `'text'` (a document is one record), `'lines'` (one record per non-blank
   * line), `'jsonl'` (the string `field` of each JSON line), `'csv'` (the column `field`; the first row is the
   * header). Records are framed by the boundary token and shuffled every epoch from `seed`.
   */
  format: format.default('text').describe('record format: text | lines | jsonl | csv'),
  /** JSONL field or CSV column (a header name, or a 0-based index) holding the record; unset: `'text'`. */
  field: field
    .optional()
    .describe('jsonl field or csv column (name or 0-based index) holding the record (default text)'),
  /** Keep only files with these extensions (e.g. `['.txt']`, case-insensitive) among those found in directories and by globs. */
  extensions: extensions
    .optional()
    .describe('read only files with this extension in directories and globs (repeatable: --ext .txt)'),
  /**
   * Encoding of corpus files without a byte-order mark: `'utf-8'`, `'utf-16le'`, `'utf-16be'` or `'latin1'`
   * (read as Windows-1252). A byte-order mark always decides; text invalid in the encoding is a DataError.
   */
  encoding: encoding.default('utf-8').describe('encoding of corpus files without a byte-order mark'),
  /**
   * Directory for cached token ids (created if missing; ConfigError when not writable): a second run on
   * unchanged files (same paths, sizes, modification times) and settings loads the ids instead of reading the
   * corpus; a stale, truncated or corrupt cache file is rebuilt.
   */
  cacheDir: path.optional().describe('cache tokenized ids here; a second run on unchanged files skips tokenizing'),
  /**
   * Called (and awaited) while the corpus is read: phase `scan`, then `encode` (or `cache`), bytes done of the total;
   * a BPE vocabulary trained on the corpus reports `merges` once between them.
   */
  onDataProgress: fn<(progress: DataProgress) => void | Promise<void>>().optional(),
  /**
   * `'char'` (Unicode code points), `'word'` (lower-cased words and punctuation, `<unk>`, `<eos>`), `'bpe'` (a
   * byte-level BPE of `vocabSize` tokens trained on the corpus with Hugging Face `tokenizers`: no `<unk>`, exact
   * round trips), or `{ file }`: a Hugging Face `tokenizer.json` (any model the crate loads; `<|endoftext|>` is
   * added as a special token when missing). CLI: `--tokenizer char|word|bpe|FILE.json`.
   */
  tokenizer: z
    .union([z.enum(['char', 'word', 'bpe']), z.strictObject({ file: path })], {
      error: 'must be "char", "word", "bpe" or { file: "tokenizer.json" }',
    })
    .default('char')
    .describe('char | word | bpe | a tokenizer.json file'),
  /**
   * Word and bpe models: vocabulary size including the specials (`<unk>` and `<eos>`; for bpe `<|endoftext|>`
   * and the 256 byte tokens, so >= 257; BPE training stops earlier when no pair occurs twice). Given with the
   * char tokenizer or a tokenizer.json file: a ConfigError.
   */
  vocabSize: rules([(v) => Number.isInteger(v) && v >= 3, 'must be an integer >= 3'], atMost(MAX_DIM))
    .default(10000)
    .describe('word / bpe vocabulary size incl. specials (bpe: >= 257)'),
  /** Word models only (given with another tokenizer: a ConfigError): lower-case the text before splitting. */
  lowercase: bool.default(true).describe('word tokenizer: lower-case the text'),
  /**
   * Word models only (given with another tokenizer: a ConfigError): how text is cut into tokens.
   * `'punctuation'`: words and single punctuation marks (see the word tokenizer). `'whitespace'`: for
   * pre-tokenized corpora such as Penn Treebank, every run of non-space
   * characters is one token (`n.v.`, `'s`), a literal `<unk>` is the unknown token, and each line end is
   * `<eos>`, as PyTorch's word_language_model reads them (on PTB: 10,000 types, 929,589 training tokens).
   */
  wordSplit: choice(WORD_SPLITS)
    .default('punctuation')
    .describe('word tokenizer: punctuation (split off punctuation) | whitespace (pre-tokenized text, e.g. PTB)'),
  /** Embedding width, in [1, 2^20]. */
  embeddingDim: dim.default(64).describe('embedding size'),
  /** LSTM hidden size (per layer), in [1, 2^20]. */
  hiddenSize: dim.default(256).describe('LSTM hidden size'),
  /**
   * Width of every LSTM layer's projected output, PyTorch `nn.LSTM(proj_size)`: `h_t = W_hr (o_t * tanh(c_t))`
   * with `weight_hr_l{k}` `[projSize, hiddenSize]`, so each layer's output, its recurrent input and the decoder's
   * input are `projSize` wide while the cell state stays `hiddenSize` wide. 0: no projection; else below
   * `hiddenSize`. What lets `tieWeights` work with an embedding narrower than the LSTM.
   */
  projSize: rules([(v) => Number.isInteger(v) && v >= 0, 'must be an integer >= 0 (0 = no projection)'])
    .default(0)
    .describe('project each layer output to this width (PyTorch proj_size; 0 = none)'),
  /** Stacked LSTM layers, in [1, 256]. */
  numLayers: rules([isPositiveInt, 'must be a positive integer'], atMost(MAX_LAYERS))
    .default(1)
    .describe('stacked LSTM layers'),
  /**
   * Inverted-dropout probability between layers and before the output layer (training only), in [0, 1): a new
   * mask at every position (standard dropout, Zaremba et al. 2014). The locked dropouts below draw one mask per
   * sequence instead; both may be on.
   */
  dropout: unitOpen.default(0).describe('dropout probability'),
  /** Locked (variational) dropout on the embedding output: one mask per sequence (AWD-LSTM `dropouti`), in [0, 1). */
  dropoutEmbedding: unitOpen.default(0).describe('locked dropout on the embedding output'),
  /** Locked dropout on the output of every LSTM layer but the last (AWD-LSTM `dropouth`), in [0, 1). */
  dropoutHidden: unitOpen.default(0).describe('locked dropout between LSTM layers'),
  /** Locked dropout on the last layer's output, before the decoder (AWD-LSTM `dropout`), in [0, 1). */
  dropoutOutput: unitOpen.default(0).describe('locked dropout before the decoder'),
  /**
   * Embedding dropout: the probability of dropping a word type (its embedding row zeroed, the others scaled by
   * 1/(1-p)) for one batch (AWD-LSTM `dropoute`), in [0, 1).
   */
  dropoutWords: unitOpen.default(0).describe('embedding dropout: drop whole token types per batch'),
  /** DropConnect on every `weight_hh`: one mask per batch (AWD-LSTM `wdrop`, Merity et al. 2017), in [0, 1). */
  weightDrop: unitOpen.default(0).describe('DropConnect on the recurrent weights, one mask per batch'),
  /**
   * Tie the decoder weight to the embedding (Press & Wolf 2017); needs `embeddingDim` equal to the last layer's
   * output width: `projSize` when set, else `hiddenSize` (else a ConfigError saying which to set; a projection is
   * never added silently). The model file keeps `decoder.weight`, equal to the embedding.
   */
  tieWeights: bool
    .default(false)
    .describe('decoder weight = embedding (needs --embedding-dim = --proj-size, or = --hidden-size without one)'),
  /** Activation regularization: `ar * mean(h^2)` of the decoder input added to the objective (AWD-LSTM alpha 2). */
  ar: nonNegNum.default(0).describe('activation regularization coefficient (AWD-LSTM: 2)'),
  /**
   * Temporal activation regularization: `tar * mean((h_t - h_{t-1})^2)` of the last layer's outputs before
   * dropout added to the objective (AWD-LSTM beta 1). The reported loss never includes AR or TAR.
   */
  tar: nonNegNum.default(0).describe('temporal activation regularization coefficient (AWD-LSTM: 1)'),
  /** Truncated-BPTT length in tokens. */
  seqLen: positiveInt.default(64).describe('truncated BPTT length'),
  /** Parallel streams per batch (batch shape `[batchSize, seqLen]`). */
  batchSize: positiveInt.default(32).describe('streams per batch'),
  /** Passes over the training text; unset: 1, or as many as `maxSteps` needs when that is set. */
  epochs: positiveInt.optional().describe('passes over the corpus (default 1, or as many as --max-steps needs)'),
  /** Upper bound on the total number of optimizer steps. */
  maxSteps: positiveInt.optional().describe('stop after this many steps'),
  /** Learning rate of the optimizer, > 0. */
  lr: positiveNum.default(1e-2).describe('learning rate'),
  /**
   * Update rule: `'adam'` (Adam with bias correction; `weightDecay` decoupled, as AdamW) or `'sgd'` (PyTorch SGD:
   * `weightDecay` as an L2 term in the gradient, optional `momentum`; what the Penn Treebank anchors use).
   */
  /**
   * Update rule: `'adam'` (Adam with bias correction; `weightDecay` decoupled, as AdamW), `'sgd'` (PyTorch SGD:
   * `weightDecay` as an L2 term in the gradient, optional `momentum`; what the Penn Treebank anchors use) or
   * `'ntasgd'` (Merity et al. 2017: SGD as `'sgd'` without momentum until a monitored validation loss is worse
   * than the best of those before the last `nonmono`, then the weights are the running average of the SGD
   * iterates; validation, the saved model and checkpoints use the average; needs validation).
   */
  optimizer: choice(['adam', 'sgd', 'ntasgd']).default('adam').describe('adam | sgd | ntasgd'),
  /** SGD momentum, in [0, 1) (0: plain SGD); needs `optimizer: 'sgd'`. */
  momentum: unitOpen.default(0).describe('SGD momentum'),
  /**
   * NT-ASGD's non-monotone interval, an integer >= 1 (AWD-LSTM: 5): averaging starts at the first monitored
   * validation (those of `evalEvery`, else the epoch ends) whose loss is above the best one observed more than
   * `nonmono` validations earlier. Needs `optimizer: 'ntasgd'` when not 5.
   */
  nonmono: rules([isPositiveInt, 'must be a positive integer'], atMost(1_000_000))
    .default(5)
    .describe('ntasgd: validations without improvement before averaging starts'),
  /** Adam first-moment decay, in [0, 1). */
  beta1: unitOpen.default(0.9),
  /** Adam second-moment decay, in [0, 1). */
  beta2: unitOpen.default(0.999),
  /** Adam denominator epsilon, > 0. */
  eps: positiveNum.default(1e-8),
  /** Decoupled (AdamW) weight decay, >= 0. */
  weightDecay: nonNegNum.default(0).describe('decoupled weight decay'),
  /** Clip the global gradient L2 norm to this value; 0 turns clipping off. */
  clipNorm: num((v) => Number.isFinite(v) && v >= 0, 'must be a finite number >= 0 (0 = off)')
    .default(5)
    .describe('clip global gradient norm, 0 = off'),
  /** Seeds the initial weights and the dropout masks, an integer in [0, 2^32-1]. */
  seed: seed.default(1234).describe('seed of weights and dropout'),
  /** Where the model runs (see `Device`). */
  device: device.default('auto').describe('auto | cpu | cuda'),
  /**
   * Matrix-product precision (see `Precision`): `'f32'` (as PyTorch) or `'bf16'` (bf16 inputs, f32
   * accumulation; CPU only: a DataError on a CUDA model). The model file is the same either way: f32 weights.
   */
  precision: precision
    .default('f32')
    .describe('matrix products: f32, or bf16 (bf16 inputs, f32 sums; Intel AMX; CPU only)'),
  /** Also evaluate on the validation text every this many steps (reported through `onEval`). */
  evalEvery: positiveInt
    .optional()
    .describe('also validate every n steps (these validations drive schedules and early stopping)'),
  /**
   * Called once before the first step with the corpus sizes, vocabulary and device. Every callback may be
   * async: training waits for its promise, and a callback that throws or rejects stops training and rejects
   * `train()` with that error.
   */
  onStart: fn<(info: StartInfo) => void | Promise<void>>().optional(),
  /** Called after every step with its loss (nats/token), gradient norm and tokens/s. */
  onStep: fn<(info: StepInfo) => void | Promise<void>>().optional(),
  /** Called after every `evalEvery` validation. */
  onEval: fn<(info: EvalInfo) => void | Promise<void>>().optional(),
  /** Called at every epoch end with the validation loss (nats/token), perplexity and accuracy. */
  onEpoch: fn<(info: EpochInfo) => void | Promise<void>>().optional(),
  /** Checked between steps: when aborted, training stops and `train()` resolves with the model so far. */
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, 'must be an AbortSignal').optional(),
  /** Learning-rate schedule over the base `lr` (see {@link LrScheduleSchema}). */
  lrSchedule: LrScheduleSchema.default({ type: 'constant' }),
  /** Stop when the monitored validation loss stops improving (see {@link EarlyStoppingSchema}). */
  earlyStopping: EarlyStoppingSchema.optional(),
  /**
   * A step whose loss or gradient is non-finite: `'stop'` throws a NumericError naming the step; `'skip'` leaves
   * the weights unchanged, records the step in `history.skippedSteps` and goes on.
   */
  onNonFinite: choice(['stop', 'skip'])
    .default('stop')
    .describe('stop | skip a step with a non-finite loss or gradient'),
  /**
   * Directory for checkpoints (created if missing): `step-<n>.lstm` every `checkpointEvery` steps and at the end,
   * `best.lstm` at each new best validation loss.
   */
  checkpointDir: path.optional().describe('write checkpoints here (step-<n>.lstm, best.lstm)'),
  /** Steps between periodic checkpoints (needs `checkpointDir`); unset: `DEFAULT_CHECKPOINT_EVERY`. */
  checkpointEvery: positiveInt.optional().describe('steps between checkpoints'),
  /** Periodic checkpoints to keep, the newest (needs `checkpointDir`); unset: `DEFAULT_KEEP_CHECKPOINTS`. */
  keepCheckpoints: positiveInt.optional().describe('periodic checkpoints to keep'),
  /**
   * Continue from a checkpoint file (or the newest `step-<n>.lstm` of a directory): weights, Adam state, data
   * position, dropout RNG, schedule and early-stopping state. Shape, tokenizer, seqLen, batchSize, dropout (and
   * every regularizer), optimizer and seed come from the checkpoint (giving a different value is a ConfigError);
   * lr, epochs, maxSteps and the
   * schedule may change. `epochs` and `maxSteps` count from the start of the original run.
   */
  resumeFrom: path.optional().describe('continue from a checkpoint file (or the newest one in a directory)'),
  /**
   * Fine-tune: start from this model file's weights and tokenizer on `corpus`, with a fresh optimizer and step
   * count (unlike `resumeFrom`, which continues one run exactly; giving both is a ConfigError). The architecture
   * (`embeddingDim`, `hiddenSize`, `numLayers`, `tokenizer`, and for word models `vocabSize` and `lowercase`)
   * is the model's: a different value is a ConfigError; `dropout` defaults to the model's. Symbols of the corpus
   * outside the model's vocabulary map to `<unk>` (one `LSTMGEN_UNKNOWN_SYMBOLS` warning) unless `extendVocab`.
   */
  initFrom: path.optional().describe('fine-tune this model file on the corpus (fresh optimizer and step count)'),
  /**
   * With `initFrom`: add the corpus's symbols that the model's vocabulary lacks (ids after the model's), with new
   * embedding and output rows (weight and bias) initialized as a fresh model's are, from `seed`; the model's
   * rows stay as they were. For word models the corpus's `vocabSize` most frequent words are candidates.
   */
  extendVocab: bool.default(false).describe('with --init-from: add the corpus symbols the model lacks'),
  /**
   * Sample text from the model every this many steps while training (0 = never): reported through `onSample`,
   * the run log (`{"type":"sample",...}`) and the CLI. Sampling draws from its own random stream and its time is
   * not counted in tokens/s, so the run's losses are the same with or without it.
   */
  sampleEvery: nonNegInt.default(0).describe('sample text every n steps while training (0 = off)'),
  /**
   * Text the samples while training continue; empty: the boundary token when the vocabulary has one (the start of
   * a record or document), else a line break (as `generate()`). Symbols outside the vocabulary are a ConfigError.
   */
  samplePrompt: z.string({ error: 'must be a string' }).default('').describe('prompt of the samples while training'),
  /** Tokens of each sample while training (characters or words). */
  sampleTokens: rules([isPositiveInt, 'must be a positive integer'], atMost(MAX_TOKENS))
    .default(200)
    .describe('tokens per sample while training'),
  /** Softmax temperature of the samples while training: 0 = greedy, else >= {@link MIN_TEMPERATURE}. */
  sampleTemperature: temperature.default(0.8).describe('temperature of the samples while training'),
  /**
   * Sampling seed of every sample while training (the same seed at each step, so samples differ only by what the
   * model learned); unset: `seed`.
   */
  sampleSeed: seed.optional().describe('seed of the samples while training (default: --seed)'),
  /** Called after every sample while training (see `sampleEvery`). */
  onSample: fn<(info: SampleInfo) => void | Promise<void>>().optional(),
  /** Write metrics as JSON lines to this file (see `RunRecord`); appended to when resuming. */
  logFile: path.optional().describe('write metrics as JSON lines (plot with lstmgen plot)'),
  /** Called after every checkpoint written. */
  onCheckpoint: fn<(info: CheckpointInfo) => void | Promise<void>>().optional(),
  /** Called when NT-ASGD starts averaging the weights (`optimizer: 'ntasgd'`), as the log's `averaging` record. */
  onAveraging: fn<(info: AveragingInfo) => void | Promise<void>>().optional(),
  /**
   * Receives the run's warnings instead of `process.emitWarning`: the message and its code
   * (see {@link TrainWarningCode}), e.g. validation symbols outside the vocabulary (`LSTMGEN_UNKNOWN_SYMBOLS`)
   * or a diverged run (`LSTMGEN_DIVERGED`). A throw from it propagates like a callback's.
   */
  onWarning: fn<(message: string, code: TrainWarningCode) => void>().optional(),
};

/**
 * The `params` of a refinement issue whose message already gives the values involved and what to change: its
 * ConfigError does not end with ", got <value>".
 */
const VALUES_SHOWN = { valuesShown: true };

/** Schema of the options of `train()`. */
export const TrainConfigSchema = z.strictObject(trainFields).superRefine((cfg, ctx) => {
  if (cfg.projSize >= cfg.hiddenSize) {
    ctx.addIssue({
      code: 'custom',
      path: ['projSize'],
      message: `must be below hiddenSize (${cfg.hiddenSize}), as in PyTorch, or 0 for no projection`,
      input: cfg.projSize,
    });
  }
  const out = cfg.projSize > 0 ? cfg.projSize : cfg.hiddenSize;
  if (cfg.tieWeights && cfg.embeddingDim !== out) {
    const fix =
      cfg.projSize > 0
        ? `set projSize to ${cfg.embeddingDim}`
        : cfg.embeddingDim < cfg.hiddenSize
          ? `set projSize to ${cfg.embeddingDim} (a projection of each layer's output) or hiddenSize to ${cfg.embeddingDim}`
          : `set hiddenSize to ${cfg.embeddingDim}`;
    ctx.addIssue({
      code: 'custom',
      path: ['tieWeights'],
      message:
        `needs embeddingDim == the last layer's output width (projSize, or hiddenSize without a projection): ` +
        `embeddingDim ${cfg.embeddingDim}, output width ${out}; the decoder reads the last layer with the ` +
        `embedding matrix; ${fix}`,
      input: cfg.tieWeights,
      params: VALUES_SHOWN,
    });
  }
  if (cfg.nonmono !== 5 && cfg.optimizer !== 'ntasgd') {
    ctx.addIssue({ code: 'custom', path: ['nonmono'], message: 'needs optimizer "ntasgd"', input: cfg.nonmono });
  }
  if (cfg.optimizer === 'ntasgd' && cfg.valFraction === 0 && cfg.valCorpus === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['optimizer'],
      message: '"ntasgd" needs validation (its trigger watches the validation loss); give valFraction > 0 or valCorpus',
      input: cfg.optimizer,
    });
  }
  if (cfg.tokenizer === 'bpe' && cfg.vocabSize < MIN_BPE_VOCAB) {
    ctx.addIssue({
      code: 'custom',
      path: ['vocabSize'],
      message: `must be >= ${MIN_BPE_VOCAB} for the bpe tokenizer (the boundary token and the 256 byte tokens)`,
      input: cfg.vocabSize,
    });
  }
  if (cfg.momentum > 0 && cfg.optimizer !== 'sgd') {
    ctx.addIssue({ code: 'custom', path: ['momentum'], message: 'needs optimizer "sgd"', input: cfg.momentum });
  }
  if (cfg.field !== undefined && cfg.format !== 'jsonl' && cfg.format !== 'csv') {
    ctx.addIssue({ code: 'custom', path: ['field'], message: 'needs format "jsonl" or "csv"', input: cfg.field });
  }
  if (cfg.valFraction === 0 && cfg.valCorpus === undefined) {
    const needs: Array<[string, unknown]> = [
      ['earlyStopping', cfg.earlyStopping],
      ['evalEvery', cfg.evalEvery],
      ['lrSchedule', cfg.lrSchedule.type === 'plateau' ? cfg.lrSchedule : undefined],
    ];
    for (const [name, value] of needs) {
      if (value === undefined) continue;
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: 'needs validation, and valFraction 0 turns it off; give valFraction > 0 or valCorpus',
        input: value,
      });
    }
  }
  if (cfg.initFrom !== undefined && cfg.resumeFrom !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['initFrom'],
      message:
        'cannot be combined with resumeFrom: resumeFrom continues one run exactly, initFrom starts a new run ' +
        'from a model; give one of them',
      input: cfg.initFrom,
    });
  }
  if (cfg.extendVocab && cfg.initFrom === undefined) {
    ctx.addIssue({ code: 'custom', path: ['extendVocab'], message: 'needs initFrom', input: cfg.extendVocab });
  }
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

/** The defaults of the options of `train()`, read from {@link TrainConfigSchema}. */
export const TRAIN_DEFAULTS = defaultsOf(trainFields);

/**
 * Options of `train()` as the user writes them. Only `corpus` is required; the defaults are
 * {@link TRAIN_DEFAULTS}. Every invalid value is a `ConfigError` naming the field
 * (e.g. `"lr: must be a finite number > 0, got NaN"`).
 */
export type TrainOptions = z.input<typeof TrainConfigSchema>;
/** Options of `train()` as the user writes them (the same type as {@link TrainOptions}). */
export type TrainConfigInput = TrainOptions;
/** Options of `train()` after validation and defaults. */
export type TrainConfig = z.output<typeof TrainConfigSchema>;

/** Largest `penaltyWindow` the engine accepts: 65536 tokens. */
export const MAX_PENALTY_WINDOW = 1 << 16;

/**
 * The generation controls, shared by `generate()`, `stream()`, sessions and the server. They change the
 * next-token logits before banned tokens, temperature, top-k and top-p, on the CPU and on CUDA alike.
 */
export const GenerationControlsSchema = z.strictObject({
  /**
   * CTRL's repetition penalty (Keskar et al. 2019, "CTRL: A Conditional Transformer Language Model for
   * Controllable Generation", section 4.1): the logit of every token already in the last `penaltyWindow` tokens
   * of context is divided by it when positive and multiplied by it when negative. 1 = off; 1.1 to 1.3 is typical.
   */
  repetitionPenalty: positiveNum.default(1).describe('CTRL repetition penalty, e.g. 1.2 (1 = off)'),
  /**
   * Subtracted from a token's logit once per occurrence in the last `penaltyWindow` tokens (as the OpenAI
   * completions API's `frequency_penalty`). 0 = off; negative values favour repeats.
   */
  frequencyPenalty: num(Number.isFinite, 'must be a finite number')
    .default(0)
    .describe('logit penalty per earlier occurrence (0 = off)'),
  /** Never sample a token that would repeat an n-gram of this many tokens from the window. 0 = off. */
  noRepeatNgram: nonNegInt.default(0).describe('ban repeating n-grams of this length (0 = off)'),
  /** Tokens of context (the prompt's end, then what was generated) the penalties and `noRepeatNgram` read. */
  penaltyWindow: rules([isPositiveInt, 'must be a positive integer'], atMost(MAX_PENALTY_WINDOW))
    .default(256)
    .describe('tokens of context the penalties look at'),
  /**
   * Tokens never sampled, each a string that is one token of the vocabulary (a character for char models, a
   * word for word models); a string that is not one token is a ConfigError.
   */
  bannedTokens: z
    .array(z.string({ error: 'must be a string' }).min(1, 'must not be empty'), {
      error: 'must be an array of strings',
    })
    .optional()
    .describe('never sample this token (repeatable)'),
  /**
   * Tokens to generate before the text may end: until then the record-boundary token and every stop string
   * that is a single token are never sampled.
   */
  minTokens: rules([(v) => Number.isInteger(v) && v >= 0, 'must be an integer >= 0'], atMost(MAX_TOKENS))
    .default(0)
    .describe('tokens before the boundary token or a one-token stop may end the text'),
});

/** The generation controls as the user writes them. */
export type GenerationControlsInput = z.input<typeof GenerationControlsSchema>;
/** The generation controls after validation and defaults. */
export type GenerationControls = z.output<typeof GenerationControlsSchema>;

/** Schema of the options of `model.generate()`. */
export const GenerateOptionsSchema = z.strictObject({
  ...GenerationControlsSchema.shape,
  /** Text to continue. Empty: generation starts from a line break (`'\n'` or `<eos>`). */
  prompt: z.string({ error: 'must be a string' }).default('').describe('text to continue (default: start of a line)'),
  /** Tokens to generate per sample (characters or words). */
  maxTokens: rules([isPositiveInt, 'must be a positive integer'], atMost(MAX_TOKENS))
    .default(200)
    .describe('tokens to generate'),
  /** Softmax temperature: 0 = greedy (argmax), else >= {@link MIN_TEMPERATURE} (a ConfigError below it). */
  temperature: temperature.default(1).describe('0 = greedy'),
  /** Keep only the k most likely tokens; unset = off. */
  topK: num((v) => Number.isInteger(v) && v >= 1, 'must be an integer >= 1')
    .optional()
    .describe('keep the k most likely tokens'),
  /** Nucleus sampling mass, in (0, 1]; 1 = off. */
  topP: num((v) => v > 0 && v <= 1, 'must be a number in (0, 1]')
    .default(1)
    .describe('nucleus mass in (0, 1]'),
  /** Samples to draw, in one native batch. */
  numSamples: rules([isPositiveInt, 'must be a positive integer'], atMost(MAX_SAMPLES))
    .default(1)
    .describe('samples to draw'),
  /** Sampling seed; same seed, same text. Unset: a fresh random seed per call. */
  seed: seed.optional().describe('sampling seed (default: random)'),
  /** A sample ends at the first of these strings; the returned text is cut before it. */
  stop: z
    .array(z.string({ error: 'must be a string' }).min(1, 'must not be empty'), {
      error: 'must be an array of strings',
    })
    .optional()
    .describe('stop at this string (repeatable)'),
  /** Throw a DataError for prompt symbols outside the vocabulary instead of mapping them to `<unk>`. */
  strict: bool.default(false).describe('fail on prompt symbols outside the vocabulary'),
  /**
   * Let the model sample `<unk>` (decoded as U+FFFD by char models, `<unk>` by word models). Off: `<unk>` is
   * never sampled; the other tokens keep their relative probabilities.
   */
  allowUnk: bool.default(false).describe('let the model sample <unk> (default: never)'),
  /**
   * Generate this many whole records instead of `numSamples` continuations (a model trained on records: see
   * `LstmModel.generate`). Each starts from the record boundary (with `prompt` as its first text) and ends at
   * the next boundary or after `maxTokens` tokens.
   */
  records: rules([isPositiveInt, 'must be a positive integer'], atMost(MAX_SAMPLES))
    .optional()
    .describe('generate this many whole records'),
  /**
   * With `records`: keep sampling until that many whole records that are not training records are found, at most
   * {@link ONLY_NOVEL_ATTEMPTS} sampled records per one asked for; fewer (with a warning) when that runs out.
   */
  onlyNovel: bool.default(false).describe('with --records: only records not in the training data'),
});

/**
 * Most records sampled per record asked for with `onlyNovel` (20): `records: n` samples at most 20 n records
 * before it gives up with the novel ones found so far.
 */
export const ONLY_NOVEL_ATTEMPTS = 20;

/** Options of `model.generate()` as the user writes them. */
export type GenerateOptionsInput = z.input<typeof GenerateOptionsSchema>;
/** Options of `model.generate()` after validation and defaults. */
export type GenerateOptions = z.output<typeof GenerateOptionsSchema>;

/** Schema of the options of `model.stream()`: those of `generate()` for one sample, plus `chunkTokens`. */
export const StreamOptionsSchema = GenerateOptionsSchema.omit({
  numSamples: true,
  records: true,
  onlyNovel: true,
}).extend({
  /** Tokens sampled per native call; each call yields at most one text piece. 1 = a piece per token. */
  chunkTokens: positiveInt.default(1),
});

/** Options of `model.stream()` as the user writes them. */
export type StreamOptionsInput = z.input<typeof StreamOptionsSchema>;
/** Options of `model.stream()` after validation and defaults. */
export type StreamOptions = z.output<typeof StreamOptionsSchema>;

/** Schema of the options of `model.session()`. */
export const SessionOptionsSchema = z.strictObject({
  /** Seed of the session's random stream (every `sample()` goes on drawing from it). Unset: a fresh random seed. */
  seed: seed.optional(),
  /** Throw a DataError for fed symbols outside the vocabulary instead of mapping them to `<unk>`. */
  strict: bool.default(false),
});

/** Options of `model.session()` as the user writes them. */
export type SessionOptionsInput = z.input<typeof SessionOptionsSchema>;
/** Options of `model.session()` after validation and defaults. */
export type SessionOptions = z.output<typeof SessionOptionsSchema>;

/** Schema of the options of `session.sample()`: those of `generate()` but the prompt, samples, seed and strict. */
export const SessionSampleOptionsSchema = GenerateOptionsSchema.omit({
  prompt: true,
  numSamples: true,
  seed: true,
  strict: true,
});

/** Options of `session.sample()` as the user writes them. */
export type SessionSampleOptionsInput = z.input<typeof SessionSampleOptionsSchema>;
/** Options of `session.sample()` after validation and defaults. */
export type SessionSampleOptions = z.output<typeof SessionSampleOptionsSchema>;

/** Schema of the options of `session.next()`. */
export const SessionNextOptionsSchema = z.strictObject({
  /** How many of the most likely next tokens to return (at most the vocabulary size). */
  topN: rules([isPositiveInt, 'must be a positive integer'], atMost(MAX_DIM)).default(10),
});

/** Options of `session.next()` as the user writes them. */
export type SessionNextOptionsInput = z.input<typeof SessionNextOptionsSchema>;

/** Schema of the options of `serve()` and `lstmgen serve`. */
export const ServeOptionsSchema = z.strictObject({
  /** The model file to serve (loaded once; a file replaced while serving is not reloaded). */
  model: path.describe('model file'),
  /** Address to listen on. `0.0.0.0` or `::` listens on every interface. */
  host: z
    .string({ error: 'must be a host name or address' })
    .min(1)
    .default('127.0.0.1')
    .describe('address to listen on'),
  /** TCP port; 0 picks a free one (see the server's `url`). */
  port: num((v) => Number.isInteger(v) && v >= 0 && v <= 65535, 'must be an integer in [0, 65535]')
    .default(8080)
    .describe('TCP port (0 = any free port)'),
  /** Sequences generated at once (a request with `n` takes n); they are stepped together in one batch. */
  maxConcurrent: rules([isPositiveInt, 'must be a positive integer'], atMost(MAX_SAMPLES))
    .default(256)
    .describe('sequences generated at once, batched together'),
  /** Requests waiting for a free slot; beyond it a request is refused with 429. */
  maxQueued: nonNegInt.default(1024).describe('requests waiting for a slot before 429'),
  /** Largest `max_tokens` a request may ask for (more: 400 naming `max_tokens`). */
  maxTokens: rules([isPositiveInt, 'must be a positive integer'], atMost(MAX_TOKENS))
    .default(4096)
    .describe('largest max_tokens of a request'),
  /** Largest prompt, in tokens, a request may send (more: 400 naming `prompt`). */
  maxPromptTokens: rules([isPositiveInt, 'must be a positive integer'], atMost(MAX_TOKENS))
    .default(65536)
    .describe('largest prompt of a request, in tokens'),
  /** Largest request body, in bytes (more: 413). */
  bodyLimit: positiveInt.default(1 << 20).describe('largest request body, in bytes'),
  /** Milliseconds a request may generate; then it ends with `finish_reason` "length". */
  requestTimeout: positiveInt.default(120_000).describe('milliseconds a request may generate'),
  /** Where the weights go (see `Device`). */
  device: device.default('auto').describe('auto | cpu | cuda'),
  /** Matrix-product precision (see `Precision`). */
  precision: precision.default('f32').describe('matrix products: f32 or bf16 (CPU only)'),
});

/** Options of `serve()` as the user writes them. */
export type ServeOptionsInput = z.input<typeof ServeOptionsSchema>;
/** Options of `serve()` after validation and defaults. */
export type ServeOptions = z.output<typeof ServeOptionsSchema>;

/** Schema of the options of `model.evaluate()`. */
export const EvaluateOptionsSchema = z.strictObject({
  /** Streams per batch; unset: the training batchSize, lowered to fit a short text. */
  batchSize: positiveInt.optional().describe('streams per batch (default: the training one)'),
  /** Positions per batch; unset: the training seqLen. */
  seqLen: positiveInt.optional().describe('positions per batch (default: the training one)'),
  /** Throw a DataError for symbols outside the vocabulary instead of counting them as `<unk>`. */
  strict: bool.optional(),
  /** Receives the single warning about symbols counted as `<unk>`. */
  onWarning: fn<(message: string) => void>().optional(),
  /** How a corpus source is read (as the train options of these names); unset: the model's training settings. */
  format: format.optional(),
  field: field.optional(),
  extensions: extensions.optional(),
  encoding: encoding.optional(),
  /** Directory of cached token ids, as `train()`'s `cacheDir`. */
  cacheDir: path.optional(),
});

/** Options of `model.evaluate()` as the user writes them. */
export type EvaluateOptions = z.input<typeof EvaluateOptionsSchema>;
/** Options of `model.evaluate()` as the user writes them (the same type as {@link EvaluateOptions}). */
export type EvaluateOptionsInput = EvaluateOptions;
/** Options of `model.evaluate()` after validation. */
export type EvaluateOptionsParsed = z.output<typeof EvaluateOptionsSchema>;

/** Schema of the options of `loadModel()` / `LstmModel.load()`. */
export const LoadOptionsSchema = z.strictObject({
  /** Where the weights go (see `Device`). */
  device: device.default('auto').describe('auto | cpu | cuda'),
  /**
   * Matrix-product precision for generation, evaluation and further training (see `Precision`). `bf16` is
   * CPU-only: with `device: 'auto'` on a machine where CUDA is used, loading throws a DataError.
   */
  precision: precision
    .default('f32')
    .describe('matrix products: f32, or bf16 (bf16 inputs, f32 sums; Intel AMX; CPU only)'),
});

/** Options of `loadModel()` / `LstmModel.load()`. */
export type LoadOptions = z.input<typeof LoadOptionsSchema>;
/** Options of `loadModel()` after validation. */
export type LoadOptionsParsed = z.output<typeof LoadOptionsSchema>;

/** The formats `export()` writes: a TensorFlow.js Layers model directory, or one ONNX file. */
export const EXPORT_FORMATS = ['tfjs', 'onnx'] as const;
/** One of {@link EXPORT_FORMATS}. */
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Schema of the options of `exportModel()` / `lstmgen export`. */
export const ExportOptionsSchema = z.strictObject({
  /**
   * `tfjs`: a directory holding `model.json` (TF.js Layers format), its binary weight shards and `tokenizer.json`;
   * `onnx`: one `.onnx` file (the tokenizer in its metadata).
   */
  format: choice(EXPORT_FORMATS).describe(
    'tfjs (a directory: model.json, weight shards, tokenizer.json) | onnx (a file)',
  ),
  /** Where to write: the directory (`tfjs`, created with its parents) or the file (`onnx`). */
  out: path.describe('output directory (tfjs) or file (onnx)'),
  /** Write into a directory that is not empty, or replace an existing file; off: such an `out` is refused. */
  force: bool.default(false).describe('write into a non-empty directory or replace an existing file'),
  /**
   * ONNX only: the graph takes the initial states `h0` and `c0` (`[numLayers, batch, hiddenSize]`) as inputs.
   * Off: `input_ids` is the only input and every run starts from zero states. The final states are outputs either way.
   */
  stateInputs: bool.default(true).describe('onnx: take the initial states h0 and c0 as inputs'),
});

/** Options of `exportModel()` as the user writes them. */
export type ExportOptions = z.input<typeof ExportOptionsSchema>;
/** Options of `exportModel()` after validation and defaults. */
export type ExportOptionsParsed = z.output<typeof ExportOptionsSchema>;

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
  if (issue.code === 'custom' && issue.params?.valuesShown === true) throw new ConfigError(field, issue.message);
  throw new ConfigError(field, `${issue.message}, got ${show(valueAt(input, issue.path))}`);
}

/**
 * Check a corpus argument (as the `corpus` option of `train()`).
 * @throws ConfigError naming `field` unless `value` is a path, a builtin name, `{ path }`, `{ text }` or a list of these.
 */
export function parseCorpusSource(value: unknown, field = 'corpus'): CorpusSource {
  const r = corpus.safeParse(value);
  if (!r.success) throw new ConfigError(field, `${r.error.issues[0].message}, got ${show(value)}`);
  return r.data;
}

/**
 * Validate the options of `loadModel()`.
 * @throws ConfigError naming the field, e.g. `"precision: must be \"f32\" or \"bf16\", got \"fp8\""`.
 */
export function parseLoadOptions(input: unknown = {}): LoadOptionsParsed {
  return parseWith(LoadOptionsSchema, input, 'the load options');
}

/**
 * Validate a precision value (`model.setPrecision()`).
 * @throws ConfigError with field `precision` for anything but `"f32"` or `"bf16"`.
 */
export function parsePrecision(input: unknown): Precision {
  return parseWith(z.object({ precision: choice(PRECISIONS) }), { precision: input }, 'the precision').precision;
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
 * Validate and default options of a `schema` of this module (`what` names them in messages, e.g. "the serve
 * options").
 * @throws ConfigError naming the field.
 */
export function parseOptions<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  return parseWith(schema, input, what);
}

/**
 * Validate the options of `model.evaluate()`.
 * @throws ConfigError naming the field, e.g. `"seqLen: must be a positive integer, got -4"`.
 */
export function parseEvaluateOptions(input: EvaluateOptionsInput = {}): EvaluateOptionsParsed {
  return parseWith(EvaluateOptionsSchema, input, 'the evaluate options');
}

/**
 * Validate and default the options of `exportModel()`.
 * @throws ConfigError naming the field, e.g. `"format: must be \"tfjs\" or \"onnx\", got \"keras\""`.
 */
export function parseExportOptions(input: unknown): ExportOptionsParsed {
  return parseWith(ExportOptionsSchema, input, 'the export options');
}

/**
 * The options of `train()` as a documented interface (what editors show on hover). The zod schema in
 * config.ts validates them; the compile-time checks at the bottom keep the two identical.
 */

import type { TrainConfigInput } from './config';
import type { CorpusSource } from './data';
import type { CheckpointInfo, EpochInfo, EvalInfo, StartInfo, StepInfo } from './events';

/** Learning-rate schedule over the base `lr` (`step` is the 0-based index of the step about to run). */
export type LrScheduleOptions =
  /** `lr` throughout. */
  | { type: 'constant' }
  /** `lr * gamma ^ floor(step / stepSize)`; gamma in (0, 1], default 0.5. */
  | { type: 'step'; stepSize: number; gamma?: number }
  /**
   * Linear warmup `lr * (step + 1) / warmupSteps` (default 0 steps), then a half cosine from `lr` down to
   * `minLr` (default 0) at `totalSteps` (default: the run's planned total steps).
   */
  | { type: 'cosine'; warmupSteps?: number; minLr?: number; totalSteps?: number }
  /**
   * Reduce on plateau: multiply the rate by `factor` (in (0, 1), default 0.5) when `patience` (default 2)
   * monitored validations in a row did not improve the best validation loss (nats) by more than `minDelta`
   * (default 0); never below `minLr` (default 0).
   */
  | { type: 'plateau'; factor?: number; patience?: number; minDelta?: number; minLr?: number };

/**
 * Stop when `patience` monitored validations in a row did not improve the best validation loss (nats/token)
 * by more than `minDelta` (default 0); with `restoreBest` (default true) the returned model has the best weights.
 */
export interface EarlyStoppingOptions {
  patience: number;
  minDelta?: number;
  restoreBest?: boolean;
}

/**
 * Options of `train()`. Only `corpus` is required. Every invalid value is a `ConfigError` naming the field
 * (e.g. `"lr: must be a finite number > 0, got NaN"`).
 */
export interface TrainOptions {
  /** Training text: a file path, the builtin name `'moby-dick'`, `{ path }` or `{ text }`. */
  corpus: CorpusSource;
  /** Separate validation text; when absent the last `valFraction` of `corpus` is held out. */
  valCorpus?: CorpusSource;
  /** Held-out fraction of `corpus` for validation, in (0, 1); default 0.1. */
  valFraction?: number;
  /** `'char'` (Unicode code points; default) or `'word'` (lower-cased words and punctuation, `<unk>`, `<eos>`). */
  tokenizer?: 'char' | 'word';
  /** Word models only: vocabulary size including `<unk>` and `<eos>`, >= 3; default 10000. */
  vocabSize?: number;
  /** Word models only: lower-case the text before splitting; default true. */
  lowercase?: boolean;
  /** Embedding width `embeddingDim`, in [1, 2^20]; default 64. */
  embeddingDim?: number;
  /** LSTM hidden size `hiddenSize` (per layer), in [1, 2^20]; default 256. */
  hiddenSize?: number;
  /** Stacked LSTM layers, in [1, 256]; default 1. */
  numLayers?: number;
  /** Inverted-dropout probability between layers and before the output layer, in [0, 1); default 0. */
  dropout?: number;
  /** Truncated-BPTT length `seqLen` in tokens; default 64. */
  seqLen?: number;
  /** Parallel streams per batch `batchSize` (batch shape `[batchSize, seqLen]`); default 32. */
  batchSize?: number;
  /** Passes over the training text; default 1, or as many as `maxSteps` needs when that is set. */
  epochs?: number;
  /** Upper bound on the total number of optimizer steps. */
  maxSteps?: number;
  /** Adam learning rate, > 0; default 0.01. */
  lr?: number;
  /** Adam first-moment decay, in [0, 1); default 0.9. */
  beta1?: number;
  /** Adam second-moment decay, in [0, 1); default 0.999. */
  beta2?: number;
  /** Adam denominator epsilon, > 0; default 1e-8. */
  eps?: number;
  /** Decoupled (AdamW) weight decay, >= 0; default 0. */
  weightDecay?: number;
  /** Clip the global gradient L2 norm to this value; 0 turns clipping off; default 5. */
  clipNorm?: number;
  /** Seeds the initial weights and the dropout masks, an integer in [0, 2^32-1]; default 1234. */
  seed?: number;
  /** `'auto'` (default: CUDA when the CUDA build loads and sees a GPU, else CPU), `'cpu'` or `'cuda'` (DeviceError when unusable). */
  device?: 'auto' | 'cpu' | 'cuda';
  /**
   * Matrix-product precision: `'f32'` (default, as PyTorch) or `'bf16'` (inputs rounded to bfloat16, f32
   * accumulation, on Intel AMX when present; CPU only: a DataError on a CUDA model). Saved weights are f32.
   */
  precision?: 'f32' | 'bf16';
  /** Also evaluate on the validation text every this many steps (reported through `onEval`). */
  evalEvery?: number;
  /**
   * Called once before the first step with the corpus sizes, vocabulary and device. Every callback may be
   * async: training waits for its promise, and a callback that throws or rejects stops training and rejects
   * `train()` with that error.
   */
  onStart?: (info: StartInfo) => void | Promise<void>;
  /** Called after every step with its loss (nats/token), gradient norm and tokens/s. */
  onStep?: (info: StepInfo) => void | Promise<void>;
  /** Called after every `evalEvery` validation. */
  onEval?: (info: EvalInfo) => void | Promise<void>;
  /** Called at every epoch end with the validation loss (nats/token), perplexity and accuracy. */
  onEpoch?: (info: EpochInfo) => void | Promise<void>;
  /** Checked between steps: when aborted, training stops and `train()` resolves with the model so far. */
  signal?: AbortSignal;
  /** Learning-rate schedule over the base `lr`; default constant. */
  lrSchedule?: LrScheduleOptions;
  /** Stop when the monitored validation loss stops improving. */
  earlyStopping?: EarlyStoppingOptions;
  /**
   * A step whose loss or gradient is non-finite: `'stop'` (default) throws a NumericError naming the step;
   * `'skip'` leaves the weights unchanged, records the step in `history.skippedSteps` and goes on.
   */
  onNonFinite?: 'skip' | 'stop';
  /** Directory for checkpoints (created if missing): `step-<n>.lstm` every `checkpointEvery` steps and at the end, `best.lstm` at each new best validation loss. */
  checkpointDir?: string;
  /** Steps between periodic checkpoints; default 1000 (needs `checkpointDir`). */
  checkpointEvery?: number;
  /** Periodic checkpoints to keep (the newest); default 3 (needs `checkpointDir`). */
  keepCheckpoints?: number;
  /**
   * Continue from a checkpoint file (or the newest `step-<n>.lstm` of a directory): weights, Adam state, data
   * position, dropout RNG, schedule and early-stopping state. Shape, tokenizer, seqLen, batchSize, dropout and
   * seed come from the checkpoint (giving a different value is a ConfigError); lr, epochs, maxSteps and the
   * schedule may change. `epochs` and `maxSteps` count from the start of the original run.
   */
  resumeFrom?: string;
  /** Write metrics as JSON lines to this file (see `RunRecord`); appended to when resuming. */
  logFile?: string;
  /** Called after every checkpoint written. */
  onCheckpoint?: (info: CheckpointInfo) => void | Promise<void>;
}

// Compile-time: TrainOptions and the schema's input type accept exactly the same objects.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameOptions: Same<Required<TrainOptions>, Required<TrainConfigInput>> = true;
const sameKeys: Same<keyof TrainOptions, keyof TrainConfigInput> = true;
void [sameOptions, sameKeys];

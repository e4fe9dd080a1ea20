/** Payloads of the training callbacks and records of the training history. Losses are in nats per token. */

/** Passed to `onStart` once the data is loaded and the model is created, before the first step. */
export interface StartInfo {
  /** Steps the run will take unless aborted: min(maxSteps, epochs * stepsPerEpoch). */
  totalSteps: number;
  /** Full `[batchSize, seqLen]` batches per epoch. */
  stepsPerEpoch: number;
  /** Tokens in the training stream (those its batches read) and in the validation stream (0 without validation). */
  trainTokens: number;
  valTokens: number;
  /** Vocabulary size, `<unk>` (and `<eos>` for word models) included. */
  vocabSize: number;
  /** Device the model runs on, as the engine names it. */
  device: string;
  /** Steps already taken when the run starts: 0, or the checkpoint's step when resuming. */
  startStep: number;
}

/** Passed to `onStep` after every optimizer step. */
export interface StepInfo {
  /** 1-based global step count. */
  step: number;
  /** 1-based epoch. */
  epoch: number;
  /** Mean cross-entropy of the batch in nats/token (before this step's update). */
  loss: number;
  /** Training throughput of this step: batchSize * seqLen / wall-clock seconds of the native step. */
  tokensPerSec: number;
  /** Global L2 norm of the gradients before clipping. */
  gradNorm: number;
  /** Learning rate used by this step (after the schedule). */
  lr: number;
}

/** Validation metrics at a step (every `evalEvery` steps). */
export interface EvalInfo {
  step: number;
  epoch: number;
  /** Mean cross-entropy on the validation stream, nats/token. */
  valLoss: number;
  /** exp(valLoss). */
  valPerplexity: number;
  /** Fraction of validation positions whose argmax prediction is the target, in [0, 1]. */
  valAccuracy: number;
  /** Validation bits per character: total nats / code points of the predicted text / ln 2 (see EvalResult). */
  valBitsPerChar: number;
}

/** Passed to `onEpoch` at the end of every epoch (also the last, partial one when `maxSteps` ends it). */
export interface EpochInfo {
  /** 1-based epoch. */
  epoch: number;
  /** Mean of the epoch's step losses, nats/token. */
  trainLoss: number;
  /** Mean cross-entropy on the validation stream, nats/token; null without validation (valFraction 0). */
  valLoss: number | null;
  /** exp(valLoss); null without validation. */
  valPerplexity: number | null;
  /** Validation next-token accuracy in [0, 1]; null without validation. */
  valAccuracy: number | null;
  /** Validation bits per character (total nats / code points / ln 2); null without validation. */
  valBitsPerChar: number | null;
}

/** Passed to `onSample` for every sample while training (every `sampleEvery` steps). */
export interface SampleInfo {
  /** 1-based global step after which the model was sampled. */
  step: number;
  /** 1-based epoch of that step. */
  epoch: number;
  /** The prompt continued (`samplePrompt`). */
  prompt: string;
  /** The generated text, prompt excluded (`sampleTokens` tokens). */
  text: string;
  /** Softmax temperature used. */
  temperature: number;
  /** Sampling seed used (`sampleSeed`, else the run's `seed`). */
  seed: number;
}

/** What `train()` returns next to the model. */
export interface TrainHistory {
  steps: StepInfo[];
  epochs: EpochInfo[];
  /** Validation results of `evalEvery`; empty when it is unset. */
  evals: EvalInfo[];
  /** Mean training throughput over the run: tokens trained / seconds spent in native training steps. */
  tokensPerSec: number;
  /** True when the AbortSignal stopped training before its planned end. */
  aborted: boolean;
  /** Steps skipped under `onNonFinite: 'skip'` (their loss or gradient was non-finite; weights unchanged). */
  skippedSteps: number[];
  /** True when early stopping ended the run. */
  stoppedEarly: boolean;
  /** Best monitored validation loss (nats/token) and its step; null when no validation was monitored. */
  best: { valLoss: number; step: number } | null;
  /** Checkpoints written by this run, oldest first (rotated-away files included). */
  checkpoints: CheckpointInfo[];
  /** Samples taken while training (`sampleEvery`), oldest first; empty when it is off. */
  samples: SampleInfo[];
  /**
   * `optimizer: 'ntasgd'`: the step after which the weights are the average of the SGD iterates (the trigger
   * fired at that step's monitored validation, in this run or before a resume); null when it has not fired or
   * another optimizer ran.
   */
  averagingStart: number | null;
}

/**
 * Passed to `onAveraging` when NT-ASGD's trigger fires (`optimizer: 'ntasgd'`; Merity et al. 2017): from the step
 * after `step`, the weights are the average of the SGD iterates.
 */
export interface AveragingInfo {
  /** Global step whose validation fired the trigger. */
  step: number;
  /** Epoch of that step (1-based). */
  epoch: number;
  /** The monitored validation loss (nats/token) that fired it. */
  valLoss: number;
}

/** Passed to `onCheckpoint` after a checkpoint file is written (atomically). */
export interface CheckpointInfo {
  /** Global step the checkpoint holds (training resumes with step `step + 1`). */
  step: number;
  /** Path of the file written. */
  path: string;
  /** `periodic` (every `checkpointEvery` steps), `final` (end of the run), or `best` (new best validation loss). */
  kind: 'periodic' | 'final' | 'best';
}

/**
 * Codes of the warnings `train()` gives (through `onWarning`, else `process.emitWarning` with this code):
 * `LSTMGEN_UNKNOWN_SYMBOLS` (validation symbols outside the vocabulary, counted as `<unk>`),
 * `LSTMGEN_DIVERGED` (the final validation loss is clearly above ln(vocabSize)), `LSTMGEN_RESTORE_BEST` (the best
 * weights could not be restored),
 * and the warnings of reading the corpus ({@link DataWarningCode}).
 */
export type TrainWarningCode =
  | 'LSTMGEN_UNKNOWN_SYMBOLS'
  | 'LSTMGEN_DIVERGED'
  | 'LSTMGEN_RESTORE_BEST'
  | DataWarningCode;

/**
 * Codes of the warnings of `generate({ records })`: `LSTMGEN_NOVELTY_UNKNOWN` (the model file holds no
 * training-record hashes, so `novel` is null; the message says why), `LSTMGEN_FEW_NOVEL` (`onlyNovel` gave up
 * before finding as many novel records as asked for).
 */
export type GenerateWarningCode = 'LSTMGEN_NOVELTY_UNKNOWN' | 'LSTMGEN_FEW_NOVEL';

/**
 * Codes of the warnings of reading a corpus: `LSTMGEN_BINARY_CORPUS` (a document starts with over 1% control
 * characters), `LSTMGEN_NO_SPACES` (word tokens of a script written without spaces are whole clauses),
 * `LSTMGEN_CACHE` (a truncated, corrupt or unwritable cache file; it is rebuilt, or training goes on without it).
 */
export type DataWarningCode = 'LSTMGEN_BINARY_CORPUS' | 'LSTMGEN_NO_SPACES' | 'LSTMGEN_CACHE';

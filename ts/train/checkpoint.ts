/**
 * Training checkpoints: a model file (weights, config, tokenizer) that also holds Adam's moments and step,
 * the carried hidden state (written by the engine) and, under metadata key `training`, the loop's state
 * ({@link TrainingState}: position in the data, dropout RNG = step, schedule and early-stopping state).
 * A checkpoint loads like any model file (`loadModel`, `lstmgen generate --model`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TrainConfigInput } from '../config';
import type { ResolvedCorpus } from '../corpus/sources';
import { ConfigError, ModelFileError } from '../errors';
import type { CheckpointInfo } from '../events';
import { assertWritable, makeDirs, writeFileAtomic } from '../io/atomic';
import { assertOutputsSpareInputs, type InputFile, type OutputFile } from '../io/paths';
import { LstmModel, type ModelConfig } from '../model';
import type { Device } from '../native/loader';
import type { Tokenizer } from '../tokenizer';
import type { PlateauState } from './plateau';
import type { ScheduleState } from './schedule';

/** Metadata key of the {@link TrainingState} JSON. */
export const TRAINING_KEY = 'training';

/** State of the training loop after a step, enough to continue exactly. */
export interface TrainingState {
  version: 1;
  /** Global steps taken (skipped ones included); the dropout seed of the next step is `dropoutSeed(seed, step)`. */
  step: number;
  /** 1-based epoch and 0-based batch of the next step; batch 0 means the epoch starts (state reset). */
  epoch: number;
  batch: number;
  /** Sum of step losses and steps so far in `epoch` (its mean training loss). */
  epochLossSum: number;
  epochSteps: number;
  /** Learning-rate schedule state. */
  schedule: ScheduleState;
  /** Best monitored validation loss, its step, and the `best.lstm` written for it (if any). */
  best: PlateauState & { step: number | null; path: string | null };
  /** Early-stopping tracker, or null without early stopping. */
  early: PlateauState | null;
}

/** Fields fixed by a checkpoint: changing them would change the model's shape, vocabulary or data stream. */
export const RESUME_LOCKED = [
  'tokenizer',
  'vocabSize',
  'lowercase',
  'wordSplit',
  'embeddingDim',
  'hiddenSize',
  'numLayers',
  'projSize',
  'dropout',
  'dropoutEmbedding',
  'dropoutHidden',
  'dropoutOutput',
  'dropoutWords',
  'weightDrop',
  'tieWeights',
  'ar',
  'tar',
  'optimizer',
  'momentum',
  'nonmono',
  'seqLen',
  'batchSize',
  'seed',
  'valFraction',
  'format',
  'field',
] as const;

/** A checkpoint read back: the model (with its training state in the engine) and the loop's state. */
export interface LoadedCheckpoint {
  model: LstmModel;
  state: TrainingState;
  /** The file read (the newest `step-<n>.lstm` when a directory was given). */
  path: string;
}

/** File name of the periodic checkpoint of `step`: `step-00001000.lstm` (zero-padded so names sort by step). */
export function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, '0')}.lstm`;
}

const STEP_FILE = /^step-(\d+)\.lstm$/;
/** Every name a {@link CheckpointWriter} writes in its directory. */
const CHECKPOINT_FILE = /^(step-\d+|best)\.lstm$/;

/**
 * Refuse, before anything is written, a run whose outputs would replace one of its inputs or each other (see
 * {@link assertOutputsSpareInputs}). The inputs are the files of `sources` (the run's `corpus` and `valCorpus`,
 * those of their directories and globs included; items that could not be looked up are left to reading them),
 * `resumeFrom` and `initFrom`; the outputs `logFile`, the checkpoints in `checkpointDir` and `extra` (e.g. the
 * CLI's model file). A checkpoint resumed from inside `checkpointDir` may be rotated away: that is the run
 * continuing. Fields of other types are skipped (the config check reports them).
 * @throws ConfigError with the field of the offending output.
 */
export function assertRunSparesInputs(
  input: TrainConfigInput,
  sources: { corpus: ResolvedCorpus; valCorpus?: ResolvedCorpus },
  extra: readonly OutputFile[] = [],
): void {
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const inputs: InputFile[] = [];
  const outputs: OutputFile[] = [];
  const resume = str(input.resumeFrom);
  const log = str(input.logFile);
  const dir = str(input.checkpointDir);
  for (const file of sources.corpus.files()) inputs.push({ path: file, what: 'the corpus' });
  for (const file of sources.valCorpus?.files() ?? []) inputs.push({ path: file, what: 'the validation corpus' });
  if (resume) {
    // a directory resumes from its newest checkpoint, and its older ones are the fallbacks: none may be overwritten
    const isDir = fs.statSync(resume, { throwIfNoEntry: false })?.isDirectory() ?? false;
    const resumed = isDir ? listCheckpoints(resume).map((c) => c.path) : [resume];
    for (const file of resumed)
      inputs.push({ path: file, what: 'the checkpoint resumed from', rewrittenBy: 'checkpointDir' });
  }
  const init = str(input.initFrom);
  if (init) inputs.push({ path: init, what: 'the model to fine-tune' });
  if (log) outputs.push({ path: log, field: 'logFile', what: 'the metrics log' });
  if (dir) outputs.push({ path: dir, field: 'checkpointDir', what: 'the checkpoints', names: CHECKPOINT_FILE });
  assertOutputsSpareInputs([...outputs, ...extra], inputs);
}

/** Periodic checkpoints in `dir` as `{ step, path }`, oldest first; `[]` when the directory does not exist. */
export function listCheckpoints(dir: string): Array<{ step: number; path: string }> {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .map((n) => STEP_FILE.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ step: Number(m[1]), path: path.join(dir, m[0]) }))
    .sort((a, b) => a.step - b.step);
}

/**
 * Read a checkpoint (or the newest periodic checkpoint of a directory) onto `device`.
 * @throws ModelFileError if the file is missing, corrupt, or a plain model file without training state.
 */
export async function readCheckpoint(fileOrDir: string, device: Device): Promise<LoadedCheckpoint> {
  let file = fileOrDir;
  if (fs.statSync(fileOrDir, { throwIfNoEntry: false })?.isDirectory()) {
    const newest = listCheckpoints(fileOrDir).at(-1);
    if (!newest) throw new ModelFileError(`${fileOrDir}: no checkpoint (step-<n>.lstm) in this directory`);
    file = newest.path;
  }
  const model = await LstmModel.load(file, { device });
  const meta = model.native.metadata();
  const json = meta[TRAINING_KEY];
  if (typeof json !== 'string' || meta['lstmgen.step'] === undefined) {
    throw new ModelFileError(
      `${file}: not a checkpoint (a model file without training state); resume from a file written with checkpointDir`,
    );
  }
  let state: TrainingState;
  try {
    state = JSON.parse(json) as TrainingState;
  } catch (err) {
    throw new ModelFileError(`${file}: training metadata is not valid JSON`, { cause: err });
  }
  if (
    state.version !== 1 ||
    !Number.isInteger(state.step) ||
    !Number.isInteger(state.epoch) ||
    !Number.isInteger(state.batch)
  ) {
    throw new ModelFileError(`${file}: unsupported training metadata (version ${String(state.version)})`);
  }
  return { model, state, path: file };
}

/**
 * The train options of a resumed run: the fields of {@link RESUME_LOCKED} that `input` leaves undefined are
 * taken from the checkpoint's `stored` config; everything else is `input`'s.
 * @throws ConfigError naming the first locked field that `input` sets to a different value.
 */
export function resumeInput(input: TrainConfigInput, stored: ModelConfig): TrainConfigInput {
  const merged: Record<string, unknown> = { ...input };
  for (const field of RESUME_LOCKED) {
    const given = input[field];
    const kept = stored[field];
    if (given === undefined) merged[field] = kept;
    else if (given !== kept) {
      throw new ConfigError(
        field,
        `cannot change when resuming (the checkpoint has ${JSON.stringify(kept)}, ` +
          `got ${JSON.stringify(given)}); start a new run instead`,
      );
    }
  }
  return merged as TrainConfigInput;
}

/**
 * Check that the tokenizer built from the (resumed) run's corpus is the checkpoint's. The tokenizer options
 * themselves are the checkpoint's (see {@link resumeInput}), so a difference comes from the corpus.
 * @throws ConfigError (field `corpus`) when the vocabularies differ.
 */
export function assertSameTokenizer(stored: Tokenizer, built: Tokenizer): void {
  const a = JSON.stringify(stored.toJSON());
  const b = JSON.stringify(built.toJSON());
  if (a === b) return;
  throw new ConfigError(
    'corpus',
    `gives a different vocabulary than the checkpoint (${built.vocabSize} ${built.kind} tokens vs ` +
      `${stored.vocabSize}${built.vocabSize === stored.vocabSize ? ', other symbols' : ''}); ` +
      'resume with the corpus the checkpoint was trained on',
  );
}

/**
 * Writes the checkpoints of one run into `dir` (created on first use): periodic/final `step-<n>.lstm`, keeping
 * the newest `keep`, and `best.lstm`. Rotation only deletes files of this run's lineage: those it wrote and,
 * when resuming, the periodic checkpoints of `dir` up to the resumed step.
 */
export class CheckpointWriter {
  private readonly lineage: Array<{ step: number; path: string }>;
  private lastStep = -1;

  /**
   * Creates `dir` if missing, so that an unusable directory fails before training rather than at the first checkpoint.
   * @param resumedStep the step of the checkpoint this run continues, if any.
   * @throws ConfigError (field `checkpointDir`) if `dir` cannot be created or is not writable.
   */
  constructor(
    readonly dir: string,
    private readonly keep: number,
    resumedStep?: number,
  ) {
    assertWritable(dir, 'checkpointDir', true);
    this.lineage = resumedStep === undefined ? [] : listCheckpoints(dir).filter((c) => c.step <= resumedStep);
    const newest = this.lineage.at(-1)?.step;
    this.lastStep = newest !== undefined && newest === resumedStep ? newest : -1;
  }

  /**
   * Write `model` with `state` as `step-<state.step>.lstm` (kind `periodic` or `final`), then delete the oldest
   * of this lineage beyond `keep`. A second call for the same step does nothing and returns null.
   * @throws NumericError if the weights are not all finite (nothing is written); ModelFileError if writing fails.
   */
  async periodic(model: LstmModel, state: TrainingState, kind: 'periodic' | 'final'): Promise<CheckpointInfo | null> {
    if (state.step === this.lastStep) return null;
    const file = path.join(this.dir, checkpointName(state.step));
    await this.write(model, state, file);
    this.lastStep = state.step;
    this.lineage.push({ step: state.step, path: file });
    while (this.lineage.length > this.keep) {
      const old = this.lineage.shift();
      if (old && old.path !== file) await fs.promises.rm(old.path, { force: true });
    }
    return { step: state.step, path: file, kind };
  }

  /** Write `best.lstm` (replacing the previous best). @throws as {@link periodic}. */
  async best(model: LstmModel, state: TrainingState): Promise<CheckpointInfo> {
    const file = path.join(this.dir, 'best.lstm');
    await this.write(model, state, file);
    return { step: state.step, path: file, kind: 'best' };
  }

  private async write(model: LstmModel, state: TrainingState, file: string): Promise<void> {
    const bytes = model.toBytes({ [TRAINING_KEY]: JSON.stringify(state) }, true);
    try {
      makeDirs(this.dir); // recreated if it was removed during the run
    } catch {
      // the write below fails with a ModelFileError that says why
    }
    await writeFileAtomic(file, bytes, 'checkpoint');
  }
}

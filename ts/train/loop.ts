/**
 * The training loop: one awaited native truncated-BPTT step per minibatch, validation, schedules, checkpoints, logs.
 */
import * as path from 'node:path';
import { parseTrainConfig, type TrainOptions } from '../config';
import { type CorpusOptions, splitCorpus, tokenizeCorpus } from '../corpus/dataset';
import { TrainingRecords } from '../corpus/recordset';
import { ResolvedCorpus } from '../corpus/sources';
import { batchAt, batchLayout, type TokenStream } from '../data';
import { ConfigError, NumericError } from '../errors';
import type { CheckpointInfo, EpochInfo, EvalInfo, StepInfo, TrainHistory, TrainWarningCode } from '../events';
import type { OutputFile } from '../io/paths';
import { type EvalResult, LstmModel, toModelConfig } from '../model';
import { NativeHandle, type NativeStepResult } from '../native/handle';
import { assertTokenizerOptionsApply, tokenizerFromFile } from '../tokenizer';
import {
  assertRunSparesInputs,
  assertSameTokenizer,
  CheckpointWriter,
  readCheckpoint,
  resumeInput,
  type TrainingState,
} from './checkpoint';
import { fineTuneNative, initInput, vocabularyCorpus } from './init-from';
import { PlateauTracker } from './plateau';
import { regularizersOf } from './regularizers';
import { RunLog } from './runlog';
import { TrainingSampler } from './samples';
import { LrSchedule } from './schedule';

/** Result of {@link train}. */
export interface TrainResult {
  model: LstmModel;
  history: TrainHistory;
}

/**
 * Dropout seed of global step `step` (0-based): a 32-bit mix of the run seed and the step, so runs are reproducible.
 */
export function dropoutSeed(seed: number, step: number): number {
  return (seed ^ Math.imul(step + 1, 0x9e3779b1)) >>> 0;
}

/** Periodic checkpoint interval when `checkpointDir` is set without `checkpointEvery`. */
export const DEFAULT_CHECKPOINT_EVERY = 1000;
/** Periodic checkpoints kept when `keepCheckpoints` is unset. */
export const DEFAULT_KEEP_CHECKPOINTS = 3;

/** Where the warnings of a run go without `onWarning`: `process.emitWarning` with the code. */
function emitWarning(message: string, code: TrainWarningCode): void {
  process.emitWarning(message, { code });
}

/**
 * Train a new model, or continue one from a checkpoint (`resumeFrom`).
 *
 * Steps: validate the config; read and tokenize the corpus as a stream (two passes: vocabulary, then ids;
 * or the ids from `cacheDir`); hold out validation data (`valCorpus`, or `valFraction` of the corpus: the last
 * tokens of a text, a seeded random share of the records; none for 0); create the native model from `seed`
 * (or load the checkpoint); then run one awaited native step per full `[batchSize, seqLen]` batch, resetting
 * the carried state at each epoch start (the native work runs on the libuv pool, so the event loop stays
 * responsive). Records are framed by the tokenizer's boundary token and shuffled every epoch from `seed`.
 * The rate of each step comes from `lrSchedule`. Validation runs every `evalEvery` steps and at each epoch end;
 * the *monitored* validations (those of `evalEvery` when set, else the epoch ends) drive reduce-on-plateau,
 * early stopping and `best.lstm`. When `maxSteps` ends an epoch early its validation is reported but not
 * monitored. Symbols outside the vocabulary become `<unk>`: silently those of the training corpus (beyond a word
 * vocabulary's size), with one warning those of a separate `valCorpus`.
 *
 * A resumed run continues exactly: same batches, dropout masks, Adam state and carried state, so its step
 * losses equal those of an uninterrupted run. With `initFrom` the run fine-tunes a saved model instead: its
 * weights and tokenizer (grown by `extendVocab`), a fresh optimizer and step count (see train/init-from); such a
 * run resumes exactly too. Every `sampleEvery` steps the model is sampled (`onSample`, the log's `sample`
 * records, `history.samples`) without changing the run's steps or its tokens/s. When `signal` aborts, training
 * stops before the next step and the model so far is returned with `history.aborted = true` (a final checkpoint is written when
 * `checkpointDir` is set); while the corpus is being read, an abort rejects with the signal's reason (an
 * `AbortError`). With early stopping and `restoreBest`, the returned model has the best weights.
 * When the final validation loss is non-finite or clearly above ln(vocabSize) (worse than a uniform prediction
 * by more than {@link DIVERGENCE_MARGIN}: training diverged) a warning `LSTMGEN_DIVERGED` says so and suggests a
 * lower lr; the run still resolves. Warnings (see {@link TrainWarningCode}) go to `onWarning`, else to
 * `process.emitWarning` with their code.
 *
 * @param laterOutputs files the caller will write from the result (e.g. the CLI's model file): checked with the
 *   run's own outputs, before anything is written, so that none of them replaces an input or another output.
 * @throws ConfigError for invalid options, an output (`logFile`, `checkpointDir`, `laterOutputs`) that would replace an input
 *   (a corpus file included) or another output, a checkpoint whose tokenizer or shape differs from the options,
 *   or an unwritable `cacheDir`, an `initFrom` architecture field given a value other than the model's, or a
 *   `samplePrompt` with symbols outside the vocabulary; DataError for a corpus that cannot be read (missing, not
 *   a regular file, invalid text in its encoding, bad records: see `tokenizeCorpus`) or is empty, or whose training part is too
 *   short for one batch or validation part for one sequence (the message says which part, how it was taken and
 *   what to change); ModelFileError for an unreadable checkpoint or `initFrom` model, or a failed write;
 *   DeviceError if the addon cannot load or the device is unavailable; NumericError (with `step`) for a non-finite loss or gradient
 *   under `onNonFinite: 'stop'`, or non-finite weights at a checkpoint. Errors thrown by callbacks (or promises they
 * return, which are awaited) propagate.
 */
export async function train(input: TrainOptions, laterOutputs: readonly OutputFile[] = []): Promise<TrainResult> {
  const given = parseTrainConfig(input);
  // the corpora are looked up once: for the files no output may replace, and later to read them
  const sources = {
    corpus: new ResolvedCorpus(given.corpus, { extensions: given.extensions }),
    valCorpus: given.valCorpus ? new ResolvedCorpus(given.valCorpus, { extensions: given.extensions }) : undefined,
  };
  assertRunSparesInputs(given, sources, laterOutputs); // before the log, the checkpoint directory or anything else is written
  const resumed = given.resumeFrom ? await readCheckpoint(given.resumeFrom, given.device) : undefined;
  const base = given.initFrom ? await LstmModel.load(given.initFrom, { device: given.device }) : undefined;
  const cfg = resumed
    ? parseTrainConfig(resumeInput(input, resumed.model.config))
    : base && given.initFrom
      ? parseTrainConfig(initInput(input, base, given.initFrom))
      : given;

  assertTokenizerOptionsApply(cfg.tokenizer, input);
  const warn = cfg.onWarning ?? emitWarning;
  const corpusOptions: CorpusOptions = {
    format: cfg.format,
    field: cfg.field,
    extensions: cfg.extensions,
    encoding: cfg.encoding,
    cacheDir: cfg.cacheDir,
    signal: cfg.signal,
    onProgress: cfg.onDataProgress,
    onWarning: warn,
  };
  const kind = typeof cfg.tokenizer === 'object' ? 'bpe' : cfg.tokenizer;
  const options = {
    kind,
    vocabSize: cfg.vocabSize,
    lowercase: cfg.lowercase,
    ...(cfg.wordSplit === 'punctuation' ? {} : { wordSplit: cfg.wordSplit }),
  };
  // a fine-tuning run (or the resumption of one) encodes with the vocabulary it started from
  const start = base ?? (resumed?.model.config.initFrom !== undefined ? resumed.model : undefined);
  // a BPE vocabulary has no unknown symbols to extend it with
  const extend =
    start?.tokenizer.kind !== 'bpe' && (base ? cfg.extendVocab : resumed?.model.config.extendVocab === true);
  const corpus = start
    ? await vocabularyCorpus(
        sources.corpus,
        { tokenizer: start.tokenizer, extend, mayGrow: !resumed },
        options,
        corpusOptions,
        warn,
      )
    : await tokenizeCorpus(
        sources.corpus,
        typeof cfg.tokenizer === 'object' ? tokenizerFromFile(cfg.tokenizer.file) : options,
        corpusOptions,
      );
  if (resumed && !start) assertSameTokenizer(resumed.model.tokenizer, corpus.tokenizer);
  const tokenizer = resumed?.model.tokenizer ?? corpus.tokenizer;
  // the vocabulary comes from the training corpus: symbols only a separate validation corpus has count as <unk>
  const valCorpus = sources.valCorpus
    ? await tokenizeCorpus(sources.valCorpus, tokenizer, corpusOptions, {
        onWarning: (m) => warn(m, 'LSTMGEN_UNKNOWN_SYMBOLS'),
        prefix: 'validation text: ',
      })
    : undefined;
  const split = splitCorpus(corpus, cfg.valFraction, cfg.seed, valCorpus);
  const fix = cfg.valCorpus ? 'a longer corpus' : 'a longer corpus, a smaller valFraction';
  const trainLength = split.train(1).length;
  const layout = batchLayout(
    trainLength,
    cfg.batchSize,
    cfg.seqLen,
    split.trainWhat,
    `use ${fix} or a smaller batchSize or seqLen`,
  );
  const stepsPerEpoch = layout.fullBatches;
  const val = split.val;
  if (val) {
    const more = cfg.valCorpus ? 'a longer validation corpus' : 'a longer corpus, a larger valFraction';
    batchLayout(
      val.length,
      1,
      cfg.seqLen,
      split.valWhat,
      `use ${more} or a smaller seqLen, or valFraction: 0 for no validation`,
    );
  }
  const epochs = cfg.epochs ?? (cfg.maxSteps ? Math.ceil(cfg.maxSteps / stepsPerEpoch) : 1);
  const totalSteps = Math.min(cfg.maxSteps ?? Infinity, epochs * stepsPerEpoch);

  const native =
    resumed?.model.native ??
    (base && fineTuneNative(base, tokenizer, cfg.dropout, cfg.seed)) ??
    NativeHandle.create(
      {
        vocabSize: tokenizer.vocabSize,
        embeddingDim: cfg.embeddingDim,
        hiddenSize: cfg.hiddenSize,
        numLayers: cfg.numLayers,
        dropout: cfg.dropout,
        projSize: cfg.projSize,
      },
      cfg.seed,
      cfg.device,
    );
  base?.dispose(); // its weights were copied
  native.setPrecision(cfg.precision);
  const records = corpus.framed ? TrainingRecords.of(corpus) : TrainingRecords.ofPlainText();
  native.setRegularizers(regularizersOf(cfg));
  native.setOptimizer(cfg.optimizer, cfg.momentum, cfg.nonmono);
  let model = new LstmModel(native, tokenizer, toModelConfig(cfg), records);
  const sampler = cfg.sampleEvery > 0 ? new TrainingSampler(model, cfg) : undefined;

  // Loop state: everything a checkpoint stores (see TrainingState).
  const st = resumed?.state;
  let step = st?.step ?? 0;
  let epoch = st?.epoch ?? 1;
  let batch = st?.batch ?? 0;
  if (batch >= stepsPerEpoch) [epoch, batch] = [epoch + 1, 0]; // the corpus got shorter
  let epochLossSum = st?.epochLossSum ?? 0;
  let epochSteps = st?.epochSteps ?? 0;
  if (resumed && step >= totalSteps) {
    const limit = cfg.maxSteps !== undefined ? `maxSteps ${cfg.maxSteps}` : `epochs ${epochs} (${totalSteps} steps)`;
    throw new ConfigError(
      cfg.maxSteps !== undefined ? 'maxSteps' : 'epochs',
      `the checkpoint ${given.resumeFrom} is at step ${step}, ` +
        `already at or past the end of the run (${limit}); raise it to train further`,
    );
  }
  const schedule = new LrSchedule(cfg.lrSchedule, cfg.lr, totalSteps, st?.schedule);
  const best = new PlateauTracker(0, st?.best);
  let bestStep = st?.best.step ?? null;
  let bestPath = st?.best.path ?? null;
  const early = cfg.earlyStopping ? new PlateauTracker(cfg.earlyStopping.minDelta, st?.early ?? undefined) : undefined;
  const earlyPatience = cfg.earlyStopping?.patience ?? Number.POSITIVE_INFINITY;
  const state = (): TrainingState => ({
    version: 1,
    step,
    epoch,
    batch,
    epochLossSum,
    epochSteps,
    schedule: schedule.toJSON(),
    best: { ...best.toJSON(), step: bestStep, path: bestPath },
    early: early?.toJSON() ?? null,
  });

  const history: TrainHistory = {
    steps: [],
    epochs: [],
    evals: [],
    tokensPerSec: 0,
    aborted: false,
    skippedSteps: [],
    stoppedEarly: false,
    best: null,
    checkpoints: [],
    samples: [],
    averagingStart: native.averagingStart(),
  };
  const writer = cfg.checkpointDir
    ? new CheckpointWriter(cfg.checkpointDir, cfg.keepCheckpoints ?? DEFAULT_KEEP_CHECKPOINTS, st?.step)
    : undefined;
  const checkpointEvery = cfg.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
  const log = cfg.logFile ? RunLog.open(cfg.logFile, resumed !== undefined) : undefined;
  const recordCheckpoint = async (info: CheckpointInfo | null) => {
    if (!info) return;
    history.checkpoints.push(info);
    log?.write({ type: 'checkpoint', ...info });
    await cfg.onCheckpoint?.(info);
  };
  const measure = (text: NonNullable<typeof val>) =>
    model.measure(text, { batchSize: cfg.batchSize, seqLen: cfg.seqLen });
  const validate = async () => (val ? measure(val) : null);
  let stream: TokenStream | undefined;
  let streamEpoch = 0;
  const opt = {
    beta1: cfg.beta1,
    beta2: cfg.beta2,
    eps: cfg.eps,
    weightDecay: cfg.weightDecay,
    clipNorm: cfg.clipNorm,
  };
  let bestWeights: Buffer | undefined; // restoreBest snapshot (weights only)
  let seconds = 0;
  let tokens = 0;

  try {
    const start = {
      totalSteps,
      stepsPerEpoch,
      trainTokens: trainLength,
      valTokens: val?.length ?? 0,
      vocabSize: tokenizer.vocabSize,
      device: model.device,
      startStep: step,
    };
    log?.write({ type: 'start', time: new Date().toISOString(), ...start });
    await cfg.onStart?.(start);

    while (step < totalSteps) {
      if (cfg.signal?.aborted) {
        history.aborted = true;
        break;
      }
      if (batch === 0) {
        native.resetTrainState();
        [epochLossSum, epochSteps] = [0, 0];
      }
      if (stream === undefined || streamEpoch !== epoch) {
        stream = split.train(epoch);
        streamEpoch = epoch;
      }
      const b = batchAt(stream, layout, cfg.batchSize, cfg.seqLen, batch);
      const lr = schedule.lrAt(step);
      const t0 = performance.now();
      let r: NativeStepResult | undefined;
      try {
        r = await native.trainStep(
          b.inputs,
          b.targets,
          b.batchSize,
          b.seqLen,
          { ...opt, lr },
          dropoutSeed(cfg.seed, step),
          b.boundaryId,
        );
      } catch (err) {
        if (!(err instanceof NumericError)) throw err;
        const reason = err.message.replace(/ at step \d+/, '');
        if (cfg.onNonFinite === 'stop') {
          throw new NumericError(
            `step ${step + 1} (epoch ${epoch}): ${reason}; lower lr, set clipNorm, or use onNonFinite: 'skip'`,
            { cause: err, step: step + 1 },
          );
        }
        history.skippedSteps.push(step + 1);
        log?.write({ type: 'skip', step: step + 1, epoch, lr, reason });
      }
      const dt = (performance.now() - t0) / 1000;
      step++;
      batch++;
      if (r) {
        epochLossSum += r.loss;
        epochSteps++;
        seconds += dt;
        tokens += b.inputs.length;
        const info: StepInfo = {
          step,
          epoch,
          loss: r.loss,
          tokensPerSec: b.inputs.length / dt,
          gradNorm: r.gradNorm,
          lr,
        };
        history.steps.push(info);
        log?.write({ type: 'step', ...info });
        await cfg.onStep?.(info);
      }
      if (sampler?.due(step)) {
        const sample = await sampler.sample(step, epoch);
        history.samples.push(sample);
        log?.write({ type: 'sample', ...sample });
        await cfg.onSample?.(sample);
      }

      let monitored: number | undefined;
      let evaluated: EvalResult | undefined;
      if (cfg.evalEvery && val && step % cfg.evalEvery === 0) {
        evaluated = await measure(val);
        const e: EvalInfo = {
          step,
          epoch,
          valLoss: evaluated.loss,
          valPerplexity: evaluated.perplexity,
          valAccuracy: evaluated.accuracy,
          valBitsPerChar: evaluated.bitsPerChar,
        };
        history.evals.push(e);
        log?.write({ type: 'eval', ...e });
        await cfg.onEval?.(e);
        monitored = evaluated.loss;
      }
      if (batch === stepsPerEpoch) {
        const v = evaluated ?? (await validate());
        const e = epochInfo(epoch, epochLossSum / epochSteps, v);
        history.epochs.push(e);
        log?.write({ type: 'epoch', step, ...e });
        await cfg.onEpoch?.(e);
        if (!cfg.evalEvery && v) monitored = v.loss;
        [epoch, batch] = [epoch + 1, 0];
      }

      if (monitored !== undefined) {
        schedule.onValidation(monitored);
        // NT-ASGD's trigger watches the monitored losses; from the step after it fires the weights (validated,
        // saved, checkpointed) are the average of the SGD iterates
        if (native.observeValidation(monitored)) {
          history.averagingStart = step;
          const averaging = { step, epoch, valLoss: monitored };
          log?.write({ type: 'averaging', ...averaging });
          await cfg.onAveraging?.(averaging);
        }
        if (best.update(monitored)) {
          bestStep = step;
          if (cfg.earlyStopping?.restoreBest) bestWeights = model.toBytes();
          if (writer) {
            bestPath = path.join(writer.dir, 'best.lstm');
            await recordCheckpoint(await writer.best(model, state()));
          }
        }
        if (early && !early.update(monitored) && early.bad >= earlyPatience) history.stoppedEarly = true;
      }
      if (writer && step % checkpointEvery === 0)
        await recordCheckpoint(await writer.periodic(model, state(), 'periodic'));
      if (history.stoppedEarly) break;
    }

    if (!history.aborted && !history.stoppedEarly && batch > 0 && epochSteps > 0) {
      // maxSteps ended the epoch early: report its validation (not monitored: the run may be resumed)
      const e = epochInfo(epoch, epochLossSum / epochSteps, await validate());
      history.epochs.push(e);
      log?.write({ type: 'epoch', step, ...e });
      await cfg.onEpoch?.(e);
    }
    if (writer) await recordCheckpoint(await writer.periodic(model, state(), 'final'));
    if (history.stoppedEarly && cfg.earlyStopping?.restoreBest && bestStep !== null && bestStep !== step) {
      model = await restoreBest(model, bestWeights, bestPath, warn);
    }
    history.best = bestStep !== null && best.best !== null ? { valLoss: best.best, step: bestStep } : null;
    history.tokensPerSec = seconds > 0 ? tokens / seconds : 0;
    const diverged = divergenceWarning(history.epochs.at(-1)?.valLoss ?? undefined, tokenizer.vocabSize, cfg.lr);
    if (diverged) warn(diverged, 'LSTMGEN_DIVERGED');
    log?.write({
      type: 'end',
      time: new Date().toISOString(),
      step,
      aborted: history.aborted,
      stoppedEarly: history.stoppedEarly,
      bestValLoss: history.best?.valLoss ?? null,
      bestStep: history.best?.step ?? null,
    });
  } finally {
    log?.close();
  }
  return { model, history };
}

/** The record of an epoch: its mean training loss and the validation result (null without validation). */
function epochInfo(epoch: number, trainLoss: number, v: EvalResult | null): EpochInfo {
  return {
    epoch,
    trainLoss,
    valLoss: v?.loss ?? null,
    valPerplexity: v?.perplexity ?? null,
    valAccuracy: v?.accuracy ?? null,
    valBitsPerChar: v?.bitsPerChar ?? null,
  };
}

/**
 * How far above ln(vocabSize) (relative) a final validation loss must be to say that training diverged. An
 * untrained model predicts nearly uniformly, so its loss is ln(vocabSize) give or take its random initial
 * weights (a few hundredths of a nat on a char model); a run of a few small steps is still there. A model
 * that lost the way is far above it: its confident predictions are wrong.
 */
export const DIVERGENCE_MARGIN = 0.1;

/**
 * The warning for a final validation loss (nats/token) that says training diverged: non-finite, or more than
 * {@link DIVERGENCE_MARGIN} above ln(vocabSize), the loss of a uniform prediction (the model is clearly worse
 * than guessing). Undefined otherwise, or when nothing was validated.
 */
export function divergenceWarning(valLoss: number | undefined, vocabSize: number, lr: number): string | undefined {
  const uniform = Math.log(vocabSize);
  if (valLoss === undefined || (Number.isFinite(valLoss) && valLoss <= uniform * (1 + DIVERGENCE_MARGIN))) return;
  return (
    `training diverged: the final validation loss ${valLoss.toPrecision(4)} ` +
    `is above ln(vocabSize) = ${uniform.toFixed(3)} by more than ${100 * DIVERGENCE_MARGIN}%, ` +
    `the loss of a uniform prediction, so the model is worse than guessing; lower lr (it was ${lr}) and train again`
  );
}

/**
 * The model with the best weights: from the in-memory snapshot, else (the best predates a resume) from the
 * `best.lstm` checkpoint; if neither exists, `model` itself with a warning through `warn`.
 */
async function restoreBest(
  model: LstmModel,
  snapshot: Buffer | undefined,
  bestPath: string | null,
  warn: (message: string, code: TrainWarningCode) => void,
): Promise<LstmModel> {
  const device = model.device.startsWith('cuda') ? 'cuda' : 'cpu';
  if (snapshot) {
    return new LstmModel(NativeHandle.fromSafetensors(snapshot, device), model.tokenizer, model.config, model.records);
  }
  if (bestPath) {
    try {
      const loaded = await LstmModel.load(bestPath, { device });
      return new LstmModel(loaded.native, model.tokenizer, model.config, model.records);
    } catch (err) {
      warn(
        `cannot restore the best weights from ${bestPath}: ${(err as Error).message}; keeping the last weights`,
        'LSTMGEN_RESTORE_BEST',
      );
      return model;
    }
  }
  warn(
    'the best weights predate the resumed checkpoint and no best.lstm exists; keeping the last weights',
    'LSTMGEN_RESTORE_BEST',
  );
  return model;
}

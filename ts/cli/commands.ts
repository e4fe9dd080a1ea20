/** The actions of the `lstmgen` commands; {@link buildProgram} declares their flags. */
import type { CorpusEncoding } from '../corpus/read';
import type { CorpusFormat } from '../corpus/records';
import type { CorpusSource } from '../corpus/sources';
import { ConfigError } from '../errors';
import { exportModel } from '../export/write';
import { assertWritable, writeFileAtomic } from '../io/atomic';
import { assertOutputsSpareInputs } from '../io/paths';
import { loadModel } from '../model';
import type { Precision } from '../native/handle';
import { type Device, engineInfo } from '../native/loader';
import { warnUnknownSymbols } from '../tokenizer';
import { train } from '../train/loop';
import { plotRun } from '../train/plot';
import { DataProgressBar, dataFlagsToConfig } from './data';
import { runFlagsToConfig } from './flags';
import {
  emit,
  epochLine,
  fmt,
  keepRunningWithoutStdout,
  printStream,
  runSummaryLines,
  say,
  writtenFiles,
} from './print';
import { sampleLines, TrainProgress } from './train-progress';

/** The flags of `lstmgen train`: `--out`, `--json`, and the train options (see {@link runFlagsToConfig}). */
interface TrainFlags {
  out: string;
  json?: boolean;
  [field: string]: unknown;
}

/** Exit status of a run ended by Ctrl-C (128 + SIGINT), as shells report it. */
export const EXIT_INTERRUPTED = 130;

/**
 * `lstmgen train`: train with a progress bar and samples above it (or JSON lines: the run-log records `step`,
 * `eval`, `epoch`, `checkpoint`, `sample`, then `done`), save the model, print a summary. Ctrl-C stops after the
 * current step, saves, says where and sets exit status 130; a second Ctrl-C exits at once (130) without saving.
 * A closed stdout does not stop the run: its output is dropped and the model is still saved.
 * @throws ConfigError (field `out`, or as {@link train}) for bad options or outputs, before training starts;
 *   whatever {@link train} or `model.save` throw.
 */
export async function trainCommand(flags: TrainFlags): Promise<void> {
  const { out, json, ...rest } = flags;
  const config = dataFlagsToConfig(runFlagsToConfig(rest));
  assertWritable(out, 'out'); // fail before training, not after it
  keepRunningWithoutStdout();
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) {
      process.stderr.write('\nlstmgen: interrupted again; exiting without saving\n');
      process.exit(EXIT_INTERRUPTED);
    }
    process.stderr.write(
      '\nlstmgen: stopping after this step to save the model (Ctrl-C again to quit without saving)\n',
    );
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  const dataBar = json ? undefined : new DataProgressBar();
  const bar = json ? undefined : new TrainProgress();
  let step = 0;
  let lastVal: { step: number; valLoss: number; valPerplexity: number } | undefined;
  try {
    const modelFile = { path: out, field: 'out', what: 'the model file' };
    const { model, history } = await train(
      {
        ...(config as { corpus: string }),
        signal: controller.signal,
        onDataProgress: (p) => dataBar?.update(p),
        onStart: (s) => {
          dataBar?.stop();
          step = s.startStep;
          if (json) return;
          process.stderr.write(
            `training on ${s.trainTokens} tokens (validation ${s.valTokens}), ` +
              `vocabulary ${s.vocabSize}, device ${s.device}\n`,
          );
          bar?.start(s.totalSteps, s.startStep, { epoch: 1, loss: '-', tps: '-' });
        },
        onStep: (s) => {
          step = s.step;
          if (json) emit({ type: 'step', ...s });
          else bar?.update(s.step, { epoch: s.epoch, loss: fmt(s.loss), tps: Math.round(s.tokensPerSec) });
        },
        onEval: (e) => {
          lastVal = e;
          if (json) emit({ type: 'eval', ...e });
        },
        onEpoch: (e) => {
          if (e.valLoss !== null && e.valPerplexity !== null)
            lastVal = { step, valLoss: e.valLoss, valPerplexity: e.valPerplexity };
          if (json) emit({ type: 'epoch', step, ...e });
        },
        onCheckpoint: (c) => {
          if (json) emit({ type: 'checkpoint', ...c });
        },
        onAveraging: (a) => {
          if (json) emit({ type: 'averaging', ...a });
        },
        onSample: (s) => {
          if (json) emit({ type: 'sample', ...s });
          else bar?.log(sampleLines(s));
        },
      },
      [modelFile],
    );
    bar?.stop();
    await model.save(out);
    if (history.aborted) process.exitCode = EXIT_INTERRUPTED;
    const last = history.epochs.at(-1);
    const savedVal = lastVal?.step === step ? lastVal : undefined; // a validation of the saved weights
    if (json) {
      const files = writtenFiles(history, config.logFile as string | undefined);
      emit({
        type: 'done',
        modelPath: out,
        step,
        valLoss: (history.aborted ? savedVal?.valLoss : last?.valLoss) ?? null,
        valPerplexity: (history.aborted ? savedVal?.valPerplexity : last?.valPerplexity) ?? null,
        tokensPerSec: history.tokensPerSec,
        aborted: history.aborted,
        ...(Object.keys(files).length ? { files } : {}),
      });
    } else {
      for (const e of history.epochs) say(epochLine(e));
      const steps = `${history.steps.length} steps at ${Math.round(history.tokensPerSec)} tokens/s`;
      if (history.aborted) {
        const val = savedVal
          ? ` (validation loss ${fmt(savedVal.valLoss)}, perplexity ${fmt(savedVal.valPerplexity, 2)})`
          : '';
        say(`interrupted at step ${step}, saved to ${out}${val}; ${steps}`);
      } else say(`${steps}; model saved to ${out}`);
      for (const line of runSummaryLines(history, config.logFile as string | undefined)) say(line);
    }
  } finally {
    dataBar?.stop();
    bar?.stop();
    process.removeListener('SIGINT', onSigint);
  }
}

interface GenerateFlags {
  model: string;
  device?: Device;
  precision?: Precision;
  json?: boolean;
  [field: string]: unknown;
}

/**
 * `lstmgen generate`: print samples; a single one is printed as it is sampled. With `--records N`: N whole
 * records, one per line (`--json`: `{"records":[{"text","novel","end"}]}`).
 */
export async function generateCommand(flags: GenerateFlags): Promise<void> {
  const { model: file, device, precision, json, blockNgrams, ...rest } = flags;
  const options = blockNgrams === undefined ? rest : { ...rest, noRepeatNgram: blockNgrams };
  const model = await loadModel(file, { device, precision });
  if (options.records !== undefined) {
    const records = await model.generate({ ...options, records: options.records as number });
    if (json) emit({ records });
    else for (const r of records) say(r.text);
    return;
  }
  if (options.onlyNovel)
    throw new ConfigError('onlyNovel', 'needs records: it keeps sampling until N novel records are found');
  if (!json && (options.numSamples ?? 1) === 1) return printStream(model, options); // prints as it samples
  const samples = await model.generate(options);
  if (json) emit({ samples });
  else say(samples.map((s) => String(options.prompt ?? '') + s).join('\n\n-----\n\n'));
}

interface EvalFlags {
  model: string;
  corpus: string[];
  device?: Device;
  precision?: Precision;
  json?: boolean;
  batchSize?: number;
  seqLen?: number;
  format?: CorpusFormat;
  field?: string;
  ext?: string[];
  encoding?: CorpusEncoding;
  cacheDir?: string;
}

/** `lstmgen eval`: loss, perplexity, accuracy (and bits per char) of a model on a corpus. */
export async function evalCommand(flags: EvalFlags): Promise<void> {
  const model = await loadModel(flags.model, { device: flags.device, precision: flags.precision });
  const { corpus, ...data } = dataFlagsToConfig({ corpus: flags.corpus, ext: flags.ext });
  const r = await model.evaluate(corpus as CorpusSource, {
    batchSize: flags.batchSize,
    seqLen: flags.seqLen,
    format: flags.format,
    field: flags.field,
    encoding: flags.encoding,
    cacheDir: flags.cacheDir,
    ...data,
    onWarning: warnUnknownSymbols,
  });
  if (flags.json) {
    emit({
      loss: r.loss,
      perplexity: r.perplexity,
      accuracy: r.accuracy,
      bitsPerChar: r.bitsPerChar,
      tokens: r.tokens,
    });
  } else {
    const bpc = ` | ${fmt(r.bitsPerChar, 3)} bits/char`;
    say(
      `loss ${fmt(r.loss)} nats/token | perplexity ${fmt(r.perplexity, 2)} ` +
        `| accuracy ${fmt(100 * r.accuracy, 1)}%${bpc} | ${r.tokens} tokens`,
    );
  }
}

/** `lstmgen info`: which native build and device `--device auto` uses, and why it fell back to the CPU. */
export function infoCommand(flags: { json?: boolean }): void {
  const info = engineInfo();
  if (flags.json) {
    emit(info);
    return;
  }
  const build = info.binary === 'cuda' ? 'CUDA build' : 'CPU build';
  say(`engine: ${build} on ${info.device} (candle ${info.candleVersion}, ${info.threads} CPU threads)`);
  say(`binary: ${info.binaryPath}`);
  say(`cpu matrix products: ${info.cpuGemm}`);
  if (info.cudaRecurrence) say(`cuda recurrence: ${info.cudaRecurrence}`);
  if (info.fallbackReason) say(`cuda: not used: ${info.fallbackReason}`);
}

/**
 * `lstmgen plot RUN.jsonl -o FILE.svg`: draw the run's curves and write them atomically. Prints the file
 * written (or `{"path"}` with --json).
 * @throws ConfigError (field `out`) if `-o` names the log itself or cannot be written, checked before drawing;
 *   DataError for an unreadable or empty log (see {@link plotRun}).
 */
export async function plotCommand(
  runFile: string,
  flags: { out: string; title?: string; json?: boolean },
): Promise<void> {
  assertOutputsSpareInputs(
    [{ path: flags.out, field: 'out', what: 'the plot' }],
    [{ path: runFile, what: 'the run log' }],
  );
  assertWritable(flags.out, 'out');
  const svg = await plotRun(runFile, { title: flags.title });
  await writeFileAtomic(flags.out, Buffer.from(svg), 'plot');
  if (flags.json) emit({ path: flags.out });
  else say(`wrote ${flags.out}`);
}

/**
 * `lstmgen export --model FILE --format tfjs|onnx OUT`: write the model for TensorFlow.js or ONNX runtimes (see
 * {@link exportModel}). Prints the files written (or `{"format","files","bytes"}` with --json).
 * @throws ConfigError (field `out`) when neither OUT nor `--out` is given, or both differ; whatever
 *   {@link exportModel} throws.
 */
export async function exportCommand(
  outArg: string | undefined,
  flags: { model: string; format: string; out?: string; force?: boolean; stateInputs?: boolean; json?: boolean },
): Promise<void> {
  const { model, json, out: outFlag, ...options } = flags;
  if (outArg !== undefined && outFlag !== undefined && outArg !== outFlag)
    throw new ConfigError('out', `is given twice (${JSON.stringify(outArg)} and ${JSON.stringify(outFlag)}); give one`);
  const out = outArg ?? outFlag;
  if (out === undefined)
    throw new ConfigError('out', 'is required: give the output directory (tfjs) or file (onnx) as OUT or --out');
  const result = await exportModel(model, { ...options, out } as Parameters<typeof exportModel>[1]);
  if (json) emit(result);
  else say(`wrote ${result.format} export (${fmtBytes(result.bytes)}): ${result.files.join(', ')}`);
}

/** `n` bytes as `12.3 kB` / `4.5 MB` (powers of 1000). */
function fmtBytes(n: number): string {
  if (n < 1e3) return `${n} B`;
  return n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : `${(n / 1e6).toFixed(1)} MB`;
}

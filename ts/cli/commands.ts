/** The actions of the `lstmgen` commands; {@link buildProgram} declares their flags. */
import * as fs from 'node:fs';
import { SingleBar } from 'cli-progress';
import { assertWritable } from '../io/atomic';
import { loadModel } from '../model';
import type { Precision } from '../native/handle';
import { type Device, engineInfo } from '../native/loader';
import { warnUnknownSymbols } from '../tokenizer';
import { train } from '../train/loop';
import { plotRun } from '../train/plot';
import { runFlagsToConfig } from './flags';
import { emit, epochLine, fmt, printStream, runSummaryLines, writtenFiles } from './print';

/** The flags of `lstmgen train`: `--out`, `--json`, and the train options (see {@link runFlagsToConfig}). */
interface TrainFlags {
  out: string;
  json?: boolean;
  [field: string]: unknown;
}

/** `lstmgen train`: train with a progress bar (or JSON lines), save the model, print a summary. */
export async function trainCommand(flags: TrainFlags): Promise<void> {
  const { out, json, ...rest } = flags;
  const config = runFlagsToConfig(rest);
  assertWritable(out, 'out'); // fail before training, not after it
  const controller = new AbortController();
  const onSigint = () => {
    process.stderr.write('\nlstmgen: stopping after this step (Ctrl-C again to quit)\n');
    controller.abort();
    process.removeListener('SIGINT', onSigint);
  };
  process.on('SIGINT', onSigint);
  const bar = json
    ? undefined
    : new SingleBar({
        stream: process.stderr,
        format: 'train |{bar}| {value}/{total} steps | epoch {epoch} | loss {loss} | {tps} tok/s | ETA {eta_formatted}',
        etaBuffer: 50,
        hideCursor: true,
      });
  try {
    const { model, history } = await train({
      ...(config as { corpus: string }),
      signal: controller.signal,
      onStart: (s) => {
        if (json) return;
        process.stderr.write(
          `training on ${s.trainTokens} tokens (validation ${s.valTokens}), ` +
            `vocabulary ${s.vocabSize}, device ${s.device}\n`,
        );
        bar?.start(s.totalSteps, s.startStep, { epoch: 1, loss: '-', tps: '-' });
      },
      onStep: (s) => {
        if (json) emit({ type: 'step', step: s.step, epoch: s.epoch, loss: s.loss, tokensPerSec: s.tokensPerSec });
        else bar?.update(s.step, { epoch: s.epoch, loss: fmt(s.loss), tps: Math.round(s.tokensPerSec) });
      },
      onEpoch: (e) => {
        if (json) emit({ type: 'epoch', ...e });
      },
      onCheckpoint: (c) => {
        if (json) emit({ type: 'checkpoint', step: c.step, path: c.path });
      },
    });
    bar?.stop();
    await model.save(out);
    const last = history.epochs.at(-1);
    if (json) {
      const files = writtenFiles(history, config.logFile as string | undefined);
      emit({
        type: 'done',
        modelPath: out,
        valLoss: last?.valLoss ?? null,
        valPerplexity: last?.valPerplexity ?? null,
        tokensPerSec: history.tokensPerSec,
        aborted: history.aborted,
        ...(Object.keys(files).length ? { files } : {}),
      });
    } else {
      for (const e of history.epochs) console.log(epochLine(e, model.tokenizer.kind === 'char'));
      console.log(
        `${history.aborted ? 'stopped early; ' : ''}${history.steps.length} steps ` +
          `at ${Math.round(history.tokensPerSec)} tokens/s; model saved to ${out}`,
      );
      for (const line of runSummaryLines(history, config.logFile as string | undefined)) console.log(line);
    }
  } finally {
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

/** `lstmgen generate`: print samples; a single one is printed as it is sampled. */
export async function generateCommand(flags: GenerateFlags): Promise<void> {
  const { model: file, device, precision, json, ...options } = flags;
  const model = await loadModel(file, { device, precision });
  if (!json && (options.numSamples ?? 1) === 1) return printStream(model, options); // prints as it samples
  const samples = await model.generate(options);
  if (json) emit({ samples });
  else console.log(samples.map((s) => String(options.prompt ?? '') + s).join('\n\n-----\n\n'));
}

interface EvalFlags {
  model: string;
  corpus: string;
  device?: Device;
  precision?: Precision;
  json?: boolean;
  batchSize?: number;
  seqLen?: number;
}

/** `lstmgen eval`: loss, perplexity, accuracy (and bits per char) of a model on a corpus. */
export async function evalCommand(flags: EvalFlags): Promise<void> {
  const model = await loadModel(flags.model, { device: flags.device, precision: flags.precision });
  const r = await model.evaluate(flags.corpus, {
    batchSize: flags.batchSize,
    seqLen: flags.seqLen,
    onWarning: warnUnknownSymbols,
  });
  if (flags.json) {
    emit({ loss: r.loss, perplexity: r.perplexity, accuracy: r.accuracy, bitsPerChar: r.bitsPerChar ?? null });
  } else {
    const bpc = r.bitsPerChar !== undefined ? ` | ${fmt(r.bitsPerChar, 3)} bits/char` : '';
    console.log(
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
  console.log(`engine: ${build} on ${info.device} (candle ${info.candleVersion}, ${info.threads} CPU threads)`);
  console.log(`binary: ${info.binaryPath}`);
  console.log(`cpu matrix products: ${info.cpuGemm}`);
  if (info.fallbackReason) console.log(`cuda: not used: ${info.fallbackReason}`);
}

/** `lstmgen plot RUN.jsonl -o FILE.svg`: draw the run's curves. Prints the file written (or `{"path"}` with --json). */
export async function plotCommand(
  runFile: string,
  flags: { out: string; title?: string; json?: boolean },
): Promise<void> {
  const svg = await plotRun(runFile, { title: flags.title });
  fs.writeFileSync(flags.out, svg);
  if (flags.json) process.stdout.write(`${JSON.stringify({ path: flags.out })}\n`);
  else console.log(`wrote ${flags.out}`);
}

#!/usr/bin/env node
import { SingleBar } from 'cli-progress';
/**
 * The `lstmgen` command: `train`, `generate`, `eval`, `info`, `plot`. Flags mirror the config fields (kebab-case).
 * With `--json` stdout carries exactly one JSON object per line and nothing else; progress and warnings go
 * to stderr. Errors print `lstmgen: <message>` to stderr; exit code 1, or 2 for usage errors (bad flags or
 * option values).
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { assertWritable } from './atomic';
import {
  flagOf,
  parseLrSchedule,
  plotCommand,
  printStream,
  runFlagsToConfig,
  runSummaryLines,
  writtenFiles,
} from './cli-run';
import { ConfigError, LstmgenError } from './errors';
import type { EpochInfo } from './events';
import { loadModel } from './model';
import { engineInfo, type Precision } from './native';
import { warnUnknownSymbols } from './tokenizer';
import { train } from './train';

/** Parse a numeric flag value; NaN is passed on so that validation names the field. */
function number(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || (Number.isNaN(n) && value.trim() !== 'NaN'))
    throw new InvalidArgumentError('not a number.');
  return n;
}

/** `--stop` may be given several times. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Write one JSON line to stdout. */
function emit(record: object): void {
  process.stdout.write(JSON.stringify(record) + '\n');
}

const fmt = (x: number, digits = 4) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

function epochLine(e: EpochInfo, char: boolean): string {
  const bpc = char ? `, ${fmt(e.valLoss / Math.LN2, 3)} bits/char` : '';
  return `epoch ${e.epoch}: train loss ${fmt(e.trainLoss)}, val loss ${fmt(e.valLoss)} (perplexity ${fmt(e.valPerplexity, 2)}, accuracy ${fmt(100 * e.valAccuracy, 1)}%${bpc})`;
}

interface TrainFlags {
  out: string;
  json?: boolean;
  [field: string]: unknown;
}

async function trainCommand(flags: TrainFlags): Promise<void> {
  const { out, json, ...rest } = flags;
  const config = runFlagsToConfig(rest);
  assertWritable(out, 'out'); // fail now, not after training
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
          `training on ${s.trainTokens} tokens (validation ${s.valTokens}), vocabulary ${s.vocabSize}, device ${s.device}\n`,
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
        `${history.aborted ? 'stopped early; ' : ''}${history.steps.length} steps at ${Math.round(history.tokensPerSec)} tokens/s; model saved to ${out}`,
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
  device: 'auto' | 'cpu' | 'cuda';
  precision: Precision;
  json?: boolean;
  [field: string]: unknown;
}

async function generateCommand(flags: GenerateFlags): Promise<void> {
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
  device: 'auto' | 'cpu' | 'cuda';
  precision: Precision;
  json?: boolean;
  batchSize?: number;
  seqLen?: number;
}

async function evalCommand(flags: EvalFlags): Promise<void> {
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
      `loss ${fmt(r.loss)} nats/token | perplexity ${fmt(r.perplexity, 2)} | accuracy ${fmt(100 * r.accuracy, 1)}%${bpc} | ${r.tokens} tokens`,
    );
  }
}

/** `lstmgen info`: which native build and device `--device auto` uses, and why it fell back to the CPU. */
function infoCommand(flags: { json?: boolean }): void {
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

/** The commander program; exported for tests. */
export function buildProgram(): Command {
  const program = new Command('lstmgen')
    .description('Train and sample LSTM language models (Rust/candle engine)')
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write('lstmgen: ' + text.replace(/^error: /, '')) });
  const device = () => new Option('--device <device>', 'auto | cpu | cuda').default('auto');
  const precision = () =>
    new Option('--precision <p>', 'matrix products: f32, or bf16 (bf16 inputs, f32 sums; Intel AMX; CPU only)')
      .choices(['f32', 'bf16'])
      .default('f32');

  program
    .command('train')
    .description('train a model on a text corpus and save it')
    .requiredOption('--corpus <path>', 'text file, or a builtin corpus: moby-dick')
    .option('--val-corpus <path>', 'separate validation text (default: last --val-fraction of the corpus)')
    .option('--tokenizer <kind>', 'char | word (default char)')
    .option('--vocab-size <n>', 'word vocabulary size incl. <unk>, <eos> (default 10000)', number)
    .option('--embedding-dim <n>', 'embedding size (default 64)', number)
    .option('--hidden-size <n>', 'LSTM hidden size (default 256)', number)
    .option('--num-layers <n>', 'stacked LSTM layers (default 1)', number)
    .option('--dropout <p>', 'dropout probability (default 0)', number)
    .option('--seq-len <n>', 'truncated BPTT length (default 64)', number)
    .option('--batch-size <n>', 'streams per batch (default 32)', number)
    .option('--epochs <n>', 'passes over the corpus (default 1, or as many as --max-steps needs)', number)
    .option('--max-steps <n>', 'stop after this many steps', number)
    .option('--lr <x>', 'Adam learning rate (default 0.01)', number)
    .option('--weight-decay <x>', 'decoupled weight decay (default 0)', number)
    .option('--clip-norm <x>', 'clip global gradient norm, 0 = off (default 5)', number)
    .option('--val-fraction <f>', 'held-out fraction (default 0.1)', number)
    .option('--seed <n>', 'seed of weights and dropout (default 1234)', number)
    .option(
      '--eval-every <n>',
      'also validate every n steps (these validations drive schedules and early stopping)',
      number,
    )
    .option(
      '--lr-schedule <spec>',
      'constant | step:stepSize=N,gamma=G | cosine:warmupSteps=N,minLr=X | plateau:factor=F,patience=N (or JSON)',
      parseLrSchedule,
    )
    .option(
      '--early-stopping <patience>',
      'stop after this many validations without improvement; keep the best weights',
      number,
    )
    .option('--on-non-finite <policy>', 'stop | skip a step with a non-finite loss or gradient (default stop)')
    .option('--checkpoint-dir <dir>', 'write checkpoints here (step-<n>.lstm, best.lstm)')
    .option('--checkpoint-every <n>', 'steps between checkpoints (default 1000)', number)
    .option('--keep <k>', 'periodic checkpoints to keep (default 3)', number)
    .option('--resume <file>', 'continue from a checkpoint file (or the newest one in a directory)')
    .option('--log <file>', 'write metrics as JSON lines (plot with lstmgen plot)')
    .addOption(device())
    .addOption(precision())
    .option('--out <file>', 'model file to write', 'model.lstm')
    .option('--json', 'JSON lines on stdout')
    .action(trainCommand);

  program
    .command('generate')
    .description('sample text from a saved model')
    .requiredOption('--model <file>', 'model file')
    .option('--prompt <text>', 'text to continue (default: start of a line)')
    .option('--max-tokens <n>', 'tokens to generate (default 200)', number)
    .option('--temperature <t>', '0 = greedy (default 1)', number)
    .option('--top-k <k>', 'keep the k most likely tokens', number)
    .option('--top-p <p>', 'nucleus mass in (0, 1] (default 1)', number)
    .option('--num-samples <n>', 'samples to draw (default 1)', number)
    .option('--seed <n>', 'sampling seed (default: random)', number)
    .option('--stop <text>', 'stop at this string (repeatable)', collect)
    .option('--strict', 'fail on prompt symbols outside the vocabulary')
    .addOption(device())
    .addOption(precision())
    .option('--json', 'print {"samples":[...]}')
    .action(generateCommand);

  program
    .command('eval')
    .description('evaluate a saved model on a corpus')
    .requiredOption('--model <file>', 'model file')
    .requiredOption('--corpus <path>', 'text file or builtin corpus')
    .option('--batch-size <n>', 'streams per batch (default: the training one)', number)
    .option('--seq-len <n>', 'positions per batch (default: the training one)', number)
    .addOption(device())
    .addOption(precision())
    .option('--json', 'print {"loss","perplexity","accuracy","bitsPerChar"}')
    .action(evalCommand);

  program
    .command('plot')
    .description('draw the loss curves and learning rate of a metrics log (train --log) as SVG')
    .argument('<run.jsonl>', 'metrics log written by train --log')
    .requiredOption('-o, --out <file.svg>', 'SVG file to write')
    .option('--title <text>', 'chart title (default: the log file name)')
    .option('--json', 'print {"path"}')
    .action(plotCommand);

  program
    .command('info')
    .description('show the native build and device in use (and why CUDA is not used)')
    .option(
      '--json',
      'print {"binary","binaryPath","device","cudaCompiled","candleVersion","threads","cpuGemm","fallbackReason"}',
    )
    .action(infoCommand);
  return program;
}

/** Run the CLI on `argv` (process.argv form); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  // Replace Node's default warning printer (which adds a --trace-warnings hint) with one line on stderr.
  process.removeAllListeners('warning');
  process.on('warning', (w) => process.stderr.write(`lstmgen: warning: ${w.message}\n`));
  // Output piped into a reader that stops early (`| head`): end quietly, as Unix tools do.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2; // commander printed the message
    if (err instanceof ConfigError) {
      const flag = err.field ? `${flagOf(err.field)}: ` : '';
      process.stderr.write(`lstmgen: ${flag}${err.reason}\n`);
      return 2;
    }
    if (err instanceof LstmgenError) {
      process.stderr.write(`lstmgen: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`lstmgen: internal error: ${err instanceof Error ? err.stack : String(err)}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}

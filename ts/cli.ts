#!/usr/bin/env node
/**
 * The `lstmgen` command: `train`, `generate`, `eval`. Flags mirror the config fields (kebab-case).
 * With `--json` stdout carries exactly one JSON object per line and nothing else; progress and warnings go
 * to stderr. Errors print `lstmgen: <message>` to stderr; exit code 1, or 2 for usage errors (bad flags or
 * option values).
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { ConfigError, LstmgenError } from './errors';
import { loadModel } from './model';
import { train } from './train';
import type { EpochInfo } from './events';

/** Parse a numeric flag value; NaN is passed on so that validation names the field. */
function number(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || (Number.isNaN(n) && value.trim() !== 'NaN')) throw new InvalidArgumentError('not a number.');
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
const kebab = (field: string) => field.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

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
  const { out, json, ...config } = flags;
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
        process.stderr.write(`training on ${s.trainTokens} tokens (validation ${s.valTokens}), vocabulary ${s.vocabSize}, device ${s.device}\n`);
        bar?.start(s.totalSteps, 0, { epoch: 1, loss: '-', tps: '-' });
      },
      onStep: (s) => {
        if (json) emit({ type: 'step', step: s.step, epoch: s.epoch, loss: s.loss, tokensPerSec: s.tokensPerSec });
        else bar?.update(s.step, { epoch: s.epoch, loss: fmt(s.loss), tps: Math.round(s.tokensPerSec) });
      },
      onEpoch: (e) => {
        if (json) emit({ type: 'epoch', ...e });
      },
    });
    bar?.stop();
    await model.save(out);
    const last = history.epochs.at(-1);
    if (json) {
      emit({ type: 'done', modelPath: out, valLoss: last?.valLoss ?? null, valPerplexity: last?.valPerplexity ?? null, tokensPerSec: history.tokensPerSec });
    } else {
      for (const e of history.epochs) console.log(epochLine(e, model.tokenizer.kind === 'char'));
      console.log(
        `${history.aborted ? 'stopped early; ' : ''}${history.steps.length} steps at ${Math.round(history.tokensPerSec)} tokens/s; model saved to ${out}`,
      );
    }
  } finally {
    bar?.stop();
    process.removeListener('SIGINT', onSigint);
  }
}

interface GenerateFlags {
  model: string;
  device: 'auto' | 'cpu' | 'cuda';
  json?: boolean;
  [field: string]: unknown;
}

async function generateCommand(flags: GenerateFlags): Promise<void> {
  const { model: file, device, json, ...options } = flags;
  const model = await loadModel(file, { device });
  const samples = await model.generate(options);
  if (json) emit({ samples });
  else console.log(samples.map((s) => String(options.prompt ?? '') + s).join('\n\n-----\n\n'));
}

interface EvalFlags {
  model: string;
  corpus: string;
  device: 'auto' | 'cpu' | 'cuda';
  json?: boolean;
  batchSize?: number;
  seqLen?: number;
}

async function evalCommand(flags: EvalFlags): Promise<void> {
  const model = await loadModel(flags.model, { device: flags.device });
  const r = await model.evaluate(flags.corpus, { batchSize: flags.batchSize, seqLen: flags.seqLen });
  if (flags.json) {
    emit({ loss: r.loss, perplexity: r.perplexity, accuracy: r.accuracy, bitsPerChar: r.bitsPerChar ?? null });
  } else {
    const bpc = r.bitsPerChar !== undefined ? ` | ${fmt(r.bitsPerChar, 3)} bits/char` : '';
    console.log(`loss ${fmt(r.loss)} nats/token | perplexity ${fmt(r.perplexity, 2)} | accuracy ${fmt(100 * r.accuracy, 1)}%${bpc} | ${r.tokens} tokens`);
  }
}

/** The commander program; exported for tests. */
export function buildProgram(): Command {
  const program = new Command('lstmgen')
    .description('Train and sample LSTM language models (Rust/candle engine)')
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write('lstmgen: ' + text.replace(/^error: /, '')) });
  const device = () => new Option('--device <device>', 'auto | cpu | cuda').default('auto');

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
    .addOption(device())
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
    .option('--json', 'print {"loss","perplexity","accuracy","bitsPerChar"}')
    .action(evalCommand);
  return program;
}

/** Run the CLI on `argv` (process.argv form); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  // Replace Node's default warning printer (which adds a --trace-warnings hint) with one line on stderr.
  process.removeAllListeners('warning');
  process.on('warning', (w) => process.stderr.write(`lstmgen: warning: ${w.message}\n`));
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2; // commander printed the message
    if (err instanceof ConfigError) {
      const flag = err.field ? `--${kebab(err.field)}: ` : '';
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

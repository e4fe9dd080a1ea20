/**
 * CLI pieces for long training runs and streaming output, kept out of cli.ts: flag -> config conversion
 * for checkpoints, schedules, guards and logs; the end-of-training file summary; `lstmgen plot`; streamed
 * `generate` output.
 */
import * as fs from 'node:fs';
import { InvalidArgumentError } from 'commander';
import type { TrainConfigInput } from './config';
import type { TrainHistory } from './events';
import type { LstmModel } from './model';
import { plotRun } from './plot';

/** Flags whose name is not the kebab-case of their config field (config field -> flag name without `--`). */
export const FLAG_NAMES: Readonly<Record<string, string>> = {
  keepCheckpoints: 'keep',
  resumeFrom: 'resume',
  logFile: 'log',
  earlyStopping: 'early-stopping',
};

/**
 * The flag of a config field for messages: `keepCheckpoints` -> `--keep`, `lrSchedule.minLr` -> `--lr-schedule (minLr)`.
 * Array indices are dropped (`stop.0` -> `--stop`): a repeatable flag is named as written.
 */
export function flagOf(field: string): string {
  const [top, ...parts] = field.split('.');
  const rest = parts.filter((p) => !/^\d+$/.test(p)).join('.');
  const flag = `--${FLAG_NAMES[top] ?? top.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`;
  return rest ? `${flag} (${rest})` : flag;
}

/**
 * Parse `--lr-schedule`: a type name (`constant`, `step`, `cosine`, `plateau`), optionally with options as
 * `type:key=value,key=value` (e.g. `cosine:warmupSteps=100,minLr=0.0001`), or a JSON object. Values are
 * validated by the train config (errors name `--lr-schedule`).
 */
export function parseLrSchedule(value: string): TrainConfigInput['lrSchedule'] {
  const text = value.trim();
  if (text.startsWith('{')) {
    try {
      return JSON.parse(text) as TrainConfigInput['lrSchedule'];
    } catch {
      throw new InvalidArgumentError('not valid JSON.');
    }
  }
  const [type, rest = ''] = text.split(':', 2);
  const options: Record<string, unknown> = { type };
  for (const pair of rest.split(',').filter(Boolean)) {
    const [k, v] = pair.split('=', 2);
    if (!k || v === undefined) throw new InvalidArgumentError(`expected key=value, got "${pair}".`);
    options[k.trim()] = Number.isNaN(Number(v)) ? v.trim() : Number(v);
  }
  return options as TrainConfigInput['lrSchedule'];
}

/**
 * The train config fields of the run flags: `--keep`, `--resume`, `--log`, `--early-stopping <patience>` become
 * `keepCheckpoints`, `resumeFrom`, `logFile`, `earlyStopping: { patience }`; other flags pass through.
 */
export function runFlagsToConfig(flags: Record<string, unknown>): Record<string, unknown> {
  const { keep, resume, log, earlyStopping, ...rest } = flags;
  return {
    ...rest,
    ...(keep !== undefined ? { keepCheckpoints: keep } : {}),
    ...(resume !== undefined ? { resumeFrom: resume } : {}),
    ...(log !== undefined ? { logFile: log } : {}),
    ...(earlyStopping !== undefined ? { earlyStopping: { patience: earlyStopping } } : {}),
  };
}

/** Files a training run wrote besides the model: the metrics log, the newest kept checkpoint and `best.lstm`. */
export function writtenFiles(
  history: TrainHistory,
  logFile: string | undefined,
): { log?: string; checkpoint?: string; best?: string } {
  const periodic = history.checkpoints.filter((c) => c.kind !== 'best').at(-1);
  const best = history.checkpoints.filter((c) => c.kind === 'best').at(-1);
  return {
    ...(logFile ? { log: logFile } : {}),
    ...(periodic ? { checkpoint: periodic.path } : {}),
    ...(best ? { best: best.path } : {}),
  };
}

/** Human-readable lines about early stopping, skipped steps and the files written (after "model saved to ..."). */
export function runSummaryLines(history: TrainHistory, logFile: string | undefined): string[] {
  const lines: string[] = [];
  const files = writtenFiles(history, logFile);
  if (history.stoppedEarly && history.best) {
    lines.push(
      `stopped early: validation loss has not improved since step ${history.best.step} (${history.best.valLoss.toFixed(4)})`,
    );
  }
  if (history.skippedSteps.length > 0)
    lines.push(
      `skipped ${history.skippedSteps.length} steps with a non-finite loss, gradient or update (first: step ${history.skippedSteps[0]})`,
    );
  if (files.log) lines.push(`metrics log written to ${files.log} (plot it: lstmgen plot ${files.log} -o curves.svg)`);
  if (files.checkpoint)
    lines.push(`checkpoint written to ${files.checkpoint} (continue: lstmgen train --resume ${files.checkpoint} ...)`);
  if (files.best)
    lines.push(`best checkpoint written to ${files.best} (validation loss ${history.best?.valLoss.toFixed(4) ?? '?'})`);
  return lines;
}

/** `lstmgen plot RUN.jsonl -o FILE.svg`: draw the run's curves. Prints the file written (or `{"path"}` with --json). */
export async function plotCommand(
  runFile: string,
  flags: { out: string; title?: string; json?: boolean },
): Promise<void> {
  const svg = await plotRun(runFile, { title: flags.title });
  fs.writeFileSync(flags.out, svg);
  if (flags.json) process.stdout.write(JSON.stringify({ path: flags.out }) + '\n');
  else console.log(`wrote ${flags.out}`);
}

/** Print `prompt` then one sample's text to stdout as it is sampled, then a line break. */
export async function printStream(model: LstmModel, options: Record<string, unknown>): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { numSamples, ...streamOptions } = options; // one sample
  // The options (at the call) and the prompt (at the first piece) are checked before anything is printed.
  const pieces = model.stream(streamOptions);
  const first = await pieces.next();
  process.stdout.write(String(options.prompt ?? ''));
  if (!first.done) process.stdout.write(first.value);
  for await (const piece of pieces) process.stdout.write(piece);
  process.stdout.write('\n');
}

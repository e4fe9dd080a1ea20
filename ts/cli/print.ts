/**
 * What the CLI prints: JSON lines, metric lines, the end-of-training summary and streamed samples. Everything
 * for stdout goes through {@link write}, which stops writing once stdout's reader has gone.
 */
import type { EpochInfo, TrainHistory } from '../events';
import type { LstmModel } from '../model';

/** True once stdout's reader has gone (EPIPE): later output is dropped. */
let stdoutGone = false;
/** What a closed stdout does to the process: end it quietly, or (during training) let it go on. */
let onStdoutGone: 'exit' | 'continue' = 'exit';

/**
 * Watch stdout for its reader going away (`lstmgen generate | head`): by default the process ends quietly with
 * status 0, as Unix tools do; after {@link keepRunningWithoutStdout} further output is dropped and the command
 * goes on. Errors other than EPIPE are rethrown.
 */
export function watchStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && !stdoutGone) throw err;
    if (stdoutGone) return; // writes queued before the first EPIPE fail the same way
    stdoutGone = true;
    if (onStdoutGone === 'exit') process.exit(0);
    process.stderr.write('lstmgen: stdout was closed; carrying on without printing to it\n');
  });
}

/** From now on a closed stdout drops the output instead of ending the process (a run's work is not lost). */
export function keepRunningWithoutStdout(): void {
  onStdoutGone = 'continue';
}

/** Write `text` to stdout, unless its reader has gone. */
export function write(text: string): void {
  if (!stdoutGone) process.stdout.write(text);
}

/** Write one line to stdout. */
export function say(line: string): void {
  write(`${line}\n`);
}

/** Write one JSON line to stdout. */
export function emit(record: object): void {
  say(JSON.stringify(record));
}

/** A metric with `digits` decimals; NaN and infinities as written. */
export const fmt = (x: number, digits = 4) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

/** One line per epoch: losses (nats/token), perplexity, accuracy and bits per character. */
export function epochLine(e: EpochInfo): string {
  const head = `epoch ${e.epoch}: train loss ${fmt(e.trainLoss)}`;
  if (e.valLoss === null || e.valPerplexity === null || e.valAccuracy === null) return `${head} (no validation)`;
  const bpc = e.valBitsPerChar !== null ? `, ${fmt(e.valBitsPerChar, 3)} bits/char` : '';
  const ppl = `perplexity ${fmt(e.valPerplexity, 2)}`;
  const val = `val loss ${fmt(e.valLoss)} (${ppl}, accuracy ${fmt(100 * e.valAccuracy, 1)}%`;
  return `${head}, ${val}${bpc})`;
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
      `stopped early: validation loss has not improved since step ${history.best.step} ` +
        `(${history.best.valLoss.toFixed(4)})`,
    );
  }
  if (history.skippedSteps.length > 0)
    lines.push(
      `skipped ${history.skippedSteps.length} steps with a non-finite loss, gradient or update ` +
        `(first: step ${history.skippedSteps[0]})`,
    );
  if (files.log) lines.push(`metrics log written to ${files.log} (plot it: lstmgen plot ${files.log} -o curves.svg)`);
  if (files.checkpoint)
    lines.push(`checkpoint written to ${files.checkpoint} (continue: lstmgen train --resume ${files.checkpoint} ...)`);
  if (files.best)
    lines.push(`best checkpoint written to ${files.best} (validation loss ${history.best?.valLoss.toFixed(4) ?? '?'})`);
  return lines;
}

/** Print `prompt` then one sample's text to stdout as it is sampled, then a line break. */
export async function printStream(model: LstmModel, options: Record<string, unknown>): Promise<void> {
  const { numSamples, ...streamOptions } = options; // one sample
  // The options (at the call) and the prompt (at the first piece) are checked before anything is printed.
  const pieces = model.stream(streamOptions);
  const first = await pieces.next();
  write(String(options.prompt ?? ''));
  if (!first.done) write(first.value);
  for await (const piece of pieces) write(piece);
  write('\n');
}

/** What the CLI prints: JSON lines, metric lines, the end-of-training summary and streamed samples. */
import type { EpochInfo, TrainHistory } from '../events';
import type { LstmModel } from '../model';

/** Write one JSON line to stdout. */
export function emit(record: object): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

/** A metric with `digits` decimals; NaN and infinities as written. */
export const fmt = (x: number, digits = 4) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

/** One line per epoch: losses (nats/token), perplexity, accuracy and, for char models, bits per char. */
export function epochLine(e: EpochInfo, char: boolean): string {
  const bpc = char ? `, ${fmt(e.valLoss / Math.LN2, 3)} bits/char` : '';
  const ppl = `perplexity ${fmt(e.valPerplexity, 2)}`;
  const val = `val loss ${fmt(e.valLoss)} (${ppl}, accuracy ${fmt(100 * e.valAccuracy, 1)}%`;
  return `epoch ${e.epoch}: train loss ${fmt(e.trainLoss)}, ${val}${bpc})`;
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
  process.stdout.write(String(options.prompt ?? ''));
  if (!first.done) process.stdout.write(first.value);
  for await (const piece of pieces) process.stdout.write(piece);
  process.stdout.write('\n');
}

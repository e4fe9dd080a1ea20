/**
 * The metrics log of a training run: one JSON object per line (JSONL), written as the run goes, read back
 * by `plotRun()`. Losses are nats/token, `lr` the rate used by the step, `tokensPerSec` that step's throughput.
 */
import * as fs from 'node:fs';
import { ConfigError, DataError, ModelFileError } from '../errors';
import type { AveragingInfo, CheckpointInfo, EpochInfo, EvalInfo, SampleInfo, StepInfo } from '../events';
import { writeFailure } from '../io/atomic';
import { readRegularFile } from '../io/files';

/** One line of a run log. `start` and `end` bracket each (possibly resumed) run. */
export type RunRecord =
  | {
      type: 'start';
      time: string;
      startStep: number;
      totalSteps: number;
      stepsPerEpoch: number;
      vocabSize: number;
      device: string;
    }
  | ({ type: 'step' } & StepInfo)
  | { type: 'skip'; step: number; epoch: number; lr: number; reason: string }
  | ({ type: 'eval' } & EvalInfo)
  | ({ type: 'epoch'; step: number } & EpochInfo)
  | ({ type: 'checkpoint' } & CheckpointInfo)
  | ({ type: 'sample' } & SampleInfo)
  /** NT-ASGD started averaging after `step`, at the monitored validation loss `valLoss`. */
  | ({ type: 'averaging' } & AveragingInfo)
  | {
      type: 'end';
      time: string;
      step: number;
      aborted: boolean;
      stoppedEarly: boolean;
      bestValLoss: number | null;
      bestStep: number | null;
    };

/**
 * An open run log. Each record is written synchronously as one line, so a crash loses at most the line being written.
 */
export class RunLog {
  private constructor(
    private fd: number | null,
    readonly file: string,
  ) {}

  /**
   * Open `file` for writing: truncated, or appended to with `append` (a resumed run continues its log).
   * @throws ConfigError (field `logFile`) if the file cannot be opened.
   */
  static open(file: string, append: boolean): RunLog {
    try {
      return new RunLog(fs.openSync(file, append ? 'a' : 'w'), file);
    } catch (err) {
      throw new ConfigError('logFile', `cannot write ${JSON.stringify(file)}: ${writeFailure(err, file)}`);
    }
  }

  /** Append `record` as one JSON line (non-finite numbers become null). @throws ModelFileError if the write fails. */
  write(record: RunRecord): void {
    if (this.fd === null) return;
    try {
      fs.writeSync(this.fd, `${JSON.stringify(record)}\n`);
    } catch (err) {
      throw new ModelFileError(`cannot write log file ${JSON.stringify(this.file)}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** Close the file; later writes are ignored. */
  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

/**
 * Read a run log. Blank lines are ignored; a torn last line (a crash mid-write) is dropped.
 * @throws DataError if the file cannot be read or is not a regular file (a FIFO or a device is never read), or a
 *   line other than the last is not a JSON record with a `type`.
 */
export function readRunLog(file: string): RunRecord[] {
  const text = readRegularFile(
    file,
    (reason, cause) =>
      new DataError(`cannot read run log ${JSON.stringify(file)}: ${reason}`, { cause, unreadablePath: file }),
  ).toString('utf8');
  const lines = text.split('\n');
  const records: RunRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (err) {
      if (i === lines.length - 1) return; // torn last line
      throw new DataError(`${file}:${i + 1}: not a JSON line`, { cause: err });
    }
    if (typeof rec !== 'object' || rec === null || typeof (rec as { type?: unknown }).type !== 'string') {
      throw new DataError(`${file}:${i + 1}: not a run-log record (no "type")`);
    }
    const r = rec as { type: string; step?: unknown; loss?: unknown };
    if (r.type === 'step' && !(Number.isInteger(r.step) && Number.isFinite(r.loss))) {
      throw new DataError(
        `${file}:${i + 1}: a step record needs an integer "step" and a finite "loss", ` +
          `got ${JSON.stringify(r.step)} and ${JSON.stringify(r.loss)}`,
      );
    }
    records.push(rec as RunRecord);
  });
  return records;
}

/** The progress bar of `lstmgen train` and the samples printed above it. */
import { MultiBar, type SingleBar } from 'cli-progress';
import type { SampleInfo } from '../events';

/** What the bar shows besides the step count. */
export interface TrainPayload {
  epoch: number;
  loss: string;
  tps: string | number;
}

/**
 * A progress bar of training steps (epoch, loss, tokens/s, ETA) on `stream` (stderr). Lines logged go above the
 * bar (cli-progress's MultiBar log: the bar line is cleared, the text written, the bar drawn again below it), so
 * the bar stays whole. Without a terminal the bar is not drawn (as cli-progress does) and logged text is written
 * as it comes.
 */
export class TrainProgress {
  private readonly multi: MultiBar;
  private bar?: SingleBar;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.multi = new MultiBar({
      stream,
      format: 'train |{bar}| {value}/{total} steps | epoch {epoch} | loss {loss} | {tps} tok/s | ETA {eta_formatted}',
      etaBuffer: 50,
      hideCursor: true,
    });
  }

  /** Show the bar at step `value` of `total`. */
  start(total: number, value: number, payload: TrainPayload): void {
    this.bar = this.multi.create(total, value, payload);
  }

  /** Move the bar to step `value`. */
  update(value: number, payload: TrainPayload): void {
    this.bar?.update(value, payload);
  }

  /** Write `text` (one or more whole lines, each ending with a line break) above the bar. */
  log(text: string): void {
    if (this.multi.isActive) {
      this.multi.log(text);
      this.multi.update(); // now, not at the next redraw
    } else this.stream.write(text);
  }

  /** Draw the bar a last time and leave it (nothing without a terminal). Idempotent. */
  stop(): void {
    if (this.multi.isActive) this.multi.stop();
  }
}

/** A sample while training as the CLI prints it: a header line with the step, then the prompt and the text. */
export function sampleLines(s: SampleInfo): string {
  return `--- sample at step ${s.step} (epoch ${s.epoch}, temperature ${s.temperature}) ---\n${s.prompt}${s.text}\n`;
}

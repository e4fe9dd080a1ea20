/**
 * CLI pieces for the data flags of `train` and `eval`: repeatable `--corpus` / `--val-corpus` (files,
 * directories, globs, builtins) and `--ext`, and the progress bar of reading and tokenizing.
 */
import { SingleBar } from 'cli-progress';
import type { DataProgress } from '../corpus/dataset';
import type { CorpusSource } from '../corpus/sources';

/** The corpus of repeated `--corpus` values: the path itself when given once, else the list. */
const corpusOf = (values: string[]): CorpusSource => (values.length === 1 ? values[0] : values);

/**
 * The config fields of the data flags: `--corpus`/`--val-corpus` lists become `corpus`/`valCorpus`, `--ext`
 * (repeatable, or comma-separated) becomes `extensions`; other flags pass through.
 */
export function dataFlagsToConfig(flags: Record<string, unknown>): Record<string, unknown> {
  const { corpus, valCorpus, ext, ...rest } = flags;
  return {
    ...rest,
    ...(corpus !== undefined ? { corpus: corpusOf(corpus as string[]) } : {}),
    ...(valCorpus !== undefined ? { valCorpus: corpusOf(valCorpus as string[]) } : {}),
    ...(ext !== undefined ? { extensions: (ext as string[]).flatMap((e) => e.split(',')).filter(Boolean) } : {}),
  };
}

const PHASES: Record<DataProgress['phase'], string> = {
  scan: 'reading',
  merges: 'BPE merges',
  encode: 'tokenizing',
  cache: 'cache',
};
const mb = (bytes: number) => (bytes / 1e6).toFixed(1);

/**
 * A progress bar (on stderr) of reading and tokenizing a corpus: phase, MB done of the total, MB/s, ETA. The
 * `merges` phase (training a BPE's merges in one native call) has no measure of progress: it shows the
 * seconds elapsed, updated every second.
 */
export class DataProgressBar {
  private bar?: SingleBar;
  private phase?: DataProgress['phase'];
  private started = 0;
  private ticker?: NodeJS.Timeout;

  /** Show `p`: a new phase starts a new bar. */
  update(p: DataProgress): void {
    if (p.phase !== this.phase) {
      this.stop();
      this.phase = p.phase;
      this.started = performance.now();
      if (p.phase === 'merges') {
        this.startMerges();
        return;
      }
      this.bar = new SingleBar({
        stream: process.stderr,
        format: `${PHASES[p.phase].padEnd(10)} |{bar}| {done}/{size} MB | {rate} MB/s | ETA {eta_formatted}`,
        etaBuffer: 20,
        hideCursor: true,
      });
      this.bar.start(p.totalBytes, 0, { done: '0.0', size: mb(p.totalBytes), rate: '-' });
    }
    if (p.phase === 'merges') {
      return;
    }
    const seconds = (performance.now() - this.started) / 1000;
    this.bar?.update(p.bytes, {
      done: mb(p.bytes),
      size: mb(p.totalBytes),
      rate: seconds > 0 ? mb(p.bytes / seconds) : '-',
    });
  }

  /** The `merges` line: seconds elapsed, ticking until the next phase. */
  private startMerges(): void {
    const bar = new SingleBar({
      stream: process.stderr,
      format: `${PHASES.merges.padEnd(10)} | training the merges on the pre-tokens counted | {seconds} s`,
      hideCursor: true,
    });
    const seconds = () => ({ seconds: ((performance.now() - this.started) / 1000).toFixed(0) });
    bar.start(1, 0, seconds());
    this.bar = bar;
    this.ticker = setInterval(() => bar.update(0, seconds()), 1000);
    this.ticker.unref();
  }

  /** Close the current bar. */
  stop(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    this.bar?.stop();
    this.bar = undefined;
  }
}

/**
 * Dynamic batching: every request's sequences are rows of one engine batch (`NativeSessions`), and each tick
 * steps all rows that are generating in one native call, so one forward pass serves every request in flight.
 */
import type { SampleOptions, SessionsHandle } from '../native/handle';
import { RequestError } from './completions';

/** Tokens each row gets per tick: a native call per 4 tokens, text streamed in pieces of up to 4 tokens. */
export const TICK_TOKENS = 4;

/** One request's work: `n` sequences continuing one prompt. */
export interface Job {
  /** Prompt ids, at least one. */
  prompt: Uint32Array;
  /** Options of every sequence; sequence i draws from stream i of `native.seed` (as `generate()`'s sample i). */
  native: SampleOptions;
  /** Sequences. */
  n: number;
  /**
   * Receives sequence `seq`'s new ids; `ended` says the engine ended it (`maxTokens` or a stop sequence).
   * Returns whether the sequence is finished (a stop string in its text, or `ended`).
   */
  onTokens(seq: number, ids: number[], ended: boolean): boolean;
  /** Aborted: the job's sequences stop at the next tick (client gone, time limit). */
  signal: AbortSignal;
  /** While true, the job's rows are not stepped (its client reads slowly); call {@link Scheduler.wake} after. */
  paused?: () => boolean;
}

interface Waiting {
  job: Job;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface Running {
  waiting: Waiting;
  seq: number;
  produced: number;
}

/**
 * Runs jobs on a batch of rows: at most `maxConcurrent` sequences at once (a job waits until all its `n` fit), at
 * most `maxQueued` jobs waiting. A row's tokens depend only on its job's prompt, options and seed (see
 * `lstmgen_core::sessions`), never on the other rows stepped with it.
 */
export class Scheduler {
  private readonly queue: Waiting[] = [];
  private readonly running = new Map<number, Running>();
  /** Rows taken by a job being started (its prompt being fed). */
  private starting = 0;
  private looping = false;
  private wakeUp: (() => void) | undefined;
  /** Native steps taken and the rows they stepped (for `/health`). */
  readonly stats = { steps: 0, rowSteps: 0 };

  constructor(
    private readonly batch: SessionsHandle,
    private readonly limits: { maxConcurrent: number; maxQueued: number },
  ) {}

  /** Sequences generating now. */
  get active(): number {
    return this.running.size + this.starting;
  }

  /** Rows held by the engine's batch (0 once every request has ended: nothing is left behind). */
  get rows(): number {
    return this.batch.size();
  }

  /** Jobs waiting for room. */
  get queued(): number {
    return this.queue.length;
  }

  /**
   * Run `job` to its end: resolves when every sequence has finished or the job was aborted.
   * @throws RequestError 429 (rejects) when `maxQueued` jobs already wait; the engine's errors (a DataError for
   *   options it refuses) as they are.
   */
  run(job: Job): Promise<void> {
    if (this.queue.length >= this.limits.maxQueued && this.active + job.n > this.limits.maxConcurrent)
      return Promise.reject(
        new RequestError(429, `the server is busy: ${this.queue.length} requests are waiting; retry later`),
      );
    return new Promise<void>((resolve, reject) => {
      const waiting = { job, resolve, reject };
      this.queue.push(waiting);
      job.signal.addEventListener('abort', () => this.wake(), { once: true });
      this.wake();
      if (!this.looping) void this.loop();
    });
  }

  /** Let the loop look again (a paused job may go on, a job was aborted). */
  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  private idle(): Promise<void> {
    return new Promise((resolve) => {
      this.wakeUp = resolve;
    });
  }

  private async loop(): Promise<void> {
    this.looping = true;
    try {
      while (this.queue.length > 0 || this.running.size > 0) {
        await this.admit();
        await this.dropAborted();
        const ids = [...this.running].filter(([, r]) => !r.waiting.job.paused?.()).map(([id]) => id);
        if (ids.length === 0) {
          if (this.running.size > 0 || this.queue.length > 0) await this.idle();
          continue;
        }
        await this.tick(ids);
      }
    } finally {
      this.looping = false;
    }
  }

  /**
   * Starts queued jobs, in order, while their sequences fit: their prompts are fed in one native call (prompts of
   * equal length in one batched forward pass), then each job's first row is forked for its other sequences.
   */
  private async admit(): Promise<void> {
    const batch: Waiting[] = [];
    let room = this.limits.maxConcurrent - this.active;
    while (this.queue.length > 0 && this.queue[0].job.n <= room) {
      const w = this.queue.shift() as Waiting;
      if (w.job.signal.aborted) {
        w.resolve();
        continue;
      }
      batch.push(w);
      room -= w.job.n;
    }
    if (batch.length === 0) return;
    const taken = batch.reduce((sum, w) => sum + w.job.n, 0);
    this.starting += taken;
    try {
      let added: Array<number | Error>;
      try {
        added = await this.batch.addMany(
          batch.map((w) => w.job.prompt),
          batch.map((w) => w.job.native),
          batch.map(() => 0),
        );
      } catch (err) {
        for (const w of batch) w.reject(err);
        return;
      }
      for (const [k, w] of batch.entries()) {
        const first = added[k];
        if (typeof first !== 'number') {
          w.reject(first);
          continue;
        }
        const rows = [first];
        try {
          for (let i = 1; i < w.job.n; i++) rows.push(await this.batch.fork(first, i));
        } catch (err) {
          for (const r of rows) await this.batch.remove(r).catch(() => {});
          w.reject(err);
          continue;
        }
        rows.forEach((row, seq) => {
          this.running.set(row, { waiting: w, seq, produced: 0 });
        });
      }
    } finally {
      this.starting -= taken;
    }
  }

  /** Ends the rows of aborted jobs. */
  private async dropAborted(): Promise<void> {
    for (const [id, r] of [...this.running]) if (r.waiting.job.signal.aborted) await this.finish(id);
  }

  /**
   * One native step of rows `ids`; hands each its tokens. A row's own error (its logits not finite) fails its job
   * only, ending the job's other rows; an error of the whole step fails every job in it.
   */
  private async tick(ids: number[]): Promise<void> {
    let fresh: Array<number[] | Error>;
    try {
      fresh = await this.batch.stepEach(Uint32Array.from(ids), TICK_TOKENS);
    } catch (err) {
      for (const id of ids) {
        const r = this.running.get(id);
        if (r) r.waiting.reject(err);
        await this.finish(id);
      }
      return;
    }
    this.stats.steps++;
    this.stats.rowSteps += ids.length;
    for (let i = 0; i < ids.length; i++) {
      const r = this.running.get(ids[i]);
      if (!r) continue;
      const got = fresh[i] ?? [];
      if (!Array.isArray(got)) {
        r.waiting.reject(got);
        for (const [id, o] of [...this.running]) if (o.waiting === r.waiting) await this.finish(id);
        continue;
      }
      r.produced += got.length;
      const ended = got.length === 0 || r.produced >= r.waiting.job.native.maxTokens;
      let finished: boolean;
      try {
        finished = r.waiting.job.onTokens(r.seq, got, ended);
      } catch (err) {
        r.waiting.reject(err);
        finished = true;
      }
      if (finished || ended) await this.finish(ids[i]);
    }
  }

  /** Removes a row; resolves its job when it was the job's last. */
  private async finish(id: number): Promise<void> {
    const r = this.running.get(id);
    if (!r) return;
    this.running.delete(id);
    await this.batch.remove(id).catch(() => {});
    if (![...this.running.values()].some((o) => o.waiting === r.waiting)) r.waiting.resolve();
  }
}

/** Sessions: a model state that lives in the engine, fed text piece by piece, asked for next-token odds, sampled. */
import { randomInt } from 'node:crypto';
import {
  parseOptions,
  type SessionNextOptionsInput,
  SessionNextOptionsSchema,
  type SessionOptions,
  type SessionSampleOptionsInput,
  SessionSampleOptionsSchema,
} from '../config';
import { ConfigError } from '../errors';
import type { NativeHandle, SessionsHandle } from '../native/handle';
import type { Tokenizer } from '../tokenizer';
import { TextAssembler } from './assemble';
import { sampleOptions, startId } from './plan';

/** Tokens sampled per native call by {@link Session.sample}. */
const SAMPLE_CHUNK = 32;

/** One of the most likely next tokens ({@link Session.next}). */
export interface NextToken {
  /** The token's text as it would continue the session's text (word models put a space before words). */
  text: string;
  /** Token id. */
  id: number;
  /** Probability under the model's full softmax (temperature 1, nothing banned), in [0, 1]. */
  probability: number;
}

/**
 * A model state held by the engine (made by `model.session()`): `feed()` text, ask `next()` for the likely next
 * tokens, `sample()` a continuation (which becomes part of the state), `fork()` a copy, `reset()`, `dispose()`.
 *
 * Feeding in pieces equals feeding at once, for pieces cut where the tokenizer cuts (anywhere for char models, at
 * spaces or punctuation for word models). Before anything is fed, the session stands at the start of a line (as
 * `generate()` with an empty prompt). Sampling draws from the session's own random stream, seeded once: after
 * `feed(p)`, the first `sample(o)` of a session with seed s is `generate({ ...o, prompt: p, seed: s })[0]` on the
 * CPU. Calls take turns on the model (see `NativeHandle.exclusive`); calls on one session run in call order.
 */
export class Session {
  /** The row's id in the batch, once added. */
  private row: Promise<number>;
  /** The last id fed or sampled (for word spacing), or undefined before anything. */
  private last: number | undefined;
  private disposed = false;

  /** Use `model.session()`. */
  constructor(
    private readonly native: NativeHandle,
    private readonly rows: SessionsHandle,
    private readonly tokenizer: Tokenizer,
    private readonly options: SessionOptions & { seed: number },
    row?: { row: Promise<number>; last: number | undefined },
  ) {
    this.row = row?.row ?? this.newRow();
    this.last = row?.last;
    this.row.catch(() => {}); // surfaced by the next call
  }

  /** Opens a session on `native` (see `LstmModel.session`). */
  static open(native: NativeHandle, tokenizer: Tokenizer, options: SessionOptions): Session {
    return new Session(native, native.sessions(), tokenizer, {
      ...options,
      seed: options.seed ?? randomInt(0, 2 ** 32),
    });
  }

  /** The seed of the session's random stream. */
  get seed(): number {
    return this.options.seed;
  }

  private newRow(): Promise<number> {
    const { native } = sampleOptions(this.tokenizer, {
      ...parseOptions(SessionSampleOptionsSchema, {}, 'the sample options'),
      seed: this.options.seed,
    });
    return this.rows.add(new Uint32Array(0), native, 0);
  }

  /** The row, after checking the session is usable. @throws ConfigError once disposed. */
  private async live(): Promise<number> {
    if (this.disposed) throw new ConfigError('', 'the session was disposed (dispose() was called)');
    return this.row;
  }

  /** Feeds the line break when nothing was fed yet, so the session has a next-token distribution. */
  private async started(): Promise<number> {
    const row = await this.live();
    if (this.last === undefined) {
      const id = startId(this.tokenizer);
      await this.rows.feed(row, Uint32Array.of(id));
      this.last = id;
    }
    return row;
  }

  /**
   * Append `text` to the session's state.
   * @throws DataError for symbols outside the vocabulary when the session is `strict` (else they become `<unk>`);
   *   ConfigError once disposed.
   */
  async feed(text: string): Promise<void> {
    const row = await this.live();
    const ids = this.tokenizer.encode(text, { strict: this.options.strict, onWarning: () => {} });
    if (ids.length === 0) return;
    await this.rows.feed(row, ids);
    this.last = ids[ids.length - 1];
  }

  /**
   * The `topN` most likely next tokens (default 10), most likely first, with their probabilities under the full
   * softmax (the probabilities of all `vocabSize` tokens sum to 1).
   * @throws ConfigError for a bad `topN` or once disposed.
   */
  async next(options: SessionNextOptionsInput = {}): Promise<NextToken[]> {
    const { topN } = parseOptions(SessionNextOptionsSchema, options, 'the next options');
    const row = await this.started();
    const { ids, probs } = await this.rows.top(row, topN);
    const context = this.last === undefined ? [] : [this.last];
    return ids.map((id, i) => ({
      id,
      probability: probs[i],
      text: context.length ? this.decodeAfter(context, id) : this.tokenizer.decode(Uint32Array.of(id)),
    }));
  }

  private decodeAfter(context: number[], id: number): string {
    const all = Uint32Array.of(...context, id);
    return this.tokenizer.decode(all).slice(this.tokenizer.decode(Uint32Array.from(context)).length);
  }

  /**
   * Sample a continuation with `options` (those of `generate()` but the prompt, `numSamples`, `seed` and
   * `strict`) and return its text, cut before the first stop string. Everything sampled, the stop string included,
   * becomes part of the session's state.
   * @throws ConfigError for invalid options or once disposed.
   */
  async sample(options: SessionSampleOptionsInput = {}): Promise<string> {
    const o = parseOptions(SessionSampleOptionsSchema, options, 'the sample options');
    const { native, stopTexts } = sampleOptions(this.tokenizer, { ...o, seed: this.options.seed });
    const row = await this.started();
    await this.rows.setOptions(row, native);
    const text = new TextAssembler(this.tokenizer, this.last === undefined ? [] : [this.last], stopTexts);
    let out = '';
    let produced = 0;
    const ids = Uint32Array.of(row);
    while (produced < o.maxTokens) {
      const [fresh = []] = await this.rows.step(ids, Math.min(SAMPLE_CHUNK, o.maxTokens - produced));
      produced += fresh.length;
      if (fresh.length > 0) this.last = fresh[fresh.length - 1];
      const ended = fresh.length === 0 || produced >= o.maxTokens;
      out += text.push(fresh, ended);
      if (ended || text.stopped) break;
    }
    return out;
  }

  /** A new session with a copy of this one's state and random stream (the two then go their own ways alike). */
  fork(): Session {
    const row = this.live().then((r) => this.rows.fork(r));
    return new Session(this.native, this.rows, this.tokenizer, this.options, { row, last: this.last });
  }

  /** Back to the start: nothing fed, the random stream restarted from the seed. @throws ConfigError once disposed. */
  async reset(): Promise<void> {
    const old = await this.live();
    this.row = this.newRow();
    this.last = undefined;
    await this.rows.remove(old);
    await this.row;
  }

  /** Let go of the session's state in the engine; later calls throw a ConfigError. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.row.then((r) => this.rows.remove(r)).catch(() => {});
  }
}

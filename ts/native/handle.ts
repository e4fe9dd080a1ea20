/**
 * The native model behind typed errors: {@link NativeHandle} and {@link SamplerHandle} forward each call to the
 * addon's `NativeModel` / `NativeSampler` (documented where they are defined, in the generated `index.d.ts`,
 * from the Rust doc comments) and turn what it throws into a typed {@link LstmgenError} (see {@link wrapNative}).
 * Shapes: token ids are `Uint32Array`s `[batchSize * seqLen]`, row-major `[batch, seqLen]`; losses are nats.
 */
import type {
  NativeEvalResult,
  NativeModel,
  NativeModelConfig,
  NativeOptimizerConfig,
  NativeRegularizers,
  NativeSampleChunk,
  NativeSampleOptions,
  NativeSampler,
  NativeSessions,
  NativeStepResult,
  NativeTopTokens,
} from '../../index';
import { ConfigError, type LstmgenError, wrapNative } from '../errors';
import { type Device, defaultLoader, type NativeBinding } from './loader';

export type {
  NativeEvalResult,
  NativeModelConfig,
  NativeOptimizerConfig,
  NativeRegularizers,
  NativeSampleChunk,
  NativeSampleOptions,
  NativeStepResult,
  NativeTopTokens,
};

/** The values of {@link Precision}. */
export const PRECISIONS = ['f32', 'bf16'] as const;

/**
 * Precision of the matrix products. `f32`: f32 inputs and accumulation (PyTorch's default). `bf16`: mixed
 * precision, inputs rounded to bfloat16 (8-bit mantissa) and products accumulated in f32, as PyTorch's CPU
 * autocast does; on CPUs with Intel AMX (Sapphire Rapids and later) it runs on the AMX tiles, elsewhere it is
 * emulated (same numbers, no speed-up). Weights, activations, cell state, softmax and Adam stay f32. CPU only.
 */
export type Precision = (typeof PRECISIONS)[number];

/** Run `fn`, converting synchronous throws and promise rejections from the addon into typed errors. */
function guard<T>(fn: () => T): T {
  let result: T;
  try {
    result = fn();
  } catch (err) {
    throw wrapNative(err);
  }
  if (result instanceof Promise) {
    return result.catch((err: unknown) => {
      throw wrapNative(err);
    }) as T;
  }
  return result;
}

/**
 * Options of one sampling run, as the engine takes them ({@link NativeSampleOptions}; `bannedIds` are token ids
 * it never samples).
 */
export type SampleOptions = NativeSampleOptions;

/** Sums of one evaluation pass ({@link NativeHandle.evaluate}): summed loss in nats over `count` positions. */
export type EvalSums = NativeEvalResult;

/**
 * One evaluation batch: token ids `[batchSize, seqLen]` row-major and their targets, same shape; the state of a
 * row resets where its input is `boundaryId` (null or absent: nowhere).
 */
export interface EvalBatch {
  inputs: Uint32Array;
  targets: Uint32Array;
  batchSize: number;
  seqLen: number;
  boundaryId?: number | null;
}

/**
 * A native model whose methods throw typed errors. Each method is the `NativeModel` method of the same name
 * (see its documentation); the constructors take a {@link Device} and pick the build through the loader.
 *
 * Safe to call concurrently: every asynchronous call takes a turn on this model ({@link exclusive}), so calls
 * run one at a time in call order and never interleave their native steps. The carried evaluation state is
 * used only inside one turn ({@link evaluate}); a streaming sampler keeps its own state and takes one turn per
 * `next()`, so a long stream does not hold the model between its chunks. The synchronous methods run at once
 * (the engine locks the model for each, so they never see half a step). After {@link dispose}, every method
 * throws a ConfigError.
 */
export class NativeHandle
  implements Omit<NativeModel, 'startSampling' | 'evalStep' | 'resetEvalState' | 'forFineTuning'>
{
  /** The addon's model; undefined once {@link dispose} was called. */
  private inner: NativeModel | undefined;
  /** Settles when the last turn taken so far has ended (never rejects). */
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    inner: NativeModel,
    private readonly binding: NativeBinding,
  ) {
    this.inner = inner;
  }

  /** `NativeModel.create` on the build that serves `device`. */
  static create(config: NativeModelConfig, seed: number, device: Device): NativeHandle {
    const { binary, device: dev } = defaultLoader.forDevice(device);
    return new NativeHandle(
      guard(() => binary.binding.NativeModel.create(config, seed, dev)),
      binary.binding,
    );
  }

  /** `NativeModel.fromSafetensors` on the build that serves `device`. */
  static fromSafetensors(bytes: Buffer, device: Device): NativeHandle {
    const { binary, device: dev } = defaultLoader.forDevice(device);
    return new NativeHandle(
      guard(() => binary.binding.NativeModel.fromSafetensors(bytes, dev)),
      binary.binding,
    );
  }

  /** `NativeModel.fromTorchStateDict` on the build that serves `device`. */
  static fromTorchStateDict(bytes: Buffer, device: Device): NativeHandle {
    const { binary, device: dev } = defaultLoader.forDevice(device);
    return new NativeHandle(
      guard(() => binary.binding.NativeModel.fromTorchStateDict(bytes, dev)),
      binary.binding,
    );
  }

  /** The addon's model. @throws ConfigError once {@link dispose} was called. */
  private live(): NativeModel {
    if (this.inner === undefined) throw disposedError();
    return this.inner;
  }

  /**
   * Run `fn` as this model's turn: it starts once every turn taken before it has ended (whether it resolved or
   * threw), and the next turn starts once it has ended, so turns run one at a time in the order they were taken.
   * @throws ConfigError (rejects) when the model is disposed before the turn starts.
   */
  exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    const turn = this.tail.then(() => {
      this.live();
      return fn();
    });
    this.tail = turn.catch(() => {});
    return turn;
  }

  /**
   * Let go of the native model at once: every later call, and every turn not yet started (queued calls, the
   * next batch of an evaluation in progress, the next chunk of a stream), throws or rejects with a ConfigError
   * (`the model was disposed`); a native call already running finishes. The memory is released when no
   * running call holds it any more and the garbage collector has collected the addon's object. Calling it
   * again does nothing.
   */
  dispose(): void {
    this.inner = undefined;
  }

  /** @throws ConfigError (`the model was disposed`) once {@link dispose} was called. */
  assertLive(): void {
    this.live();
  }

  toSafetensors(metadata: Record<string, string>, withTraining = false): Buffer {
    return guard(() => this.live().toSafetensors(metadata, withTraining));
  }

  metadata(): Record<string, string> {
    return guard(() => this.live().metadata());
  }

  config(): NativeModelConfig {
    return guard(() => this.live().config());
  }

  deviceName(): string {
    return guard(() => this.live().deviceName());
  }

  step(): number {
    return guard(() => this.live().step());
  }

  setPrecision(precision: Precision): void {
    guard(() => this.live().setPrecision(precision));
  }

  setRegularizers(reg: NativeRegularizers): void {
    guard(() => this.live().setRegularizers(reg));
  }

  setOptimizer(optimizer: 'adam' | 'sgd' | 'ntasgd', momentum: number, nonmono?: number): void {
    guard(() => this.live().setOptimizer(optimizer, momentum, nonmono));
  }

  /** NT-ASGD: records a monitored validation loss (nats/token); true when it starts the averaging. */
  observeValidation(loss: number): boolean {
    return guard(() => this.live().observeValidation(loss)) as boolean;
  }

  /** NT-ASGD: the step after which the weights became the average of the SGD iterates; null before. */
  averagingStart(): number | null {
    return (guard(() => this.live().averagingStart()) as number | null | undefined) ?? null;
  }

  precision(): Precision {
    return guard(() => this.live().precision()) as Precision;
  }

  trainStep(
    inputs: Uint32Array,
    targets: Uint32Array,
    batchSize: number,
    seqLen: number,
    opt: NativeOptimizerConfig,
    dropoutSeed: number,
    boundaryId?: number | null,
  ): Promise<NativeStepResult> {
    return this.exclusive(() =>
      guard(() => this.live().trainStep(inputs, targets, batchSize, seqLen, opt, dropoutSeed, boundaryId)),
    );
  }

  /**
   * One evaluation pass in one turn: zero the carried evaluation state, then `evalStep` over `batches` in order
   * (the state carried from each batch to the next), summing the results.
   * @throws DataError for bad shapes or ids (as `evalStep`); ConfigError when the model is disposed meanwhile.
   */
  evaluate(batches: Iterable<EvalBatch>): Promise<EvalSums> {
    return this.exclusive(async () => {
      guard(() => this.live().resetEvalState());
      const sums: EvalSums = { lossSum: 0, correct: 0, count: 0 };
      for (const b of batches) {
        const r = await guard(() => this.live().evalStep(b.inputs, b.targets, b.batchSize, b.seqLen, b.boundaryId));
        sums.lossSum += r.lossSum;
        sums.correct += r.correct;
        sums.count += r.count;
      }
      return sums;
    });
  }

  resetTrainState(): void {
    guard(() => this.live().resetTrainState());
  }

  logits(inputs: Uint32Array, batchSize: number, seqLen: number): Promise<Float32Array> {
    return this.exclusive(() => guard(() => this.live().logits(inputs, batchSize, seqLen)));
  }

  generate(prompt: Uint32Array, options: SampleOptions): Promise<number[][]> {
    return this.exclusive(() => guard(() => this.live().generate(prompt, options)));
  }

  /** `NativeModel.forFineTuning`: a new model (its own handle) to fine-tune from this one's weights. */
  forFineTuning(vocabSize: number, dropout: number, seed: number): NativeHandle {
    return new NativeHandle(
      guard(() => this.live().forFineTuning(vocabSize, dropout, seed)),
      this.binding,
    );
  }

  /** A new, empty `NativeSessions` batch over this model, as a {@link SessionsHandle} whose calls take turns. */
  sessions(): SessionsHandle {
    const model = this.live();
    return new SessionsHandle(
      guard(() => this.binding.NativeSessions.create(model)),
      this,
    );
  }

  /** `NativeModel.startSampling`, as a {@link SamplerHandle} whose `next()` calls take turns on this model. */
  startSampling(prompt: Uint32Array, options: SampleOptions): SamplerHandle {
    return new SamplerHandle(
      guard(() => this.live().startSampling(prompt, options)),
      this,
    );
  }
}

/**
 * A streaming sampling run (`NativeSampler`, see its documentation) whose calls throw typed errors. It keeps
 * its own sampling state; each `next()` is one turn on its model (see {@link NativeHandle.exclusive}).
 */
export class SamplerHandle implements NativeSampler {
  constructor(
    private readonly inner: NativeSampler,
    private readonly model: NativeHandle,
  ) {}

  /** @throws ConfigError (rejects) once the model was disposed. */
  next(feed: Uint32Array, maxTokens: number): Promise<NativeSampleChunk> {
    return this.model.exclusive(() => guard(() => this.inner.next(feed, maxTokens)));
  }
}

/** The typed error of one row's `{ code, message }` in a batched call's answer. */
function rowError(r: { code?: string | null; message?: string | null }, fallback: string): LstmgenError {
  return wrapNative(Object.assign(new Error(r.message ?? fallback), { code: r.code }));
}

/**
 * A batch of independent rows over one model (`NativeSessions`, see its documentation) whose calls throw typed
 * errors. Every call is one turn on its model (see {@link NativeHandle.exclusive}), so a step of all rows never
 * interleaves with another call's native work.
 */
export class SessionsHandle {
  constructor(
    private readonly inner: NativeSessions,
    private readonly model: NativeHandle,
  ) {}

  add(prompt: Uint32Array, options: SampleOptions, stream: number): Promise<number> {
    return this.model.exclusive(() => guard(() => this.inner.add(prompt, options, stream)));
  }

  /**
   * `NativeSessions.addMany`: one row per prompt; each entry is the row's id or the typed error that kept it out.
   * @throws (rejects) the typed error of a failed forward pass (nothing was added).
   */
  addMany(prompts: Uint32Array[], options: SampleOptions[], streams: number[]): Promise<Array<number | LstmgenError>> {
    return this.model.exclusive(async () => {
      const added = await guard(() => this.inner.addMany(prompts, options, streams));
      return added.map((a) => (typeof a.row === 'number' ? a.row : rowError(a, 'not added')));
    });
  }

  feed(row: number, tokens: Uint32Array): Promise<void> {
    return this.model.exclusive(() => guard(() => this.inner.feed(row, tokens)));
  }

  /**
   * `NativeSessions.stepEach`: up to `maxTokens` new ids per row of `rows`, stepped together; each entry is the
   * row's new ids or the typed error that stopped that row alone (a NumericError for logits that are not finite).
   * @throws (rejects) the typed error of an unknown or repeated row or a failed forward pass.
   */
  stepEach(rows: Uint32Array, maxTokens: number): Promise<Array<number[] | LstmgenError>> {
    return this.model.exclusive(async () => {
      const stepped = await guard(() => this.inner.stepEach(rows, maxTokens));
      return stepped.map((s) => s.ids ?? rowError(s, 'not stepped'));
    });
  }

  /**
   * {@link stepEach} that throws the first row's error.
   * @throws (rejects) a row's typed error (a NumericError for logits that are not finite) or the call's.
   */
  async step(rows: Uint32Array, maxTokens: number): Promise<number[][]> {
    const stepped = await this.stepEach(rows, maxTokens);
    const failed = stepped.find((s) => !Array.isArray(s));
    if (failed) throw failed;
    return stepped as number[][];
  }

  remove(row: number): Promise<boolean> {
    return this.model.exclusive(() => guard(() => this.inner.remove(row)));
  }

  fork(row: number, stream?: number): Promise<number> {
    return this.model.exclusive(() => guard(() => this.inner.fork(row, stream)));
  }

  setOptions(row: number, options: SampleOptions, stream?: number): Promise<void> {
    return this.model.exclusive(() => guard(() => this.inner.setOptions(row, options, stream)));
  }

  top(row: number, n: number): Promise<NativeTopTokens> {
    return this.model.exclusive(() => guard(() => this.inner.top(row, n)));
  }

  done(row: number): Promise<boolean> {
    return this.model.exclusive(() => guard(() => this.inner.done(row)));
  }

  size(): number {
    return this.inner.size();
  }
}

/** What calls on a disposed model throw. */
function disposedError(): ConfigError {
  return new ConfigError('', 'the model was disposed (dispose() was called): it can no longer be used');
}

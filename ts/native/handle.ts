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
  NativeSampleChunk,
  NativeSampleOptions,
  NativeSampler,
  NativeStepResult,
} from '../../index';
import { wrapNative } from '../errors';
import { type Device, defaultLoader } from './loader';

export type {
  NativeEvalResult,
  NativeModelConfig,
  NativeOptimizerConfig,
  NativeSampleChunk,
  NativeSampleOptions,
  NativeStepResult,
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
 * A native model whose methods throw typed errors. Each method is the `NativeModel` method of the same name
 * (see its documentation); the constructors take a {@link Device} and pick the build through the loader.
 */
export class NativeHandle implements Omit<NativeModel, 'startSampling'> {
  private constructor(private readonly inner: NativeModel) {}

  /** `NativeModel.create` on the build that serves `device`. */
  static create(config: NativeModelConfig, seed: number, device: Device): NativeHandle {
    const { binary, device: dev } = defaultLoader.forDevice(device);
    return new NativeHandle(guard(() => binary.binding.NativeModel.create(config, seed, dev)));
  }

  /** `NativeModel.fromSafetensors` on the build that serves `device`. */
  static fromSafetensors(bytes: Buffer, device: Device): NativeHandle {
    const { binary, device: dev } = defaultLoader.forDevice(device);
    return new NativeHandle(guard(() => binary.binding.NativeModel.fromSafetensors(bytes, dev)));
  }

  /** `NativeModel.fromTorchStateDict` on the build that serves `device`. */
  static fromTorchStateDict(bytes: Buffer, device: Device): NativeHandle {
    const { binary, device: dev } = defaultLoader.forDevice(device);
    return new NativeHandle(guard(() => binary.binding.NativeModel.fromTorchStateDict(bytes, dev)));
  }

  toSafetensors(metadata: Record<string, string>, withTraining = false): Buffer {
    return guard(() => this.inner.toSafetensors(metadata, withTraining));
  }

  metadata(): Record<string, string> {
    return guard(() => this.inner.metadata());
  }

  config(): NativeModelConfig {
    return guard(() => this.inner.config());
  }

  deviceName(): string {
    return guard(() => this.inner.deviceName());
  }

  step(): number {
    return guard(() => this.inner.step());
  }

  setPrecision(precision: Precision): void {
    guard(() => this.inner.setPrecision(precision));
  }

  precision(): Precision {
    return guard(() => this.inner.precision()) as Precision;
  }

  trainStep(
    inputs: Uint32Array,
    targets: Uint32Array,
    batchSize: number,
    seqLen: number,
    opt: NativeOptimizerConfig,
    dropoutSeed: number,
  ): Promise<NativeStepResult> {
    return guard(() => this.inner.trainStep(inputs, targets, batchSize, seqLen, opt, dropoutSeed));
  }

  evalStep(inputs: Uint32Array, targets: Uint32Array, batchSize: number, seqLen: number): Promise<NativeEvalResult> {
    return guard(() => this.inner.evalStep(inputs, targets, batchSize, seqLen));
  }

  resetTrainState(): void {
    guard(() => this.inner.resetTrainState());
  }

  resetEvalState(): void {
    guard(() => this.inner.resetEvalState());
  }

  logits(inputs: Uint32Array, batchSize: number, seqLen: number): Promise<Float32Array> {
    return guard(() => this.inner.logits(inputs, batchSize, seqLen));
  }

  generate(prompt: Uint32Array, options: NativeSampleOptions): Promise<number[][]> {
    return guard(() => this.inner.generate(prompt, options));
  }

  /** `NativeModel.startSampling`, as a {@link SamplerHandle}. */
  startSampling(prompt: Uint32Array, options: NativeSampleOptions): SamplerHandle {
    return new SamplerHandle(guard(() => this.inner.startSampling(prompt, options)));
  }
}

/** A streaming sampling run (`NativeSampler`, see its documentation) whose calls throw typed errors. */
export class SamplerHandle implements NativeSampler {
  constructor(private readonly inner: NativeSampler) {}

  next(feed: Uint32Array, maxTokens: number): Promise<NativeSampleChunk> {
    return guard(() => this.inner.next(feed, maxTokens));
  }
}

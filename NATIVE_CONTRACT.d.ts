// Contract between the TS facade (ts/) and the napi binding (crates/lstmgen-node).
// `napi build` generates ./index.d.ts and ./index.js exporting exactly this. Temporary file: deleted once index.d.ts exists.
// Native errors are thrown as JS Error whose message starts with a code:
//   "E_INPUT: ..." (bad argument/shape/token id), "E_MODEL_FILE: ..." (truncated/foreign/corrupt safetensors),
//   "E_DEVICE: ..." (device unavailable), "E_NUMERIC: ..." (non-finite loss), "E_INTERNAL: ..." (a caught Rust panic or candle error).
export interface NativeModelConfig { vocabSize: number; embeddingDim: number; hiddenSize: number; numLayers: number; dropout: number }
export interface NativeOptimizerConfig { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; clipNorm: number /* <=0: no clipping */ }
export interface NativeStepResult { loss: number /* mean nats/token over batch*seqLen */; gradNorm: number /* global L2 before clipping */; correct: number; count: number }
export interface NativeEvalResult { lossSum: number /* summed nats */; correct: number; count: number }
export interface NativeSampleOptions {
  numSamples: number; maxTokens: number; temperature: number /* 0 = greedy */; topK: number /* 0 = off */; topP: number /* 1 = off */;
  seed: number; stopSequences: Array<Array<number>> /* token-id sequences; a sample stops after emitting one (it is included) */
}
export declare class NativeModel {
  /** New model, PyTorch default init from `seed`. device: "cpu" | "cuda" | "auto". */
  static create(config: NativeModelConfig, seed: number, device: string): NativeModel
  /** Load from safetensors bytes written by toSafetensors (verifies format tag, version, shapes, crc32). */
  static fromSafetensors(bytes: Buffer, device: string): NativeModel
  /** Serialize weights; `metadata` (string->string) is stored as safetensors metadata, plus format/version/checksum keys added by Rust. */
  toSafetensors(metadata: Record<string, string>): Buffer
  /** Metadata read from the file this model was loaded from ({} for a new model). */
  metadata(): Record<string, string>
  config(): NativeModelConfig
  deviceName(): string
  /** Number of optimizer steps taken. */
  step(): number
  /** One TBPTT step. inputs/targets: [batchSize * seqLen] row-major [batch, seqLen], ids < vocabSize. Carries the training hidden state. */
  trainStep(inputs: Uint32Array, targets: Uint32Array, batchSize: number, seqLen: number, opt: NativeOptimizerConfig, dropoutSeed: number): Promise<NativeStepResult>
  /** Forward only (no dropout) with the carried evaluation state. */
  evalStep(inputs: Uint32Array, targets: Uint32Array, batchSize: number, seqLen: number): Promise<NativeEvalResult>
  resetTrainState(): void
  resetEvalState(): void
  /** Logits [batchSize, seqLen, vocabSize] flattened, from a zero state, no dropout. */
  logits(inputs: Uint32Array, batchSize: number, seqLen: number): Promise<Float32Array>
  /** Sample numSamples continuations of `prompt` (>= 1 token); returns generated ids only (prompt excluded). */
  generate(prompt: Uint32Array, options: NativeSampleOptions): Promise<Array<Array<number>>>
}

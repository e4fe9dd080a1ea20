/** A trained (or loaded) LSTM language model: native weights + tokenizer + the config it was trained with. */
import {
  type EvaluateOptions,
  type GenerateOptionsInput,
  type LoadOptions,
  parseCorpusSource,
  parseEvaluateOptions,
  parseGenerateOptions,
  parseLoadOptions,
  parseOptions,
  parsePrecision,
  parseStreamOptions,
  type SessionOptionsInput,
  SessionOptionsSchema,
  type StreamOptionsInput,
  type TrainConfig,
} from './config';
import { corpusStream, tokenizeCorpus } from './corpus/dataset';
import { TrainingRecords } from './corpus/recordset';
import { type CorpusSource, describeCorpus } from './corpus/sources';
import { batchLayout, idStream, makeBatches, type TokenStream } from './data';
import { ConfigError, DataError, ModelFileError, NumericError } from './errors';
import { writeFileAtomic } from './io/atomic';
import { readRegularFile } from './io/files';
import { assertPath } from './io/paths';
import { assertFiniteTensors } from './io/safetensors';
import { accuracy, bitsPerChar, perplexity, streamChars } from './metrics';
import { NativeHandle, type NativeModelConfig, type Precision } from './native/handle';
import { cutAtFirst, decodeAfter, planSampling } from './sampling/plan';
import { type GeneratedRecord, sampleRecords } from './sampling/records';
import { Session } from './sampling/session';
import { streamText } from './sampling/stream';
import { type TokenIds, type Tokenizer, type TokenizerKind, tokenizerFromJSON } from './tokenizer';

/** Metadata keys lstmgen writes into the safetensors header (values are JSON text). */
export const METADATA_KEYS = { config: 'config', tokenizer: 'tokenizer' } as const;
/** Metadata key of the training-record hashes (JSON text, see {@link TrainingRecords}); absent in older files. */
export const RECORDS_KEY = 'records';

/** The train config as stored in a model file: no callbacks or signal, corpora by name (`<text>` for inline text). */
export type ModelConfig = Omit<
  TrainConfig,
  | 'corpus'
  | 'valCorpus'
  | 'onStart'
  | 'onStep'
  | 'onEval'
  | 'onEpoch'
  | 'onCheckpoint'
  | 'onSample'
  | 'onWarning'
  | 'onDataProgress'
  | 'signal'
> & {
  corpus: string;
  valCorpus?: string;
};

/** The storable part of a validated train config. */
export function toModelConfig(config: TrainConfig): ModelConfig {
  const {
    corpus,
    valCorpus,
    onStart,
    onStep,
    onEval,
    onEpoch,
    onCheckpoint,
    onSample,
    onWarning,
    onDataProgress,
    signal,
    ...rest
  } = config;
  return { ...rest, corpus: describeCorpus(corpus), ...(valCorpus ? { valCorpus: describeCorpus(valCorpus) } : {}) };
}

const isTokenStream = (v: unknown): v is TokenStream =>
  typeof v === 'object' && v !== null && typeof (v as TokenStream).read === 'function';

/** The fields of `o` that are not undefined. */
const definedOf = <T extends object>(o: T): Partial<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

/** Result of {@link LstmModel.evaluate}. */
export interface EvalResult {
  /** Mean cross-entropy over all predicted positions, nats/token. */
  loss: number;
  /** exp(loss). */
  perplexity: number;
  /** Next-token accuracy of the argmax prediction, in [0, 1]. */
  accuracy: number;
  /**
   * Bits per character: total nats / total characters of the predicted text / ln 2, the characters being the
   * Unicode code points the predicted tokens decode to ({@link Tokenizer.countChars}; a boundary token counts
   * as its line break). For char models it equals loss / ln 2; it compares models with any tokenizers on
   * the same text.
   */
  bitsPerChar: number;
  /** Characters (code points) of the predicted text, the denominator of `bitsPerChar`. */
  chars: number;
  /** Number of predicted positions (targets). */
  tokens: number;
}

/** One weight tensor of a model, as {@link LstmModel.summary} lists it. */
export interface TensorSummary {
  /** PyTorch name, as in the model file: `embedding.weight`, `lstm.weight_ih_l0`, ..., `decoder.bias`. */
  name: string;
  /** Shape, PyTorch's layout: `[V, E]`, `[4H, in]`, `[4H, H]`, `[4H]`, `[V, H]`, `[V]`. */
  shape: number[];
  /** Number of parameters: the product of `shape`. */
  parameters: number;
}

/** What {@link LstmModel.summary} returns: the network's shape and its parameter count. */
export interface ModelSummary {
  /** Tokenizer kind. */
  tokenizer: TokenizerKind;
  /** V: vocabulary size, specials included. */
  vocabSize: number;
  /** E: embedding width. */
  embeddingDim: number;
  /** H: hidden size of every LSTM layer. */
  hiddenSize: number;
  /** P: width of each layer's projected output (0: no projection, the output is H wide). */
  projSize: number;
  /** Stacked LSTM layers. */
  numLayers: number;
  /** Training dropout probability, in [0, 1). */
  dropout: number;
  /** Device the weights live on, as the engine names it (`"cpu"`, `"cuda:0"`). */
  device: string;
  /** Precision of the matrix products (see {@link Precision}). */
  precision: Precision;
  /** Optimizer steps taken so far. */
  steps: number;
  /** Every weight tensor, in model-file order. */
  tensors: TensorSummary[];
  /**
   * Total parameters: V*E + sum over layers of 4H*(in + out) + 8H (+ P*H with a projection) + V*out + V, where
   * out = P with a projection, else H, and in = E for the first layer, out after.
   */
  parameters: number;
  /** Memory of the weights: 4 bytes (f32) per parameter; Adam's moments, when training, take twice as much more. */
  bytes: number;
}

/**
 * The weight tensors of a network of shape `c`, as the engine names and lays them out (PyTorch's nn.Embedding,
 * nn.LSTM and nn.Linear): embedding `[V, E]`; per layer k `weight_ih_lk` `[4H, in]`, `weight_hh_lk` `[4H, out]`,
 * `bias_ih_lk` and `bias_hh_lk` `[4H]`, with a projection `weight_hr_lk` `[P, H]`; decoder `[V, out]` and `[V]`
 * (out = P with a projection, else H; in = E for the first layer, out after).
 */
export function weightTensors(c: NativeModelConfig): TensorSummary[] {
  const { vocabSize: v, embeddingDim: e, hiddenSize: h } = c;
  const p = c.projSize ?? 0;
  const out = p > 0 ? p : h;
  const tensor = (name: string, shape: number[]) => ({ name, shape, parameters: shape.reduce((a, b) => a * b, 1) });
  const layers = Array.from({ length: c.numLayers }, (_, k) => [
    tensor(`lstm.weight_ih_l${k}`, [4 * h, k === 0 ? e : out]),
    tensor(`lstm.weight_hh_l${k}`, [4 * h, out]),
    tensor(`lstm.bias_ih_l${k}`, [4 * h]),
    tensor(`lstm.bias_hh_l${k}`, [4 * h]),
    ...(p > 0 ? [tensor(`lstm.weight_hr_l${k}`, [p, h])] : []),
  ]);
  return [
    tensor('embedding.weight', [v, e]),
    ...layers.flat(),
    tensor('decoder.weight', [v, out]),
    tensor('decoder.bias', [v]),
  ];
}

/**
 * A language model ready to sample and evaluate: the native weights (`native`), the `tokenizer` that maps
 * text to its ids, and the `config` it was trained with. Made by `train()` or {@link loadModel}.
 *
 * Every method may be called while others are still running (`Promise.all([m.evaluate(a), m.generate(b),
 * m.save(f)])`): the native calls of one model run one at a time in call order (see
 * {@link NativeHandle.exclusive}), each evaluation as one uninterrupted pass, so each result equals that of
 * the same call made alone. A stream takes its turn per chunk: other calls run between its chunks and do not
 * change its text.
 */
export class LstmModel {
  /**
   * Wrap a native model; normally made by `train()` or {@link LstmModel.load}.
   * @param config the (stored) training config; `seqLen` and `batchSize` are evaluation defaults.
   * @param records the training records, for the `novel` of generated records (saved with the model).
   */
  constructor(
    readonly native: NativeHandle,
    readonly tokenizer: Tokenizer,
    readonly config: ModelConfig,
    readonly records: TrainingRecords = TrainingRecords.unknown('the model was made without its training records'),
  ) {}

  /**
   * The network's shape and parameter count (per tensor and in total), with device, precision and steps.
   * @throws ConfigError once the model was disposed.
   */
  summary(): ModelSummary {
    const c = this.native.config();
    const tensors = weightTensors(c);
    const parameters = tensors.reduce((sum, t) => sum + t.parameters, 0);
    return {
      tokenizer: this.tokenizer.kind,
      ...c,
      projSize: c.projSize ?? 0,
      device: this.device,
      precision: this.precision,
      steps: this.steps,
      tensors,
      parameters,
      bytes: 4 * parameters,
    };
  }

  /**
   * Let go of the native weights now rather than when the model is garbage-collected (see
   * {@link NativeHandle.dispose}): every later call, and every call still waiting for its turn, throws or
   * rejects with a ConfigError (`the model was disposed`); a native call already running finishes. Idempotent.
   */
  dispose(): void {
    this.native.dispose();
  }

  /** Device the weights live on, as the engine names it (e.g. `"cpu"`). */
  get device(): string {
    return this.native.deviceName();
  }

  /** Optimizer steps taken so far. */
  get steps(): number {
    return this.native.step();
  }

  /** Precision of the matrix products in generation, evaluation and further training (see {@link Precision}). */
  get precision(): Precision {
    return this.native.precision();
  }

  /**
   * Sets the precision of later matrix products; weights are unchanged (f32). It takes effect at once, without
   * waiting for calls in progress: an evaluation or stream already running does its remaining steps at the new
   * precision.
   * @throws ConfigError (field `precision`) for anything but `'f32'` or `'bf16'`; DataError for `bf16` on a
   *   CUDA model (bf16 is CPU-only).
   */
  setPrecision(precision: Precision): void {
    this.native.setPrecision(parsePrecision(precision));
  }

  /**
   * Sample `numSamples` continuations of `prompt`. Returns the generated text only (prompt excluded), each
   * cut before the first `stop` string. An empty prompt starts from a line break (`'\n'` for char models,
   * `<eos>` for word models). temperature 0 = greedy. `<unk>` is never sampled unless `allowUnk` is set.
   *
   * Seeds: the same options on the same model and device give the same texts. Sample i draws from its own
   * random stream, derived from `seed` and i, so its text does not depend on `numSamples` (sample 0 of
   * `numSamples: 3` is the text of `numSamples: 1`). A GPU uses another generator (Philox) than the CPU
   * (ChaCha8), so the same seed gives different texts on the two devices.
   *
   * With `records: n`, it returns n whole records instead ({@link GeneratedRecord}: `text`, `novel`, `end`):
   * each is sampled from the state a record starts from (the record boundary fed from the zero state, then the
   * prompt as the record's first text), ends at the next boundary or after `maxTokens` sampled tokens, and
   * never contains the boundary token; the n records are one batch. `novel` says whether the record is not one
   * of the training records; `onlyNovel: true` samples until n novel whole records are found (at most
   * `ONLY_NOVEL_ATTEMPTS` (20) per record asked for; then a warning `LSTMGEN_FEW_NOVEL` and fewer records).
   * @throws ConfigError for invalid options, an empty prompt when the vocabulary has no line break and no record boundary, `records`
   *   for a model trained on one plain text (no record boundary), `onlyNovel` for a model file without record
   *   hashes, `records` with `numSamples` or `stop`; DataError for unknown prompt symbols with `strict`
   *   (otherwise they become `<unk>` with one warning).
   * @example const [name] = await model.generate({ records: 1, onlyNovel: true }); // { text, novel: true, end }
   */
  generate(options: GenerateOptionsInput & { records: number }): Promise<GeneratedRecord[]>;
  generate(options?: GenerateOptionsInput & { records?: undefined }): Promise<string[]>;
  generate(options?: GenerateOptionsInput): Promise<string[] | GeneratedRecord[]>;
  async generate(options: GenerateOptionsInput = {}): Promise<string[] | GeneratedRecord[]> {
    this.native.assertLive();
    const o = parseGenerateOptions(options);
    if (o.records !== undefined) {
      return sampleRecords(this.native, this.tokenizer, this.records, { ...o, records: o.records });
    }
    if (o.onlyNovel)
      throw new ConfigError('onlyNovel', 'needs records: it keeps sampling until records novel ones are found');
    const plan = planSampling(this.tokenizer, o);
    const samples = await this.native.generate(plan.prompt, plan.native);
    return samples.map((ids) => cutAtFirst(decodeAfter(this.tokenizer, plan.prompt, ids), plan.stopTexts));
  }

  /**
   * Sample one continuation of `prompt` as an async iterator of text pieces, yielded as they are sampled
   * (`chunkTokens` tokens per native call, default 1). Joined, the pieces equal `generate()`'s text for the
   * same options and seed (stop strings included: text that could start one is held back until decided).
   * Breaking out of the loop stops sampling. Other calls on the model may run between two pieces; the stream
   * keeps its own sampling state, so they do not change its text.
   * @throws ConfigError for invalid options or a disposed model (at the call); on the first iteration, as
   *   {@link generate}.
   * @example for await (const piece of model.stream({ prompt: 'ROMEO:', maxTokens: 200 })) process.stdout.write(piece);
   */
  stream(options: StreamOptionsInput = {}): AsyncGenerator<string, void, undefined> {
    this.native.assertLive();
    return streamText(this.native, this.tokenizer, parseStreamOptions(options));
  }

  /**
   * A session: a model state held by the engine that is fed text, asked for the next tokens' probabilities and
   * sampled from (see {@link Session}).
   * @throws ConfigError for invalid options or a disposed model.
   * @example const s = model.session({ seed: 1 }); await s.feed('Call me'); const [best] = await s.next({ topN: 1 });
   */
  session(options: SessionOptionsInput = {}): Session {
    this.native.assertLive();
    return Session.open(
      this.native,
      this.tokenizer,
      parseOptions(SessionOptionsSchema, options, 'the session options'),
    );
  }

  /**
   * Evaluate on a corpus (a source, read as `train()` reads it, records framed by the boundary token when the
   * vocabulary has one; token ids; or a token stream): one uninterrupted pass with the carried evaluation state
   * (see {@link NativeHandle.evaluate}) over the batches of {@link makeBatches}, last short batch included. The
   * state resets at each record boundary (the stream's `boundaryId`; for token ids, the vocabulary's boundary
   * token), as in training.
   * Symbols outside the vocabulary count as `<unk>` targets, silently unless `onWarning` or `strict` is given.
   * @throws ConfigError naming the option for an invalid option; DataError when the corpus cannot be read or
   *   has fewer than seqLen + 1 tokens, or for unknown symbols with `strict`; NumericError when the loss is NaN or
   *   its perplexity overflows (a loss above ~709 nats/token, far above any trained model's: a uniform guess costs
   *   ln V), i.e. the model's weights have diverged.
   */
  async evaluate(corpus: CorpusSource | TokenIds | TokenStream, options: EvaluateOptions = {}): Promise<EvalResult> {
    const r = await this.measure(corpus, options);
    if (!Number.isFinite(r.perplexity))
      throw new NumericError(
        `the model's loss on this corpus is ${r.loss} nats/token: its weights have diverged (retrain it with a lower lr or clipNorm)`,
      );
    return r;
  }

  /**
   * {@link evaluate} without its divergence check: a NaN or overflowing loss is returned as it is, for training's
   * validation, which reports a diverged run itself (see `onNonFinite`).
   * @internal
   */
  async measure(corpus: CorpusSource | TokenIds | TokenStream, options: EvaluateOptions = {}): Promise<EvalResult> {
    this.native.assertLive();
    const opts = parseEvaluateOptions(options);
    const { format, field, extensions, encoding } = { ...this.config, ...definedOf(opts) };
    // raw ids reset the state at the vocabulary's boundary token, as training on records did
    const ids = ArrayBuffer.isView(corpus)
      ? idStream(corpus, this.tokenizer.boundaryId ?? null)
      : isTokenStream(corpus)
        ? corpus
        : corpusStream(
            await tokenizeCorpus(
              parseCorpusSource(corpus),
              this.tokenizer,
              { format, field, extensions, encoding, cacheDir: opts.cacheDir },
              { onWarning: () => {}, ...opts },
            ),
          );
    const seqLen = opts.seqLen ?? this.config.seqLen;
    const fit = Math.floor((ids.length - 1) / seqLen); // streams that hold one full sequence
    const batchSize = Math.max(1, Math.min(opts.batchSize ?? this.config.batchSize, fit));
    const batches = makeBatches(ids, batchSize, seqLen); // DataError when not one full sequence fits
    const { lossSum, correct, count } = await this.native.evaluate(batches);
    if (count === 0)
      throw new DataError(`the evaluation text has ${ids.length} tokens: nothing to predict with seqLen ${seqLen}`);
    const loss = lossSum / count;
    // the targets are stream positions [1, 1 + batchSize * streamLen) (see makeBatches)
    const { streamLen } = batchLayout(ids.length, batchSize, seqLen);
    const stream = isTokenStream(ids) ? ids : idStream(ids);
    const chars = streamChars(this.tokenizer, stream, 1, 1 + batchSize * streamLen);
    return {
      loss,
      perplexity: perplexity(loss),
      accuracy: accuracy(correct, count),
      bitsPerChar: bitsPerChar(lossSum, chars),
      chars,
      tokens: count,
    };
  }

  /**
   * Logits `[batchSize, seqLen, vocabSize]` (float32, flattened) for `ids` `[batchSize, seqLen]` row-major,
   * from a zero state, no dropout.
   * @throws DataError if `ids.length !== batchSize * seqLen` or an id is outside the vocabulary.
   */
  logits(ids: Uint32Array, batchSize: number, seqLen: number): Promise<Float32Array> {
    if (ids.length !== batchSize * seqLen) {
      throw new DataError(`logits: got ${ids.length} ids, expected batchSize * seqLen = ${batchSize * seqLen}`);
    }
    return this.native.logits(ids, batchSize, seqLen);
  }

  /**
   * The model as safetensors bytes: weights under PyTorch names (a valid PyTorch state dict), metadata
   * `config` and `tokenizer` (JSON text) plus `extra`. With `withTraining` (a checkpoint) also Adam's moments
   * and step and the carried training state.
   * @throws NumericError if any weight (or moment) is NaN or infinite: such bytes are never produced.
   */
  toBytes(extra: Record<string, string> = {}, withTraining = false): Buffer {
    const bytes = this.native.toSafetensors(
      {
        [METADATA_KEYS.config]: JSON.stringify(this.config),
        [METADATA_KEYS.tokenizer]: JSON.stringify(this.tokenizer.toJSON()),
        ...(this.tokenizer.boundaryId !== undefined ? { [RECORDS_KEY]: this.records.toMetadata() } : {}),
        ...extra,
      },
      withTraining,
    );
    assertFiniteTensors(bytes, withTraining ? 'checkpoint' : 'model');
    return bytes;
  }

  /**
   * Write the model to `file` atomically (see {@link writeFileAtomic}): an existing file is replaced whole
   * or not at all. Metadata keys `config` and `tokenizer` hold JSON text.
   * The weights are those after every call made on the model before `save` (it takes its turn like them).
   * @throws NumericError if the weights are not all finite (`file` is left untouched); ModelFileError if the
   *   file cannot be written (the temporary file is removed); ConfigError once the model was disposed.
   */
  async save(file: string): Promise<void> {
    const bytes = await this.native.exclusive(() => this.toBytes());
    await writeFileAtomic(file, bytes, 'model file');
  }

  /**
   * Load a model written by {@link save}.
   * @throws ConfigError naming the option for an invalid `device` or `precision`; ModelFileError if the file
   *   is missing, truncated, corrupt, or not an lstmgen model; DeviceError if the addon cannot load or `device`
   *   is unavailable; DataError for `precision: 'bf16'` on a CUDA model.
   */
  static async load(file: string, options: LoadOptions = {}): Promise<LstmModel> {
    assertPath(file, 'file');
    const opts = parseLoadOptions(options);
    const native = loadNative(file, 'model file', (bytes) => NativeHandle.fromSafetensors(bytes, opts.device));
    native.setPrecision(opts.precision);
    const meta = native.metadata();
    const missing = Object.values(METADATA_KEYS).filter((k) => typeof meta[k] !== 'string');
    if (missing.length > 0) {
      throw new ModelFileError(`${file}: not an lstmgen model (metadata ${missing.join(', ')} missing)`);
    }
    const tokenizer = withFileName(file, () => tokenizerFromJSON(meta[METADATA_KEYS.tokenizer]));
    const config = parseStoredConfig(meta[METADATA_KEYS.config], file);
    const vocabSize = native.config().vocabSize;
    if (tokenizer.vocabSize !== vocabSize) {
      throw new ModelFileError(`${file}: tokenizer has ${tokenizer.vocabSize} tokens but the weights ${vocabSize}`);
    }
    return new LstmModel(native, tokenizer, config, TrainingRecords.fromMetadata(meta[RECORDS_KEY]));
  }
}

/** The `config` metadata, checked for the fields evaluation needs. @throws ModelFileError */
function parseStoredConfig(json: string, file: string): ModelConfig {
  let config: ModelConfig;
  try {
    config = JSON.parse(json) as ModelConfig;
  } catch (err) {
    throw new ModelFileError(`${file}: config metadata is not valid JSON`, { cause: err });
  }
  const ok = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  if (typeof config !== 'object' || config === null || !ok(config.seqLen) || !ok(config.batchSize)) {
    throw new ModelFileError(`${file}: config metadata lacks seqLen/batchSize`);
  }
  return config;
}

/** Load a model file; same as {@link LstmModel.load}. */
export function loadModel(file: string, options: LoadOptions = {}): Promise<LstmModel> {
  return LstmModel.load(file, options);
}

/**
 * The bytes of `file` (`what` names it in errors).
 * @throws ModelFileError if it cannot be read or is not a regular file: a FIFO blocks and a device such as
 *   `/dev/zero` never ends, so neither is read.
 */
export function readBytes(file: string, what: string): Buffer {
  return readRegularFile(
    file,
    (reason, cause) =>
      new ModelFileError(`cannot read ${what} ${JSON.stringify(file)}: ${reason}`, { cause, unreadablePath: file }),
  );
}

/** Runs `fn`; a ModelFileError it throws is re-thrown with `file` in front of its message. */
export function withFileName<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ModelFileError) throw new ModelFileError(`${file}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** Reads `file` and hands its bytes to a native loader. @throws ModelFileError if it cannot be read or parsed. */
export function loadNative(file: string, what: string, load: (bytes: Buffer) => NativeHandle): NativeHandle {
  const bytes = readBytes(file, what);
  return withFileName(file, () => load(bytes));
}

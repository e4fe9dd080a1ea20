import { describe, expect, it } from 'vitest';
import {
  MAX_DIM,
  MAX_LAYERS,
  MIN_TEMPERATURE,
  parseEvaluateOptions,
  parseGenerateOptions,
  parseLoadOptions,
  parsePrecision,
  parseTrainConfig,
  TRAIN_DEFAULTS,
} from '../ts/config';
import {
  ConfigError,
  DataError,
  DeviceError,
  ModelFileError,
  NativeError,
  NumericError,
  wrapNative,
} from '../ts/errors';

/** The rule of every temperature option, as its ConfigError says it. */
const TEMPERATURE_RULE =
  "must be 0 (greedy) or a finite number >= 1e-30 (a smaller one overflows the engine's float32 sampling)";

/** The ConfigError thrown by `fn`. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('parseTrainConfig', () => {
  it('fills defaults', () => {
    const c = parseTrainConfig({ corpus: 'moby-dick' });
    expect(c.hiddenSize).toBe(TRAIN_DEFAULTS.hiddenSize);
    expect(c.valFraction).toBe(0.1);
    expect(c.tokenizer).toBe('char');
    expect(c.clipNorm).toBe(5);
    expect(c.epochs).toBeUndefined();
  });

  it.each([
    ['hiddenSize', -3, 'hiddenSize: must be a positive integer, got -3'],
    ['hiddenSize', 0, 'hiddenSize: must be a positive integer, got 0'],
    ['embeddingDim', 2.5, 'embeddingDim: must be a positive integer, got 2.5'],
    ['numLayers', 0, 'numLayers: must be a positive integer, got 0'],
    ['seqLen', -1, 'seqLen: must be a positive integer, got -1'],
    ['batchSize', 0, 'batchSize: must be a positive integer, got 0'],
    ['epochs', 0, 'epochs: must be a positive integer, got 0'],
    ['maxSteps', -5, 'maxSteps: must be a positive integer, got -5'],
    ['lr', NaN, 'lr: must be a finite number > 0, got NaN'],
    ['lr', -0.01, 'lr: must be a finite number > 0, got -0.01'],
    ['lr', 0, 'lr: must be a finite number > 0, got 0'],
    ['lr', Infinity, 'lr: must be a finite number > 0, got Infinity'],
    ['lr', '0.1', 'lr: must be a finite number > 0, got "0.1"'],
    ['dropout', 1, 'dropout: must be a number in [0, 1), got 1'],
    ['valFraction', 1, 'valFraction: must be a number in [0, 1), got 1'],
    ['vocabSize', 2, 'vocabSize: must be an integer >= 3, got 2'],
    ['clipNorm', -1, 'clipNorm: must be a finite number >= 0 (0 = off), got -1'],
    ['weightDecay', NaN, 'weightDecay: must be a finite number >= 0, got NaN'],
    ['tokenizer', 'unigram', 'tokenizer: must be "char", "word", "bpe" or { file: "tokenizer.json" }, got "unigram"'],
    ['device', 'tpu', 'device: must be "auto", "cpu" or "cuda", got "tpu"'],
    ['seed', -1, 'seed: must be an integer in [0, 2^32-1], got -1'],
    ['onStep', 3, 'onStep: must be a function, got 3'],
    ['sampleTemperature', 1e-40, `sampleTemperature: ${TEMPERATURE_RULE}, got 1e-40`],
  ])('rejects %s = %s naming the field', (field, value, message) => {
    const err = configError(() => parseTrainConfig({ corpus: 'moby-dick', [field]: value } as never));
    expect(err.field).toBe(field);
    expect(err.message).toBe(message);
  });

  it.each([
    ['hiddenSize', 1e8, 'hiddenSize: must be <= 1048576, got 100000000'],
    ['embeddingDim', MAX_DIM + 1, 'embeddingDim: must be <= 1048576, got 1048577'],
    ['numLayers', MAX_LAYERS + 1, 'numLayers: must be <= 256, got 257'],
    ['vocabSize', 2 ** 20 + 1, 'vocabSize: must be <= 1048576, got 1048577'],
    ['hiddenSize', Infinity, 'hiddenSize: must be a positive integer, got Infinity'],
  ])('bounds %s = %s to the engine limit, naming the field', (field, value, message) => {
    const err = configError(() => parseTrainConfig({ corpus: 'moby-dick', [field]: value } as never));
    expect(err.field).toBe(field);
    expect(err.message).toBe(message);
  });

  it('accepts every dimension at the engine limit 2^20', () => {
    const c = parseTrainConfig({
      corpus: 'x',
      hiddenSize: MAX_DIM,
      embeddingDim: MAX_DIM,
      numLayers: MAX_LAYERS,
      vocabSize: MAX_DIM,
    });
    expect([c.hiddenSize, c.embeddingDim, c.numLayers, c.vocabSize]).toEqual([MAX_DIM, MAX_DIM, MAX_LAYERS, MAX_DIM]);
  });

  it('requires a corpus and rejects unknown options', () => {
    expect(configError(() => parseTrainConfig({} as never)).field).toBe('corpus');
    expect(configError(() => parseTrainConfig({ corpus: '' })).field).toBe('corpus');
    const err = configError(() => parseTrainConfig({ corpus: 'x', hiddensize: 3 } as never));
    expect(err.field).toBe('hiddensize');
    expect(err.message).toMatch(/unknown option/);
  });

  it('accepts { path }, { text }, callbacks and a signal', () => {
    const c = parseTrainConfig({
      corpus: { text: 'abc' },
      valCorpus: { path: 'v.txt' },
      onStep: () => {},
      signal: new AbortController().signal,
    });
    expect(c.corpus).toEqual({ text: 'abc' });
    expect(typeof c.onStep).toBe('function');
  });
});

describe('parseGenerateOptions', () => {
  it('fills defaults', () => {
    const o = parseGenerateOptions({});
    expect(o).toMatchObject({ prompt: '', maxTokens: 200, temperature: 1, topP: 1, numSamples: 1, strict: false });
    expect(o.topK).toBeUndefined();
    expect(parseGenerateOptions({ temperature: 0 }).temperature).toBe(0);
    expect(parseGenerateOptions({ temperature: MIN_TEMPERATURE }).temperature).toBe(MIN_TEMPERATURE);
    expect(parseGenerateOptions({ topP: 1 }).topP).toBe(1);
  });

  it.each([
    ['temperature', -0.5, `temperature: ${TEMPERATURE_RULE}, got -0.5`],
    ['temperature', NaN, `temperature: ${TEMPERATURE_RULE}, got NaN`],
    // below f32's smallest normal number: the engine's float32 sampling would overflow (it was a NumericError)
    ['temperature', 1e-40, `temperature: ${TEMPERATURE_RULE}, got 1e-40`],
    ['temperature', MIN_TEMPERATURE / 2, `temperature: ${TEMPERATURE_RULE}, got ${MIN_TEMPERATURE / 2}`],
    ['temperature', Number.MIN_VALUE, `temperature: ${TEMPERATURE_RULE}, got 5e-324`],
    ['temperature', Infinity, `temperature: ${TEMPERATURE_RULE}, got Infinity`],
    ['topP', 0, 'topP: must be a number in (0, 1], got 0'],
    ['topP', 1.5, 'topP: must be a number in (0, 1], got 1.5'],
    ['topP', -0.1, 'topP: must be a number in (0, 1], got -0.1'],
    ['topK', 0, 'topK: must be an integer >= 1, got 0'],
    ['topK', 2.5, 'topK: must be an integer >= 1, got 2.5'],
    ['maxTokens', 0, 'maxTokens: must be a positive integer, got 0'],
    ['numSamples', -2, 'numSamples: must be a positive integer, got -2'],
    ['prompt', 5, 'prompt: must be a string, got 5'],
    ['maxTokens', 2 ** 24 + 1, 'maxTokens: must be <= 16777216, got 16777217'],
    ['numSamples', 65537, 'numSamples: must be <= 65536, got 65537'],
  ])('rejects %s = %s naming the field', (field, value, message) => {
    const err = configError(() => parseGenerateOptions({ [field]: value } as never));
    expect(err.field).toBe(field);
    expect(err.message).toBe(message);
  });

  it('names the element of a bad stop string', () => {
    const err = configError(() => parseGenerateOptions({ stop: ['.', ''] }));
    expect(err.field).toBe('stop.1');
  });
});

describe('parseEvaluateOptions', () => {
  it('accepts no options and positive integers', () => {
    expect(parseEvaluateOptions()).toEqual({});
    expect(parseEvaluateOptions({ batchSize: 4, seqLen: 32 })).toMatchObject({ batchSize: 4, seqLen: 32 });
    expect(parseEvaluateOptions({ batchSize: undefined, seqLen: undefined, strict: true })).toMatchObject({
      strict: true,
    });
  });

  it.each([
    ['seqLen', -4, 'seqLen: must be a positive integer, got -4'],
    ['seqLen', 0, 'seqLen: must be a positive integer, got 0'],
    ['batchSize', -1, 'batchSize: must be a positive integer, got -1'],
    ['batchSize', 0, 'batchSize: must be a positive integer, got 0'],
    ['batchSize', 1.5, 'batchSize: must be a positive integer, got 1.5'],
    ['batchSize', NaN, 'batchSize: must be a positive integer, got NaN'],
  ])('rejects %s = %s naming the field', (field, value, message) => {
    const err = configError(() => parseEvaluateOptions({ [field]: value }));
    expect(err.field).toBe(field);
    expect(err.message).toBe(message);
  });
});

describe('wrapNative', () => {
  /** An Error as the addon throws it: the code in `code`, the message without it. */
  const nativeError = (code: string | undefined, message: string) => Object.assign(new Error(message), { code });

  it.each([
    ['E_DATA', DataError],
    ['E_MODEL_FILE', ModelFileError],
    ['E_DEVICE', DeviceError],
    ['E_NUMERIC', NumericError],
    ['E_NATIVE', NativeError],
    ['E_SOMETHING_ELSE', NativeError],
    ['toString', NativeError],
    [undefined, NativeError],
  ])('maps code %s', (code, Cls) => {
    const original = nativeError(code, 'token id 99 >= vocab 65');
    const err = wrapNative(original);
    expect(err).toBeInstanceOf(Cls);
    expect(err.message).toBe('token id 99 >= vocab 65');
    expect(err.cause).toBe(original);
  });

  it('keeps an LstmgenError and wraps a thrown non-Error as a NativeError', () => {
    const typed = new DataError('bad');
    expect(wrapNative(typed)).toBe(typed);
    expect(wrapNative('boom')).toBeInstanceOf(NativeError);
    expect(wrapNative('boom').message).toBe('boom');
  });
});

describe('load options and precision', () => {
  it('loadModel options and setPrecision values are checked with a ConfigError naming the field', () => {
    expect(parseLoadOptions({ device: 'cpu', precision: 'bf16' })).toEqual({ device: 'cpu', precision: 'bf16' });
    expect(parseLoadOptions()).toEqual({ device: 'auto', precision: 'f32' });
    expect(() => parseLoadOptions({ precision: 'fp8' })).toThrow('precision: must be "f32" or "bf16", got "fp8"');
    expect(() => parseLoadOptions({ device: 'gpu' })).toThrow(/^device: must be "auto", "cpu" or "cuda"/);
    expect(() => parseLoadOptions({ devcie: 'cpu' })).toThrow(/devcie: unknown option/);
    expect(parsePrecision('f32')).toBe('f32');
    expect(() => parsePrecision('f16')).toThrow('precision: must be "f32" or "bf16", got "f16"');
  });
});

/** lstmgen: train and sample LSTM language models from TypeScript on a Rust (candle) engine. */
export { train, dropoutSeed, type TrainResult } from './train';
export { LstmModel, loadModel, toModelConfig, METADATA_KEYS, type EvalResult, type EvaluateOptions, type ModelConfig } from './model';
export {
  parseTrainConfig,
  parseGenerateOptions,
  TrainConfigSchema,
  GenerateOptionsSchema,
  TRAIN_DEFAULTS,
  type TrainConfig,
  type TrainConfigInput,
  type GenerateOptions,
  type GenerateOptionsInput,
} from './config';
export type { StartInfo, StepInfo, EvalInfo, EpochInfo, TrainHistory } from './events';
export {
  buildTokenizer,
  tokenizerFromJSON,
  CharTokenizer,
  WordTokenizer,
  UNK,
  EOS,
  type Tokenizer,
  type TokenizerJSON,
  type TokenizerOptions,
  type EncodeOptions,
} from './tokenizer';
export { loadCorpus, splitText, makeBatches, batchLayout, BUILTIN_CORPORA, type CorpusSource, type Batch, type BatchLayout } from './data';
export { perplexity, bitsPerChar, accuracy } from './metrics';
export {
  LstmgenError,
  ConfigError,
  DataError,
  ModelFileError,
  DeviceError,
  NumericError,
  NativeError,
  wrapNative,
  type ErrorCode,
} from './errors';
export type { Device } from './native';

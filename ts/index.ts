/** lstmgen: train and sample LSTM language models from TypeScript on a Rust (candle) engine. */
export { train, dropoutSeed, DEFAULT_CHECKPOINT_EVERY, DEFAULT_KEEP_CHECKPOINTS, type TrainResult } from './train';
export { readCheckpoint, listCheckpoints, checkpointName, RESUME_LOCKED, TRAINING_KEY, type TrainingState, type LoadedCheckpoint } from './checkpoint';
export { LrSchedule, type ScheduleState } from './schedule';
export { PlateauTracker, type PlateauState } from './plateau';
export { RunLog, readRunLog, type RunRecord } from './runlog';
export { plotRun, type PlotOptions } from './plot';
export { importTorch, type ImportTorchOptions } from './torch';
export { LstmModel, loadModel, toModelConfig, METADATA_KEYS, type EvalResult, type EvaluateOptions, type LoadOptions, type ModelConfig } from './model';
export {
  parseTrainConfig,
  parseGenerateOptions,
  TrainConfigSchema,
  GenerateOptionsSchema,
  parseStreamOptions,
  StreamOptionsSchema,
  LrScheduleSchema,
  EarlyStoppingSchema,
  TRAIN_DEFAULTS,
  type TrainConfig,
  type TrainConfigInput,
  type GenerateOptions,
  type GenerateOptionsInput,
  type StreamOptions,
  type StreamOptionsInput,
  type LrScheduleConfig,
  type EarlyStoppingConfig,
} from './config';
export type { StartInfo, StepInfo, EvalInfo, EpochInfo, TrainHistory, CheckpointInfo } from './events';
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
export type { TrainOptions, LrScheduleOptions, EarlyStoppingOptions } from './train-options';
export { engineInfo, type Device, type EngineInfo, type Precision } from './native';

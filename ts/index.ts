/** lstmgen: train and sample LSTM language models from TypeScript on a Rust (candle) engine. */

export {
  checkpointName,
  type LoadedCheckpoint,
  listCheckpoints,
  RESUME_LOCKED,
  readCheckpoint,
  TRAINING_KEY,
  type TrainingState,
} from './checkpoint';
export {
  type EarlyStoppingConfig,
  EarlyStoppingSchema,
  type GenerateOptions,
  type GenerateOptionsInput,
  GenerateOptionsSchema,
  type LrScheduleConfig,
  LrScheduleSchema,
  parseGenerateOptions,
  parseStreamOptions,
  parseTrainConfig,
  type StreamOptions,
  type StreamOptionsInput,
  StreamOptionsSchema,
  TRAIN_DEFAULTS,
  type TrainConfig,
  type TrainConfigInput,
  TrainConfigSchema,
} from './config';
export {
  type Batch,
  type BatchLayout,
  BUILTIN_CORPORA,
  batchLayout,
  type CorpusSource,
  loadCorpus,
  makeBatches,
  splitText,
} from './data';
export {
  ConfigError,
  DataError,
  DeviceError,
  type ErrorCode,
  LstmgenError,
  ModelFileError,
  NativeError,
  NumericError,
  wrapNative,
} from './errors';
export type { CheckpointInfo, EpochInfo, EvalInfo, StartInfo, StepInfo, TrainHistory } from './events';
export { accuracy, bitsPerChar, perplexity } from './metrics';
export {
  type EvalResult,
  type EvaluateOptions,
  type LoadOptions,
  LstmModel,
  loadModel,
  METADATA_KEYS,
  type ModelConfig,
  toModelConfig,
} from './model';
export { type Device, type EngineInfo, engineInfo, type Precision } from './native';
export { type PlateauState, PlateauTracker } from './plateau';
export { type PlotOptions, plotRun } from './plot';
export { RunLog, type RunRecord, readRunLog } from './runlog';
export { LrSchedule, type ScheduleState } from './schedule';
export {
  buildTokenizer,
  CharTokenizer,
  type EncodeOptions,
  EOS,
  type Tokenizer,
  type TokenizerJSON,
  type TokenizerOptions,
  tokenizerFromJSON,
  UNK,
  WordTokenizer,
} from './tokenizer';
export { type ImportTorchOptions, importTorch } from './torch';
export { DEFAULT_CHECKPOINT_EVERY, DEFAULT_KEEP_CHECKPOINTS, dropoutSeed, type TrainResult, train } from './train';
export type { EarlyStoppingOptions, LrScheduleOptions, TrainOptions } from './train-options';

/** lstmgen: train and sample LSTM language models from TypeScript on a Rust (candle) engine. The public API. */

export {
  type EarlyStoppingConfig,
  type EarlyStoppingOptions,
  EarlyStoppingSchema,
  type EvaluateOptions,
  EXPORT_FORMATS,
  type ExportFormat,
  type ExportOptions,
  ExportOptionsSchema,
  type GenerateOptions,
  type GenerateOptionsInput,
  GenerateOptionsSchema,
  type GenerationControls,
  type GenerationControlsInput,
  GenerationControlsSchema,
  type LoadOptions,
  type LrScheduleConfig,
  type LrScheduleOptions,
  LrScheduleSchema,
  ONLY_NOVEL_ATTEMPTS,
  parseGenerateOptions,
  parseStreamOptions,
  parseTrainConfig,
  type ServeOptions,
  type ServeOptionsInput,
  ServeOptionsSchema,
  type SessionNextOptionsInput,
  type SessionOptionsInput,
  type SessionSampleOptionsInput,
  type StreamOptions,
  type StreamOptionsInput,
  StreamOptionsSchema,
  TRAIN_DEFAULTS,
  type TrainConfig,
  type TrainConfigInput,
  TrainConfigSchema,
  type TrainOptions,
} from './config';
export {
  type CorpusOptions,
  type CorpusSplit,
  corpusStream,
  type DataProgress,
  loadCorpus,
  splitCorpus,
  type TokenizedCorpus,
  tokenizeCorpus,
} from './corpus/dataset';
export { CORPUS_ENCODINGS, type CorpusEncoding } from './corpus/read';
export { CORPUS_FORMATS, type CorpusFormat } from './corpus/records';
export { MAX_RECORD_HASHES, recordHash, TrainingRecords } from './corpus/recordset';
export {
  BUILTIN_CORPORA,
  BUILTIN_PREFIX,
  type CorpusDocument,
  type CorpusItem,
  type CorpusSource,
  resolveCorpus,
} from './corpus/sources';
export {
  type Batch,
  type BatchLayout,
  batchLayout,
  idStream,
  makeBatches,
  recordStream,
  sliceStream,
  splitText,
  type TokenStream,
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
export type {
  AveragingInfo,
  CheckpointInfo,
  EpochInfo,
  EvalInfo,
  GenerateWarningCode,
  SampleInfo,
  StartInfo,
  StepInfo,
  TrainHistory,
  TrainWarningCode,
} from './events';
export { TFJS_SHARD_BYTES } from './export/tfjs';
/** `exportModel` is also exported as `export` (`lstmgen.export(model, options)`; `export` is a reserved word). */
export { type ExportResult, exportModel, exportModel as export } from './export/write';
export { type ImportTorchOptions, importTorch } from './interop/torch';
export type { OutputFile } from './io/paths';
export { accuracy, bitsPerChar, perplexity, streamChars } from './metrics';
export {
  type EvalResult,
  LstmModel,
  loadModel,
  METADATA_KEYS,
  type ModelConfig,
  type ModelSummary,
  RECORDS_KEY,
  type TensorSummary,
  toModelConfig,
} from './model';
export type { Precision } from './native/handle';
export { type Device, type EngineInfo, engineInfo } from './native/loader';
export type { GeneratedRecord } from './sampling/records';
export { type NextToken, Session } from './sampling/session';
export { type Server, serve } from './serve/server';
export {
  BOUNDARY,
  BpeTokenizer,
  buildTokenizer,
  CharTokenizer,
  type EncodeOptions,
  EOS,
  idArray,
  TextStream,
  type TokenIds,
  type Tokenizer,
  type TokenizerJSON,
  type TokenizerKind,
  type TokenizerOptions,
  tokenizerFromFile,
  tokenizerFromJSON,
  UNK,
  WORD_SPLITS,
  type WordSplit,
  WordTokenizer,
} from './tokenizer';
export {
  checkpointName,
  type LoadedCheckpoint,
  listCheckpoints,
  RESUME_LOCKED,
  readCheckpoint,
  TRAINING_KEY,
  type TrainingState,
} from './train/checkpoint';
export { DEFAULT_CHECKPOINT_EVERY, DEFAULT_KEEP_CHECKPOINTS, dropoutSeed, type TrainResult, train } from './train/loop';
export { type PlateauState, PlateauTracker } from './train/plateau';
export { type PlotOptions, plotRun } from './train/plot';
export { RunLog, type RunRecord, readRunLog } from './train/runlog';
export { LrSchedule, type ScheduleState } from './train/schedule';

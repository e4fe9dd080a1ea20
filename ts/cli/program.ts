/**
 * The `lstmgen` commands and their flags. A flag that sets an option is made by {@link fieldFlag} from the
 * option's schema field, so its help text and default are the schema's; only the flags of the CLI itself
 * (`--out`, `--json`, `--model`, `--lr-schedule`'s syntax) are described here.
 */
import { Command } from 'commander';
import {
  EarlyStoppingSchema,
  EvaluateOptionsSchema,
  EXPORT_FORMATS,
  ExportOptionsSchema,
  GenerateOptionsSchema,
  LoadOptionsSchema,
  TrainConfigSchema,
} from '../config';
import { CORPUS_ENCODINGS } from '../corpus/read';
import { CORPUS_FORMATS } from '../corpus/records';
import { PRECISIONS } from '../native/handle';
import { DEFAULT_CHECKPOINT_EVERY, DEFAULT_KEEP_CHECKPOINTS } from '../train/loop';
import { packageVersion } from '../version';
import { evalCommand, exportCommand, generateCommand, infoCommand, plotCommand, trainCommand } from './commands';
import { collect, type FlagSpec, fieldFlag, LR_SCHEDULE_SYNTAX, number, parseLrSchedule, tokenizerFlag } from './flags';
import { addServeCommand } from './serve';
import { tokenizeCommand } from './tokenize';

/** The flags of how corpus files are read (`train` and `eval`). */
const DATA_FLAGS: Array<[field: string, spec: FlagSpec]> = [
  ['format', { arg: '<format>' }],
  ['field', { arg: '<name>' }],
  ['extensions', { arg: '<ext>', parse: collect, name: 'ext' }],
  ['encoding', { arg: '<encoding>' }],
  ['cacheDir', { arg: '<dir>' }],
];

/** The train options that are flags of `lstmgen train`, in help order, with their value placeholders. */
const TRAIN_FLAGS: Array<[field: string, spec: FlagSpec]> = [
  ['valCorpus', { arg: '<path>', parse: collect }],
  ['tokenizer', { arg: '<kind>', parse: tokenizerFlag }],
  ['vocabSize', { arg: '<n>', parse: number }],
  ['lowercase', {}],
  ['wordSplit', { arg: '<split>' }],
  ['embeddingDim', { arg: '<n>', parse: number }],
  ['hiddenSize', { arg: '<n>', parse: number }],
  ['numLayers', { arg: '<n>', parse: number }],
  ['projSize', { arg: '<n>', parse: number }],
  ['dropout', { arg: '<p>', parse: number }],
  ['dropoutEmbedding', { arg: '<p>', parse: number }],
  ['dropoutHidden', { arg: '<p>', parse: number }],
  ['dropoutOutput', { arg: '<p>', parse: number }],
  ['dropoutWords', { arg: '<p>', parse: number }],
  ['weightDrop', { arg: '<p>', parse: number }],
  ['tieWeights', {}],
  ['ar', { arg: '<x>', parse: number }],
  ['tar', { arg: '<x>', parse: number }],
  ['seqLen', { arg: '<n>', parse: number }],
  ['batchSize', { arg: '<n>', parse: number }],
  ['epochs', { arg: '<n>', parse: number }],
  ['maxSteps', { arg: '<n>', parse: number }],
  ['lr', { arg: '<x>', parse: number }],
  ['optimizer', { arg: '<name>' }],
  ['momentum', { arg: '<x>', parse: number }],
  ['nonmono', { arg: '<n>', parse: number }],
  ['weightDecay', { arg: '<x>', parse: number }],
  ['clipNorm', { arg: '<x>', parse: number }],
  ['valFraction', { arg: '<f>', parse: number }],
  ['seed', { arg: '<n>', parse: number }],
  ['evalEvery', { arg: '<n>', parse: number }],
];

/** The train options of long runs, after `--lr-schedule` and `--early-stopping`. */
const RUN_FLAGS: Array<[field: string, spec: FlagSpec]> = [
  ['onNonFinite', { arg: '<policy>' }],
  ['checkpointDir', { arg: '<dir>' }],
  ['checkpointEvery', { arg: '<n>', parse: number, shownDefault: DEFAULT_CHECKPOINT_EVERY }],
  ['keepCheckpoints', { arg: '<k>', parse: number, name: 'keep', shownDefault: DEFAULT_KEEP_CHECKPOINTS }],
  ['resumeFrom', { arg: '<file>', name: 'resume' }],
  ['initFrom', { arg: '<file>' }],
  ['extendVocab', {}],
  ['logFile', { arg: '<file>', name: 'log' }],
  ['sampleEvery', { arg: '<n>', parse: number }],
  ['samplePrompt', { arg: '<text>' }],
  ['sampleTokens', { arg: '<n>', parse: number }],
  ['sampleTemperature', { arg: '<t>', parse: number }],
  ['sampleSeed', { arg: '<n>', parse: number }],
];

/** The generate options that are flags of `lstmgen generate`. */
const GENERATE_FLAGS: Array<[field: string, spec: FlagSpec]> = [
  ['prompt', { arg: '<text>' }],
  ['maxTokens', { arg: '<n>', parse: number }],
  ['temperature', { arg: '<t>', parse: number }],
  ['topK', { arg: '<k>', parse: number }],
  ['topP', { arg: '<p>', parse: number }],
  ['numSamples', { arg: '<n>', parse: number }],
  ['seed', { arg: '<n>', parse: number }],
  ['stop', { arg: '<text>', parse: collect }],
  ['strict', {}],
  ['records', { arg: '<n>', parse: number }],
  ['onlyNovel', {}],
  ['repetitionPenalty', { arg: '<x>', parse: number }],
  ['frequencyPenalty', { arg: '<x>', parse: number }],
  ['noRepeatNgram', { arg: '<n>', parse: number, name: 'block-ngrams' }],
  ['penaltyWindow', { arg: '<n>', parse: number }],
  ['bannedTokens', { arg: '<token>', parse: collect }],
  ['minTokens', { arg: '<n>', parse: number }],
];

/** A data flag: {@link fieldFlag}, limited to the schema's choices where the field is an enum. */
function dataFlag(schema: typeof TrainConfigSchema, field: string, spec: FlagSpec) {
  const option = fieldFlag(schema, field, spec);
  const choices = { format: CORPUS_FORMATS, encoding: CORPUS_ENCODINGS }[field as 'format' | 'encoding'];
  return choices ? option.choices(choices) : option;
}

/** `--device` and `--precision` of the commands that load a model. */
function loadFlags(command: Command): Command {
  return command
    .addOption(fieldFlag(LoadOptionsSchema, 'device', { arg: '<device>' }))
    .addOption(fieldFlag(LoadOptionsSchema, 'precision', { arg: '<p>' }).choices(PRECISIONS));
}

/** The commander program of `lstmgen`. */
export function buildProgram(): Command {
  const program = new Command('lstmgen')
    .description('Train and sample LSTM language models (Rust/candle engine)')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`lstmgen: ${text.replace(/^error: /, '')}`) });

  const trainCmd = program
    .command('train')
    .description('train a model on a text corpus and save it')
    .addOption(fieldFlag(TrainConfigSchema, 'corpus', { arg: '<path>', parse: collect }).makeOptionMandatory());
  for (const [field, spec] of TRAIN_FLAGS) {
    trainCmd.addOption(fieldFlag(TrainConfigSchema, field, spec));
    if (field === 'lowercase') trainCmd.option('--no-lowercase', 'word tokenizer: keep the case of the text');
  }
  for (const [field, spec] of DATA_FLAGS) trainCmd.addOption(dataFlag(TrainConfigSchema, field, spec));
  trainCmd
    .option('--lr-schedule <spec>', LR_SCHEDULE_SYNTAX, parseLrSchedule)
    .addOption(
      fieldFlag(EarlyStoppingSchema, 'patience', { arg: '<patience>', parse: number, name: 'early-stopping' }),
    );
  for (const [field, spec] of RUN_FLAGS) trainCmd.addOption(fieldFlag(TrainConfigSchema, field, spec));
  trainCmd
    .addOption(fieldFlag(TrainConfigSchema, 'device', { arg: '<device>' }))
    .addOption(fieldFlag(TrainConfigSchema, 'precision', { arg: '<p>' }).choices(PRECISIONS))
    .option('--out <file>', 'model file to write', 'model.lstm')
    .option('--json', 'JSON lines on stdout')
    .action(trainCommand);

  const generateCmd = program
    .command('generate')
    .description('sample text from a saved model')
    .requiredOption('--model <file>', 'model file');
  for (const [field, spec] of GENERATE_FLAGS) generateCmd.addOption(fieldFlag(GenerateOptionsSchema, field, spec));
  loadFlags(generateCmd)
    .option('--json', 'print {"samples":[...]}, or with --records {"records":[{"text","novel","end"}]}')
    .action(generateCommand);

  const evalCmd = program
    .command('eval')
    .description('evaluate a saved model on a corpus')
    .requiredOption('--model <file>', 'model file')
    .addOption(fieldFlag(TrainConfigSchema, 'corpus', { arg: '<path>', parse: collect }).makeOptionMandatory())
    .addOption(fieldFlag(EvaluateOptionsSchema, 'batchSize', { arg: '<n>', parse: number }))
    .addOption(fieldFlag(EvaluateOptionsSchema, 'seqLen', { arg: '<n>', parse: number }));
  // eval reads a corpus as train does: the train options' flags, whose defaults are the model's here
  for (const [field, spec] of DATA_FLAGS) evalCmd.addOption(dataFlag(TrainConfigSchema, field, spec));
  loadFlags(evalCmd)
    .option('--json', 'print {"loss","perplexity","accuracy","bitsPerChar","tokens"}')
    .action(evalCommand);

  program
    .command('plot')
    .description('draw the loss curves and learning rate of a metrics log (train --log) as SVG')
    .argument('<run.jsonl>', 'metrics log written by train --log')
    .requiredOption('-o, --out <file.svg>', 'SVG file to write')
    .option('--title <text>', 'chart title (default: the log file name)')
    .option('--json', 'print {"path"}')
    .action(plotCommand);

  addServeCommand(program);

  program
    .command('export')
    .description('write a model for TensorFlow.js (a directory) or ONNX runtimes (a file)')
    .argument('[out]', 'output directory (tfjs) or file (onnx); or --out')
    .requiredOption('--model <file>', 'model file')
    .addOption(
      fieldFlag(ExportOptionsSchema, 'format', { arg: '<format>' }).choices(EXPORT_FORMATS).makeOptionMandatory(),
    )
    .addOption(fieldFlag(ExportOptionsSchema, 'out', { arg: '<path>' }))
    .addOption(fieldFlag(ExportOptionsSchema, 'force'))
    .option('--no-state-inputs', 'onnx: no h0/c0 inputs, every run starts from zero states')
    .option('--json', 'print {"format","files","bytes"}')
    .action(exportCommand);

  program
    .command('tokenize')
    .description("print the token ids and pieces of a text under a model's tokenizer")
    .requiredOption('--model <file>', 'model file')
    .option('--text <s>', 'the text (default: standard input)')
    .option('--json', 'print {"ids","tokens","pieces","chars"}')
    .action(tokenizeCommand);

  program
    .command('info')
    .description('show the native build and device in use (and why CUDA is not used)')
    .option(
      '--json',
      'print {"binary","binaryPath","device","cudaCompiled","candleVersion","threads","cpuGemm","cudaRecurrence","fallbackReason"}',
    )
    .action(infoCommand);
  return program;
}

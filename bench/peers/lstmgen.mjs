// lstmgen peer: trains through the public API (`train()` of dist/), on the same text the harness tokenized.
// Extra flags: --train-text FILE --val-text FILE --tokenizer char|word --device cpu|cuda --precision f32|bf16 --system NAME.
// The token ids lstmgen builds from the text are checked against the harness's --train/--val files.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { emit, log, parseArgs, readIds, requireOrSkip, skip } from './common.mjs';

const a = parseArgs();
const system = a.raw.system ?? 'lstmgen';
const device = a.raw.device ?? 'cpu';
const precision = a.raw.precision ?? 'f32';
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);

const lstmgen = requireOrSkip(system, path.join(repo, 'dist'), 'dist/', 'run npm run build');

const trainText = fs.readFileSync(a.raw['train-text'], 'utf8');
const valText = fs.readFileSync(a.raw['val-text'], 'utf8');
const trainIds = readIds(a.train);
const valIds = readIds(a.val);
const kind = a.raw.tokenizer ?? 'char';

const total = a.warmup + a.steps;
let prev = 0;
let prevEpoch = 1;
let timed = 0;
const stepSeconds = [];
const losses = [];
let result;
try {
  result = await lstmgen.train({
    corpus: { text: trainText },
    valCorpus: { text: valText },
    tokenizer: kind,
    // the char vocabulary is every symbol of the text; a vocabulary size applies to word (and bpe) tokens only,
    // lower-casing to words only
    ...(kind === 'char' ? {} : { vocabSize: a.vocab }),
    ...(kind === 'word' ? { lowercase: true } : {}),
    embeddingDim: a.embedding,
    hiddenSize: a.hidden,
    numLayers: a.layers,
    seqLen: a.seq,
    batchSize: a.batch,
    maxSteps: total,
    lr: a.lr,
    clipNorm: a.clip,
    seed: a.seed,
    device,
    precision,
    onStart: (info) => {
      if (info.trainTokens !== trainIds.length || info.valTokens !== valIds.length || info.vocabSize !== a.vocab) {
        throw new Error(
          `lstmgen tokenized differently from the harness: train ${info.trainTokens} vs ${trainIds.length} tokens, ` +
            `val ${info.valTokens} vs ${valIds.length}, vocab ${info.vocabSize} vs ${a.vocab}`,
        );
      }
      log('BENCH train-start');
      prev = performance.now();
    },
    onStep: (info) => {
      const now = performance.now();
      losses.push(info.loss);
      if (info.step > a.warmup) {
        // wall clock between steps; across an epoch boundary (validation ran in between) the native step time
        const s = info.epoch === prevEpoch ? (now - prev) / 1000 : (a.batch * a.seq) / info.tokensPerSec;
        stepSeconds.push(s);
        timed += s;
      }
      prevEpoch = info.epoch;
      prev = now;
      log(`step ${info.step}/${total} loss ${info.loss.toFixed(4)}${info.step <= a.warmup ? ' (warm-up)' : ''}`);
    },
  });
} catch (err) {
  if (err?.code === 'E_DEVICE') skip(system, String(err.message).split('\n')[0]);
  throw err;
}
const { model, history } = result;
const lastEpoch = history.epochs[history.epochs.length - 1];

// The prompt: lstmgen encodes the text; check it matches the ids the other peers get.
const promptText = a.raw['prompt-text'] ?? '';
const promptIds = Array.from(model.tokenizer.encode(promptText));
if (promptIds.join(',') !== a.prompt.join(',')) throw new Error(`prompt ids differ: ${promptIds} vs ${a.prompt}`);
await model.generate({
  prompt: promptText,
  maxTokens: 2,
  numSamples: a.genSamples,
  temperature: a.temperature,
  seed: a.seed,
}); // warm-up
const g0 = performance.now();
const samples = await model.generate({
  prompt: promptText,
  maxTokens: a.genTokens,
  numSamples: a.genSamples,
  temperature: a.temperature,
  seed: a.seed,
});
const genSeconds = (performance.now() - g0) / 1000;
const genTokens = a.genSamples * a.genTokens;

const tokens = a.steps * a.batch * a.seq;
emit({
  system,
  status: 'ok',
  trainSteps: a.steps,
  warmupSteps: a.warmup,
  trainTokens: tokens,
  trainSeconds: timed,
  trainTokensPerSec: tokens / timed,
  stepSeconds,
  firstLoss: losses[0],
  lastLoss: losses[losses.length - 1],
  valLoss: lastEpoch.valLoss,
  valTokens: valIds.length - 1,
  genTokens,
  genSeconds,
  genTokensPerSec: genTokens / genSeconds,
  sample: samples[0].slice(0, 120),
  threads: Number(process.env.RAYON_NUM_THREADS) || os.availableParallelism(),
  versions: {
    lstmgen: require(path.join(repo, 'package.json')).version,
    node: process.version,
    device: model.device,
    precision: model.precision,
  },
  matmulLibrary: device === 'cpu' ? lstmgen.engineInfo().cpuGemm : 'candle on CUDA (cuBLAS)',
  epochEnds: history.epochs.length,
  notes: [
    "the ids lstmgen builds from the text are checked equal to the harness's",
    'train() and model.generate() of dist/; validation at an epoch end is excluded from training time',
  ],
});

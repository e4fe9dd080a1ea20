#!/usr/bin/env node
/**
 * Tokenizer comparison: char vs word vs byte-level BPE (vocabularies 512, 2,048, 8,192) LSTMs trained for the same
 * wall-clock budget on tinyshakespeare and on Moby-Dick, compared on validation bits per character (total nats /
 * code points of the validation text / ln 2, so the tokenizers compare on the same text), training characters
 * per second and generation characters per second.
 *
 *   npm run build:ts && node bench/tokenizers.mjs [--budget 90] [--out bench/results/tokenizers.md]
 *
 * Each corpus is cut at 90% of its characters (at a line break): the first part trains, the rest validates.
 * Every model: embeddingDim 64, hiddenSize 256, 1 layer, seqLen 64, batchSize 32, lr 3e-3, seed 1; training
 * stops when the budget (seconds, vocabulary building excluded) runs out. tinyshakespeare is read from
 * $LSTMGEN_DATA_DIR/tinyshakespeare/input.txt (default ../shared/data beside the repository); without it only
 * Moby-Dick runs.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const require = createRequire(import.meta.url);
const lib = require(path.join(repo, 'dist'));

function flag(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const budget = Number(flag('budget', '90'));
const out = flag('out', path.join(repo, 'bench', 'results', 'tokenizers.md'));
const dataDir = path.resolve(repo, process.env.LSTMGEN_DATA_DIR ?? '../shared/data');
const MODELS = [
  { name: 'char', tokenizer: 'char' },
  { name: 'word (10,000)', tokenizer: 'word', vocabSize: 10000 },
  { name: 'BPE 512', tokenizer: 'bpe', vocabSize: 512 },
  { name: 'BPE 2,048', tokenizer: 'bpe', vocabSize: 2048 },
  { name: 'BPE 8,192', tokenizer: 'bpe', vocabSize: 8192 },
];
const SHAPE = { embeddingDim: 64, hiddenSize: 256, numLayers: 1, seqLen: 64, batchSize: 32, lr: 3e-3, seed: 1 };

/** The corpora: name and text. */
async function corpora() {
  const list = [];
  const shakespeare = path.join(dataDir, 'tinyshakespeare', 'input.txt');
  if (fs.existsSync(shakespeare)) list.push({ name: 'tinyshakespeare', text: fs.readFileSync(shakespeare, 'utf8') });
  const [moby] = await lib.loadCorpus('builtin:moby-dick');
  list.push({ name: 'Moby-Dick', text: moby });
  return list;
}

/** `text` cut at the first line break after 90% of it. */
function split(text) {
  const at = text.indexOf('\n', Math.floor(0.9 * text.length)) + 1;
  return { train: text.slice(0, at), val: text.slice(at) };
}

const points = (s) => [...s].length;

async function run(corpus, spec) {
  const { train, val } = split(corpus.text);
  const controller = new AbortController();
  let timer;
  const t0 = performance.now();
  const { model, history } = await lib.train({
    ...SHAPE,
    corpus: { text: train },
    valCorpus: { text: val },
    tokenizer: spec.tokenizer,
    ...(spec.vocabSize ? { vocabSize: spec.vocabSize } : {}),
    epochs: 1000,
    device: 'cpu',
    signal: controller.signal,
    onWarning: () => {},
    onStart: () => {
      timer = setTimeout(() => controller.abort(), budget * 1000);
    },
  });
  clearTimeout(timer);
  const wall = (performance.now() - t0) / 1000;
  const trainTokens = model.tokenizer.encode(train, { onWarning: () => {} }).length;
  const charsPerToken = points(train) / trainTokens;
  const ev = await model.evaluate({ text: val });
  const g0 = performance.now();
  const samples = await model.generate({ prompt: '', numSamples: 16, maxTokens: 200, temperature: 0.8, seed: 1 });
  const genSeconds = (performance.now() - g0) / 1000;
  const genChars = samples.reduce((n, s) => n + points(s), 0);
  return {
    corpus: corpus.name,
    model: spec.name,
    vocabSize: model.tokenizer.vocabSize,
    steps: history.steps.length,
    wall,
    charsPerToken,
    valBitsPerChar: ev.bitsPerChar,
    valLoss: ev.loss,
    trainTokensPerSec: history.tokensPerSec,
    trainCharsPerSec: history.tokensPerSec * charsPerToken,
    genCharsPerSec: genChars / genSeconds,
    sample: samples[0].slice(0, 120),
  };
}

const rows = [];
const load = os.loadavg()[0];
for (const corpus of await corpora()) {
  for (const spec of MODELS) {
    const r = await run(corpus, spec);
    rows.push(r);
    process.stderr.write(`${JSON.stringify(r)}\n`);
  }
}
const f = (x, d = 0) => x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
const lines = [
  '# Tokenizer comparison',
  '',
  `Command: \`npm run build:ts && node bench/tokenizers.mjs --budget ${budget}\` (${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'CPU'}, Node ${process.version}; load average ${load.toFixed(1)} when it started: the machine was shared).`,
  `Every model trains for ${budget} s of wall clock (after its vocabulary is built) with E 64, H 256, 1 layer, seqLen 64, batch 32, lr 3e-3,`,
  'seed 1, on the first 90% of the corpus; the last 10% validates. Bits per character = total nats / code points of the',
  'validation text / ln 2 (the same text for every tokenizer). Training chars/s = training tokens/s x characters per token of',
  'the training text; generation chars/s: 16 samples of 200 tokens, temperature 0.8, one call.',
  '',
  '| corpus | tokenizer | vocabulary | chars/token | steps | val bits/char | val loss (nats/token) | train tokens/s | train chars/s | generation chars/s |',
  '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map(
    (r) =>
      `| ${r.corpus} | ${r.model} | ${f(r.vocabSize)} | ${f(r.charsPerToken, 2)} | ${f(r.steps)} | ${f(r.valBitsPerChar, 3)} | ${f(r.valLoss, 3)} | ${f(r.trainTokensPerSec)} | ${f(r.trainCharsPerSec)} | ${f(r.genCharsPerSec)} |`,
  ),
  '',
  'The word model lower-cases and maps words outside its vocabulary to `<unk>` (whose text, `<unk>`, counts 5 characters),',
  'so its bits per character are of a normalized text, not strictly comparable to the others.',
  '',
  'First sample of each model (120 characters):',
  '',
  ...rows.map((r) => `- ${r.corpus}, ${r.model}: ${JSON.stringify(r.sample)}`),
  '',
];
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, lines.join('\n'));
process.stderr.write(`wrote ${out}\n`);

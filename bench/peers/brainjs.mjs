// brain.js peer (brain.js 1.6.1, `recurrent.LSTM`, pure JavaScript, one thread). brain.js has no minibatches
// and no carried state: it trains one sequence at a time, each from a zero state and its START token, and
// updates the weights after each sequence (its own RMSprop with per-element clipping). So one "step" here is
// ONE sequence of seqLen tokens (batch 1); tokens/s counts seqLen tokens per step, like the other peers.
// The sequences are the rows of the same [batch, seqLen] batches the other peers train on, in order.
// Loss: the same next-token cross-entropy (nats) over the seqLen targets, computed through brain.js's own
// Equation.predictTargetIndex (its START->first and last->END predictions are trained but not counted).
// Takes the common benchmark flags (see common.mjs) and prints one JSON line.
import { createRequire } from 'node:module';
import {
  batches,
  emit,
  evalBatchSize,
  log,
  parseArgs,
  peakRssMiB,
  readIds,
  requireOrSkip,
  trainBatches,
} from './common.mjs';

const SYSTEM = 'brainjs';
const a = parseArgs();
const brain = requireOrSkip(SYSTEM, 'brain.js', 'brain.js', 'npm install');
const require = createRequire(import.meta.url); // brain.js internals (sampling helpers) and its version
const baseRss = peakRssMiB();
const trainIds = readIds(a.train);
const valIds = readIds(a.val);
const LN2 = Math.log(2);

const net = new brain.recurrent.LSTM({
  inputSize: a.embedding, // brain.js's inputSize is the width of its input (embedding) matrix
  inputRange: a.vocab, // rows of that matrix: ids + 1 (brain.js keeps 0 for START/END)
  hiddenLayers: Array(a.layers).fill(a.hidden),
  outputSize: a.vocab,
  learningRate: a.lr,
  clipval: a.clip,
});
net.initialize();

/** Forward pass of one sequence as brain.js's trainInput; returns the summed -ln p of the tokens after the first. */
function forward(seq) {
  const model = net.model;
  while (model.equations.length <= seq.length + 1) net.bindEquation();
  let nats = 0;
  for (let i = -1; i < seq.length; i++) {
    const source = i === -1 ? 0 : seq[i] + 1;
    const target = i === seq.length - 1 ? 0 : seq[i + 1] + 1;
    const bits = model.equations[i + 1].predictTargetIndex(source, target);
    if (i >= 0 && i < seq.length - 1) nats += bits * LN2;
  }
  return nats;
}

/** One training sequence = one brain.js trainPattern (forward, backpropagate, adjustWeights). */
function trainSequence(seq) {
  net.runs++;
  const nats = forward(seq);
  net.backpropagate(seq);
  net.adjustWeights();
  return nats / (seq.length - 1);
}

/** Row `r` of a batch as one sequence of T + 1 tokens (inputs then the last target). */
function row(b, r) {
  const seq = new Array(b.seq + 1);
  for (let t = 0; t < b.seq; t++) seq[t] = b.inputs[r * b.seq + t];
  seq[b.seq] = b.targets[r * b.seq + b.seq - 1];
  return seq;
}

// training: the rows of the common batches, one sequence per step
const it = trainBatches(trainIds, a.batch, a.seq);
let batch = it.next().value;
let r = 0;
const losses = [];
const stepSeconds = [];
log('BENCH train-start');
let t0 = performance.now();
for (let s = 0; s < a.warmup + a.steps; s++) {
  if (s === a.warmup) t0 = performance.now();
  const s0 = performance.now();
  if (r === a.batch) {
    batch = it.next().value;
    r = 0;
  }
  const loss = trainSequence(row(batch, r++));
  if (s >= a.warmup) stepSeconds.push((performance.now() - s0) / 1000);
  losses.push(loss);
  log(`step ${s + 1}/${a.warmup + a.steps} (one sequence) loss ${loss.toFixed(4)}${s < a.warmup ? ' (warm-up)' : ''}`);
}
const trainSeconds = (performance.now() - t0) / 1000;
const trainTokens = a.steps * a.seq;

// validation: the same eval layout, each row a sequence from a zero state (brain.js carries no state)
let valLoss = null;
let count = 0;
if (a.raw['no-val'] !== 'true') {
  let total = 0;
  for (const b of batches(valIds, evalBatchSize(valIds.length, a.batch, a.seq), a.seq, false)) {
    for (let i = 0; i < b.batch; i++) {
      total += forward(row(b, i));
      count += b.seq;
    }
  }
  valLoss = total / count;
}

// generation: brain.js samples one sequence at a time (its run() loop, without stopping at END)
const softmax = require('brain.js/dist/recurrent/matrix/softmax').default;
const sampleI = require('brain.js/dist/recurrent/matrix/sample-i').default;
const Matrix = require('brain.js/dist/recurrent/matrix').default;
function sampleOne(n) {
  const model = net.model;
  const prompt = a.prompt.length ? a.prompt : [0];
  let prev = 0;
  for (let i = 0; i < prompt.length + n; i++) {
    while (model.equations.length <= i) net.bindEquation();
    const out = model.equations[i].runIndex(prev);
    if (i < prompt.length) {
      prev = prompt[i] + 1;
      continue;
    }
    const logits = new Matrix(out.rows, out.columns);
    for (let j = 0; j < out.weights.length; j++) logits.weights[j] = out.weights[j] / a.temperature;
    prev = sampleI(softmax(logits));
  }
}
sampleOne(2); // warm-up
const g0 = performance.now();
for (let g = 0; g < a.genSamples; g++) sampleOne(a.genTokens);
const genSeconds = (performance.now() - g0) / 1000;
const genTokens = a.genSamples * a.genTokens;

emit({
  system: SYSTEM,
  status: 'ok',
  trainSteps: a.steps,
  warmupSteps: a.warmup,
  trainTokens,
  trainSeconds,
  trainTokensPerSec: trainTokens / trainSeconds,
  stepSeconds,
  firstLoss: losses[0],
  lastLoss: losses[losses.length - 1],
  valLoss,
  valTokens: count,
  genTokens,
  genSeconds,
  genTokensPerSec: genTokens / genSeconds,
  threads: 1,
  baseRssMiB: baseRss,
  versions: { 'brain.js': require('brain.js/package.json').version, node: process.version },
  matmulLibrary: "brain.js's own JavaScript loops",
  notes: [
    'batch 1: no minibatches; a step is one sequence of seqLen tokens with its own weight update',
    'no carried state between sequences (each starts from zero and START)',
    'its own RMSprop (per-element clip): its cache starts at zero, so the first updates are ~30x lr and the loss can rise',
    `${a.genSamples} samples generated one after another (no batched sampling)`,
    ...(valLoss === null ? ['validation skipped at this shape (too slow)'] : []),
  ],
});

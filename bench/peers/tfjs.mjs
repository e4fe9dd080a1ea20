// TensorFlow.js peer (@tensorflow/tfjs, pure-JS cpu backend): the tf.layers model a user would write,
// embedding -> stateful LSTM (returnSequences) x layers -> dense softmax, sparse categorical cross-entropy,
// Adam, trainOnBatch with the state carried between batches. tfjs's optimizers have no gradient clipping.
// Takes the common benchmark flags (see common.mjs) and prints one JSON line.
import {
  batches,
  emit,
  evalBatchSize,
  log,
  parseArgs,
  peakRssMiB,
  readIds,
  requireOrSkip,
  timedTraining,
} from './common.mjs';

const SYSTEM = 'tfjs';
const a = parseArgs();
const tf = requireOrSkip(SYSTEM, '@tensorflow/tfjs', '@tensorflow/tfjs', 'npm install');
// The faster backends do not train this model here: tfjs-node cannot be installed (its install step downloads
// libtensorflow), and @tensorflow/tfjs-backend-wasm 4.22.0 fails trainOnBatch with "Kernel 'UnsortedSegmentSum'
// not registered for backend 'wasm'" (the embedding gradient; checked by hand). So: the cpu backend.
await tf.setBackend('cpu');
await tf.ready();
const baseRss = peakRssMiB();

const trainIds = readIds(a.train);
const valIds = readIds(a.val);

/**
 * The model for `batch` rows; `fresh`: default initializers except the LSTM's recurrent kernel, glorotUniform
 * instead of orthogonal (tfjs's orthogonal init takes 20 s at hidden 128 and would take hours at 1024);
 * otherwise zeros (the weights are then copied in).
 */
function build(batch, fresh = true) {
  const inp = tf.input({ batchShape: [batch, null], dtype: 'int32' });
  let h = tf.layers
    .embedding({ inputDim: a.vocab, outputDim: a.embedding, ...(fresh ? {} : { embeddingsInitializer: 'zeros' }) })
    .apply(inp);
  for (let l = 0; l < a.layers; l++)
    h = tf.layers
      .lstm({
        units: a.hidden,
        returnSequences: true,
        stateful: true,
        ...(fresh
          ? { recurrentInitializer: 'glorotUniform' }
          : { kernelInitializer: 'zeros', recurrentInitializer: 'zeros' }),
      })
      .apply(h);
  const out = tf.layers
    .dense({ units: a.vocab, activation: 'softmax', ...(fresh ? {} : { kernelInitializer: 'zeros' }) })
    .apply(h);
  return tf.model({ inputs: inp, outputs: out });
}
const resetStates = (model) => model.resetStates();

const i0 = performance.now();
const model = build(a.batch);
model.compile({ optimizer: tf.train.adam(a.lr, 0.9, 0.999, 1e-8), loss: 'sparseCategoricalCrossentropy' });
log(`model built in ${((performance.now() - i0) / 1000).toFixed(1)} s`);

const result = await timedTraining(trainIds, a, async (b) => {
  if (b.first) resetStates(model);
  const x = tf.tensor2d(b.inputs, [b.batch, b.seq], 'int32');
  const y = tf.tensor3d(b.targets, [b.batch, b.seq, 1], 'float32');
  const loss = await model.trainOnBatch(x, y);
  x.dispose();
  y.dispose();
  return Array.isArray(loss) ? loss[0] : loss;
});

// validation: one pass with the carried state, last short batch included
let valLoss = null;
let count = 0;
if (a.raw['no-val'] !== 'true') {
  const eb = evalBatchSize(valIds.length, a.batch, a.seq);
  const ev = build(eb, false);
  ev.setWeights(model.getWeights());
  resetStates(ev);
  let total = 0;
  for (const b of batches(valIds, eb, a.seq, false)) {
    total += tf.tidy(() => {
      const p = ev.predictOnBatch(tf.tensor2d(b.inputs, [b.batch, b.seq], 'int32'));
      const flat = p.reshape([b.batch * b.seq, a.vocab]);
      const picked = tf.gather(
        flat.flatten(),
        tf.add(
          tf.mul(tf.range(0, b.batch * b.seq, 1, 'int32'), tf.scalar(a.vocab, 'int32')),
          tf.tensor1d(b.targets, 'int32'),
        ),
      );
      return tf
        .neg(tf.log(tf.maximum(picked, 1e-7)))
        .sum()
        .dataSync()[0];
    });
    count += b.targets.length;
  }
  valLoss = total / count;
}

// generation: a stateful batch-of-samples model, the prompt fed once, then one token per step
const gen = build(a.genSamples, false);
gen.setWeights(model.getWeights());
let seed = a.seed;
function generate(n) {
  resetStates(gen);
  const prompt = a.prompt.length ? a.prompt : [0];
  const rows = new Int32Array(a.genSamples * prompt.length);
  for (let g = 0; g < a.genSamples; g++) rows.set(prompt, g * prompt.length);
  let last = tf.tidy(() => {
    const p = gen.predictOnBatch(tf.tensor2d(rows, [a.genSamples, prompt.length], 'int32'));
    return p.slice([0, prompt.length - 1, 0], [a.genSamples, 1, a.vocab]).reshape([a.genSamples, a.vocab]);
  });
  for (let i = 0; i < n; i++) {
    const next = tf.tidy(() => {
      const logits = tf.div(tf.log(tf.maximum(last, 1e-30)), a.temperature);
      return tf.multinomial(logits, 1, seed++).toInt();
    });
    last.dispose();
    last = tf.tidy(() => gen.predictOnBatch(next).reshape([a.genSamples, a.vocab]));
    next.dispose();
  }
  last.dataSync();
  last.dispose();
}
generate(2); // warm-up
const g0 = performance.now();
generate(a.genTokens);
const genSeconds = (performance.now() - g0) / 1000;
const genTokens = a.genSamples * a.genTokens;
log(`tensors alive: ${tf.memory().numTensors}`);

emit({
  ...result,
  system: SYSTEM,
  status: 'ok',
  valLoss,
  valTokens: count,
  genTokens,
  genSeconds,
  genTokensPerSec: genTokens / genSeconds,
  threads: 1,
  baseRssMiB: baseRss,
  versions: { tfjs: tf.version.tfjs, backend: tf.getBackend(), node: process.version },
  matmulLibrary: `tfjs ${tf.getBackend()} backend's own JavaScript loops`,
  notes: [
    ...(valLoss === null ? ['validation skipped at this shape (too slow)'] : []),
    `backend ${tf.getBackend()} (single-threaded JavaScript); wasm lacks UnsortedSegmentSum (embedding gradient), tfjs-node cannot install here`,
    'no gradient clipping (tfjs optimizers have none)',
    'softmax + sparseCategoricalCrossentropy (tfjs losses take probabilities)',
  ],
});

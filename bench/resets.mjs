#!/usr/bin/env node
/**
 * What the state reset at record boundaries costs a training step: tokens/s of the same batches of short records
 * (4 to 10 tokens, so nearly every step has rows that reset) trained with the boundary id and without it,
 * alternated rounds on one model, and the median ratio.
 *
 *   npm run build && node bench/resets.mjs [--hidden 256] [--batch 32] [--seq 64] [--rounds 4] [--steps 15]
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { NativeHandle } = createRequire(import.meta.url)(path.join(repo, 'dist', 'native', 'handle.js'));

function flag(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const [V, H, B, T] = [30, flag('hidden', 256), flag('batch', 32), flag('seq', 64)];
const [rounds, steps] = [flag('rounds', 4), flag('steps', 15)];
const BOUNDARY = 1;
// records of 4 to 10 tokens, each after a boundary
const ids = new Uint32Array(B * T + 1);
for (let i = 0, left = 0; i < ids.length; i++) {
  if (left === 0) [ids[i], left] = [BOUNDARY, 4 + ((i * 7) % 7)];
  else [ids[i], left] = [2 + ((i * 13) % (V - 2)), left - 1];
}
const inputs = ids.subarray(0, B * T);
const targets = ids.subarray(1);
const opt = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, clipNorm: 5 };
const model = NativeHandle.create(
  { vocabSize: V, embeddingDim: 64, hiddenSize: H, numLayers: 1, dropout: 0 },
  1,
  'cpu',
);
let step = 0;
async function rate(boundary, n) {
  const t0 = performance.now();
  for (let s = 0; s < n; s++) await model.trainStep(inputs, targets, B, T, opt, step++, boundary);
  return (n * B * T) / ((performance.now() - t0) / 1000);
}
await rate(null, 3); // warm-up
const plain = [];
const reset = [];
for (let r = 0; r < rounds; r++) {
  plain.push(await rate(null, steps));
  reset.push(await rate(BOUNDARY, steps));
}
const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
console.log(
  JSON.stringify({
    config: { hiddenSize: H, batchSize: B, seqLen: T, rounds, steps },
    tokensPerSecWithoutResets: plain.map(Math.round),
    tokensPerSecWithResets: reset.map(Math.round),
    medianRatio: Number((median(reset) / median(plain)).toFixed(3)),
  }),
);

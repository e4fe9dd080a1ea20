#!/usr/bin/env node
/**
 * Serving benchmark: throughput of `lstmgen serve`'s dynamic batching against the same requests sent one at a
 * time, on loopback, and the server's resident memory under 200 concurrent streaming clients.
 *
 *   npm run build && node bench/serve.mjs [--requests 200] [--tokens 64] [--hidden-size 256] [--rounds 5] [--repeats 3] [--model FILE]
 *
 * Without --model it trains a char model on Moby-Dick for 50 steps (hiddenSize as given), saves it to a
 * temporary file and serves that. Every request is a seeded, non-streamed completion of `--tokens` tokens;
 * "batched" sends all of them at once, "one at a time" waits for each before sending the next; the two alternate
 * `--repeats` times and the medians are compared. The server runs in
 * this process (its RSS, clients included, is this process's), then `--rounds` rounds of 200 concurrent streaming
 * requests report the RSS after each. Target: batched >= 4x one at a time.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const lib = require(path.join(here, '..', 'dist'));

function flag(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const requests = Number(flag('requests', 200));
const tokens = Number(flag('tokens', 64));
const hiddenSize = Number(flag('hidden-size', 256));
const rounds = Number(flag('rounds', 5));

async function modelFile() {
  const given = flag('model');
  if (given) return given;
  const { model } = await lib.train({
    corpus: 'moby-dick',
    hiddenSize,
    embeddingDim: 64,
    maxSteps: 50,
    seqLen: 64,
    batchSize: 32,
    device: 'cpu',
    valFraction: 0,
  });
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lstmgen-bench-')), 'serve.lstm');
  await model.save(file);
  return file;
}

async function complete(url, i, stream = false) {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'Call me Ishmael', max_tokens: tokens, seed: i, temperature: 0.8, stream }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  if (stream) return (await res.text()).length;
  const body = await res.json();
  return body.usage.completion_tokens;
}

const rssMb = () => process.memoryUsage().rss / 2 ** 20;

const file = await modelFile();
const server = await lib.serve({ model: file, port: 0, device: 'cpu', maxConcurrent: Math.max(256, requests) });
const url = server.url;
await complete(url, 0); // warm-up: packs the weights, starts the threads

/** Tokens per second of `requests` requests sent one at a time, or all at once. */
async function measure(batched) {
  const t = performance.now();
  const counts = batched
    ? await Promise.all(Array.from({ length: requests }, (_, i) => complete(url, i)))
    : await (async () => {
        const c = [];
        for (let i = 0; i < requests; i++) c.push(await complete(url, i));
        return c;
      })();
  return counts.reduce((a, b) => a + b, 0) / ((performance.now() - t) / 1000);
}

// alternate the two, `--repeats` times each, and compare medians: the load of a shared machine drifts
const repeats = Number(flag('repeats', 3));
const seqRuns = [];
const batchRuns = [];
const before = { ...server.scheduler.stats };
for (let r = 0; r < repeats; r++) {
  seqRuns.push(await measure(false));
  batchRuns.push(await measure(true));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sequential = median(seqRuns);
const batched = median(batchRuns);
const stats = server.scheduler.stats;
const rowsPerStep =
  (stats.rowSteps - before.rowSteps - repeats * requests * Math.ceil(tokens / 4)) /
  (stats.steps - before.steps - repeats * requests * Math.ceil(tokens / 4));

const rss = [rssMb()];
for (let r = 0; r < rounds; r++) {
  await Promise.all(Array.from({ length: 200 }, (_, i) => complete(url, i, true)));
  rss.push(rssMb());
}
await server.close();

const result = {
  model: flag('model') ?? `char, Moby-Dick, embeddingDim 64, hiddenSize ${hiddenSize}, 1 layer`,
  requests,
  tokensPerRequest: tokens,
  oneAtATimeTokensPerSec: Math.round(sequential),
  batchedTokensPerSec: Math.round(batched),
  oneAtATimeRuns: seqRuns.map(Math.round),
  batchedRuns: batchRuns.map(Math.round),
  speedup: Number((batched / sequential).toFixed(2)),
  batchedMeanRowsPerStep: Number(rowsPerStep.toFixed(1)),
  rssMbAfterStreamingRounds: rss.map((x) => Number(x.toFixed(1))),
  cpus: os.cpus().length,
};
console.log(JSON.stringify(result, null, 2));
if (result.speedup < 4) console.error(`speedup ${result.speedup} is below the 4x target`);

// Shared by the JavaScript peers of the benchmark: the common command line, the data layout
// (the same as lstmgen's ts/data.ts and bench/peers/common.py) and the one-JSON-line result.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';

const require = createRequire(import.meta.url);

/**
 * The command line every peer takes (the Python peers parse the same flags):
 *   --train FILE --val FILE   token ids, little-endian uint32
 *   --vocab V --embedding E --hidden H --layers N --batch B --seq L
 *   --steps S --warmup W      timed optimizer steps after W untimed ones
 *   --lr F --clip F --seed N
 *   --gen-samples G --gen-tokens T --prompt 3,17,5 --temperature F
 *   --threads N
 * Flags a peer does not know are kept in `extra` (lstmgen's --train-text etc.).
 */
export function parseArgs(argv = process.argv.slice(2)) {
  const raw = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const key = a.slice(2);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) raw[key] = 'true';
    else raw[key] = argv[++i];
  }
  const int = (k, d) => (raw[k] === undefined ? d : parseInt(raw[k], 10));
  const flt = (k, d) => (raw[k] === undefined ? d : parseFloat(raw[k]));
  return {
    train: raw.train,
    val: raw.val,
    vocab: int('vocab'),
    embedding: int('embedding'),
    hidden: int('hidden'),
    layers: int('layers', 1),
    batch: int('batch'),
    seq: int('seq'),
    steps: int('steps', 5),
    warmup: int('warmup', 1),
    lr: flt('lr', 3e-3),
    clip: flt('clip', 5),
    seed: int('seed', 1234),
    genSamples: int('gen-samples', 64),
    genTokens: int('gen-tokens', 32),
    prompt: (raw.prompt ?? '')
      .split(',')
      .filter((s) => s !== '')
      .map(Number),
    temperature: flt('temperature', 1),
    threads: int('threads', os.availableParallelism()),
    raw,
  };
}

/** Token ids from a little-endian uint32 file. */
export function readIds(file) {
  const buf = fs.readFileSync(file);
  return new Uint32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/**
 * The standard LM layout: `batch` streams of floor((n-1)/batch) positions, read `seq` at a time; batch k
 * holds positions [k*seq, (k+1)*seq) of every stream, targets shifted by one. `dropLast` drops the last
 * shorter batch (training) or keeps it (evaluation). Yields { inputs, targets, batch, seq } (row-major).
 */
export function* batches(ids, batch, seq, dropLast) {
  const streamLen = Math.floor((ids.length - 1) / batch);
  const count = dropLast ? Math.floor(streamLen / seq) : Math.ceil(streamLen / seq);
  for (let k = 0; k < count; k++) {
    const start = k * seq;
    const T = Math.min(seq, streamLen - start);
    const inputs = new Int32Array(batch * T);
    const targets = new Int32Array(batch * T);
    for (let b = 0; b < batch; b++) {
      const from = b * streamLen + start;
      inputs.set(ids.subarray(from, from + T), b * T);
      targets.set(ids.subarray(from + 1, from + 1 + T), b * T);
    }
    yield { inputs, targets, batch, seq: T, first: k === 0 };
  }
}

/** Training batches forever: epoch after epoch (`first` marks the start of an epoch: reset the carried state). */
export function* trainBatches(ids, batch, seq) {
  for (;;) yield* batches(ids, batch, seq, true);
}

/** Streams per evaluation batch: the training batch, lowered so each stream holds one full sequence (as lstmgen). */
export function evalBatchSize(n, batch, seq) {
  return Math.max(1, Math.min(batch, Math.floor((n - 1) / seq)));
}

/** Peak resident memory of this process in MiB. */
export function peakRssMiB() {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    /* not Linux */
  }
  return process.resourceUsage().maxRSS / 1024;
}

/** Print the result line (the last stdout line; logs go to stderr) and exit. */
export function emit(result) {
  process.stdout.write(`${JSON.stringify({ ...result, peakRssMiB: peakRssMiB() })}\n`);
}

/** Report a peer that cannot run here, with the reason. */
export function skip(system, reason) {
  process.stdout.write(`${JSON.stringify({ system, status: 'skipped', reason })}\n`);
  process.exit(0);
}

/**
 * `require(id)` from this folder, or a `skipped` result for `system` naming `what` and `hint` (the fix)
 * when it cannot be loaded.
 */
export function requireOrSkip(system, id, what, hint) {
  try {
    return require(id);
  } catch (err) {
    skip(system, `cannot load ${what}: ${String(err.message).split('\n')[0]}${hint ? ` (${hint})` : ''}`);
  }
}

export const log = (...a) => console.error(...a);

/** Seeded uniform [0,1) generator (mulberry32) for the JS peers' sampling. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The timed training protocol shared by the JS peers: `warmup` untimed steps then `steps` timed ones, each
 * `await step(batch)` returning the batch loss (nats/token). Returns the numbers every result reports, the
 * wall time of every timed step (`stepSeconds`, seconds) included.
 */
export async function timedTraining(ids, a, step) {
  const it = trainBatches(ids, a.batch, a.seq);
  const losses = [];
  const stepSeconds = [];
  let t0 = 0;
  log('BENCH train-start');
  for (let s = 0; s < a.warmup + a.steps; s++) {
    if (s === a.warmup) t0 = performance.now();
    const s0 = performance.now();
    const b = it.next().value;
    const loss = await step(b);
    if (s >= a.warmup) stepSeconds.push((performance.now() - s0) / 1000);
    losses.push(loss);
    log(`step ${s + 1}/${a.warmup + a.steps} loss ${loss.toFixed(4)}${s < a.warmup ? ' (warm-up)' : ''}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  const tokens = a.steps * a.batch * a.seq;
  return {
    trainSteps: a.steps,
    warmupSteps: a.warmup,
    trainTokens: tokens,
    trainSeconds: seconds,
    trainTokensPerSec: tokens / seconds,
    stepSeconds,
    firstLoss: losses[0],
    lastLoss: losses[losses.length - 1],
  };
}

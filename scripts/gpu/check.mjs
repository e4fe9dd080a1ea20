// GPU check of lstmgen's CUDA build, run by scripts/gpu/check.sh with a carried Node binary on a machine
// without Node, Rust or network. Uses only the two .node files (no npm packages):
//   node check.mjs match   --cpu CPU.node --cuda CUDA.node --out a.json [--config small|keras|char] [--resets]
//                          [--no-extras]
//   node check.mjs train   --cuda CUDA.node --config keras|large --out b.json [--seconds 20]
//   node check.mjs generate --cuda CUDA.node --out c.json [--samples 256 --tokens 256]
//   node check.mjs report  FILE.json...      (prints the table)
// `match` computes the CPU reference first and only then needs the GPU; every subcommand that needs the
// GPU exits 3 with a one-line reason when the CUDA build cannot load or sees no GPU. With
// LSTMGEN_CUDA_RECURRENCE=persistent in the environment the CUDA build runs the persistent recurrence;
// each result then records the engine's launch counts, and `match` fails if it did not run.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const CONFIGS = {
  // The Keras word-LM reference configuration.
  keras: { vocabSize: 10000, embeddingDim: 256, hiddenSize: 1024, numLayers: 1, batchSize: 64, seqLen: 35 },
  // The char-level tinyshakespeare configuration (b) of bench/.
  char: { vocabSize: 65, embeddingDim: 64, hiddenSize: 512, numLayers: 2, batchSize: 64, seqLen: 128 },
  large: { vocabSize: 10000, embeddingDim: 512, hiddenSize: 2048, numLayers: 2, batchSize: 256, seqLen: 35 },
};
// Tolerances of (a). f32 on both sides; cuBLAS sums in another order than gemm on the CPU.
export const TOL = { loss: 1e-4, logits: 1e-3, gradNorm: 1e-3, grad: 2e-3 };

const NO_GPU_EXIT = 3;
const args = process.argv.slice(2);
const cmd = args[0];
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};

function dlopen(file) {
  const mod = { exports: {} };
  process.dlopen(mod, path.resolve(file));
  return mod.exports;
}

/** The CUDA build, or exit 3 saying why the GPU part cannot run. */
function loadCuda() {
  const file = opt('cuda');
  if (!file || !fs.existsSync(file))
    noGpu(`the CUDA build is missing (${file ?? 'no --cuda'}); build it with scripts/cuda/build.sh`);
  let b;
  try {
    b = dlopen(file);
  } catch (e) {
    noGpu(`the CUDA build ${file} failed to load: ${String(e.message).split('\n')[0]}`);
  }
  const info = b.engineInfo();
  if (!info.cudaCompiled) noGpu(`${file} is not a CUDA build`);
  if (!info.cudaDevice) noGpu(`the CUDA build loaded but sees no usable GPU: ${info.cudaUnavailableReason}`);
  return { b, info };
}

function noGpu(why) {
  process.stderr.write(`gpu-check: a GPU is needed from here on: ${why}\n`);
  process.exit(NO_GPU_EXIT);
}

/** Deterministic token ids (xorshift32). */
function ids(n, vocab, seed) {
  const out = new Uint32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s % vocab;
  }
  return out;
}

/** name -> Float32Array of every F32 tensor of a safetensors buffer. */
function tensors(buf) {
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const out = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__' || t.dtype !== 'F32') continue;
    const [s, e] = t.data_offsets;
    const bytes = Buffer.from(buf.subarray(8 + n + s, 8 + n + e)); // copy: aligned
    out[name] = new Float32Array(bytes.buffer, bytes.byteOffset, (e - s) / 4);
  }
  return out;
}

const maxAbs = (a) => a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
const maxAbsDiff = (a, b) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

/**
 * One Adam step with lr = K * eps and a huge eps recovers the gradient from the weights: at step 1
 * p -= lr * g / (|g| + eps), so g = d / (K - |d| / eps) with d = p_before - p_after (|g| << eps).
 */
const GRAD_OPT = { lr: 1e9, beta1: 0.9, beta2: 0.999, eps: 1e6, weightDecay: 0, clipNorm: 0 };
function gradients(before, after) {
  const K = GRAD_OPT.lr / GRAD_OPT.eps;
  const out = {};
  for (const [name, p0] of Object.entries(before)) {
    const p1 = after[name];
    out[name] = p0.map((x, i) => {
      const d = x - p1[i];
      return d / (K - Math.abs(d) / GRAD_OPT.eps);
    });
  }
  return out;
}

/**
 * Loss, logits, step result and gradients of `model` on the fixed batch; `evalLoss2` is a second
 * evaluation from the state the first one carried (a non-zero initial state).
 */
async function probe(model, batch) {
  const { inputs, targets, batchSize, seqLen, boundary } = batch;
  const logits = await model.logits(inputs, batchSize, seqLen);
  model.resetEvalState();
  const ev = await model.evalStep(inputs, targets, batchSize, seqLen, boundary);
  const ev2 = await model.evalStep(targets, inputs, batchSize, seqLen, boundary);
  const before = tensors(model.toSafetensors({}));
  const step = await model.trainStep(inputs, targets, batchSize, seqLen, GRAD_OPT, 1, boundary);
  const grads = gradients(before, tensors(model.toSafetensors({})));
  return { logits, evalLoss: ev.lossSum / ev.count, evalLoss2: ev2.lossSum / ev2.count, step, grads };
}

/** The recurrence the CUDA build runs, from its engine info: mode and launch counts. */
function recurrence(b) {
  const line = b.engineInfo().cudaRecurrence ?? 'standard (a build without cudaRecurrence)';
  const n = (what) => Number(new RegExp(`${what} (\\d+)`).exec(line)?.[1] ?? 0);
  return {
    line,
    persistent: line.startsWith('persistent'),
    forward: n('forward launches'),
    backward: n('backward'),
    fallbacks: n('fallbacks to standard'),
  };
}

/** The shapes (a) compares on: the small default, or one of the benchmark configurations at its batch. */
function matchShape(name) {
  if (name === 'small')
    return {
      cfg: { vocabSize: 97, embeddingDim: 32, hiddenSize: 64, numLayers: 2, dropout: 0 },
      batchSize: 8,
      seqLen: 24,
    };
  const c = CONFIGS[name];
  if (!c) throw new Error(`unknown --config ${name}`);
  const { batchSize, seqLen, ...rest } = c;
  return { cfg: { ...rest, dropout: 0 }, batchSize, seqLen };
}

async function match() {
  const cpu = dlopen(opt('cpu'));
  const shape = matchShape(opt('config', 'small'));
  const cfg = shape.cfg;
  const batch = { batchSize: shape.batchSize, seqLen: shape.seqLen };
  batch.inputs = ids(batch.batchSize * batch.seqLen, cfg.vocabSize, 11);
  batch.targets = ids(batch.batchSize * batch.seqLen, cfg.vocabSize, 12);
  if (args.includes('--resets')) {
    // record boundaries (id 0) at every 13th input: rows reset at different steps
    batch.boundary = 0;
    for (let i = 5; i < batch.inputs.length; i += 13) batch.inputs[i] = 0;
  }
  const ref = cpu.NativeModel.create(cfg, 7, 'cpu');
  const weights = ref.toSafetensors({});
  const c = await probe(ref, batch);
  // Self-check of the gradient read-out: the norm of the recovered gradients is the engine's grad norm.
  const norm = Math.sqrt(Object.values(c.grads).reduce((s, g) => s + g.reduce((t, x) => t + x * x, 0), 0));
  const selfCheck = Math.abs(norm - c.step.gradNorm) / c.step.gradNorm;
  if (!(selfCheck < 1e-3))
    throw new Error(`gradient read-out is off: |g| ${norm} vs engine grad norm ${c.step.gradNorm}`);
  console.error(
    `gpu-check: CPU reference: loss ${c.evalLoss.toFixed(6)}, grad norm ${c.step.gradNorm.toFixed(6)}, gradient read-out self-check ${selfCheck.toExponential(1)} (candle ${cpu.engineInfo().candleVersion})`,
  );

  const { b, info } = loadCuda();
  const g = await probe(b.NativeModel.fromSafetensors(weights, 'cuda'), batch);
  const rec = recurrence(b);
  let worstGrad = { name: '', rel: 0 };
  for (const [name, gc] of Object.entries(c.grads)) {
    const rel = maxAbsDiff(gc, g.grads[name]) / Math.max(maxAbs(gc), 1e-12);
    if (rel >= worstGrad.rel) worstGrad = { name, rel };
  }
  const r = {
    kind: 'match',
    device: info.cudaDevice,
    config: { ...cfg, ...{ batchSize: batch.batchSize, seqLen: batch.seqLen } },
    lossCpu: c.evalLoss,
    lossCuda: g.evalLoss,
    lossAbsDiff: Math.abs(c.evalLoss - g.evalLoss),
    loss2AbsDiff: Math.abs(c.evalLoss2 - g.evalLoss2),
    resets: batch.boundary !== undefined,
    recurrence: rec,
    trainLossAbsDiff: Math.abs(c.step.loss - g.step.loss),
    logitsMaxAbsDiff: maxAbsDiff(c.logits, g.logits),
    gradNormRelDiff: Math.abs(c.step.gradNorm - g.step.gradNorm) / c.step.gradNorm,
    gradMaxRelDiff: worstGrad.rel,
    gradWorstTensor: worstGrad.name,
    gradReadoutSelfCheck: selfCheck,
    tolerance: TOL,
  };
  if (!args.includes('--no-extras')) {
    try {
      r.extras = await extras(cpu, b, weights, cfg);
    } catch (e) {
      r.extras = { error: String(e?.stack ?? e) };
    }
  }
  const x = r.extras;
  // the persistent recurrence must have run both ways when it was asked for
  r.recurrenceRan = !rec.persistent || (rec.forward > 0 && rec.backward > 0);
  r.pass =
    r.recurrenceRan &&
    (!x ||
      (!x.error &&
        x.dropoutDeterministic &&
        x.dropoutLossFinite &&
        x.bf16Refused &&
        x.gumbelWorstStdErr <= 5 &&
        x.topK1IsGreedyOnGpu &&
        x.topPTinyIsGreedyOnGpu &&
        x.topK5InCpuSet &&
        x.topP09InCpuNucleus)) &&
    r.lossAbsDiff <= TOL.loss * Math.max(1, c.evalLoss) &&
    r.loss2AbsDiff <= TOL.loss * Math.max(1, c.evalLoss2) &&
    r.trainLossAbsDiff <= TOL.loss * Math.max(1, c.step.loss) &&
    r.logitsMaxAbsDiff <= TOL.logits &&
    r.gradNormRelDiff <= TOL.gradNorm &&
    r.gradMaxRelDiff <= TOL.grad;
  if (x && !x.error) r.recurrenceAfterExtras = recurrence(b);
  return r;
}

/**
 * What (a) adds beyond the numbers: dropout masks drawn on the GPU (finite loss, and the same seeds give
 * the same losses, which resuming relies on), `precision: 'bf16'` refused on CUDA with an error, and
 * greedy generation on the GPU against the CPU (informative: ties and rounding may part them).
 */
async function extras(cpu, b, weights, cfg) {
  const n = 8 * 24;
  const x = ids(n, cfg.vocabSize, 21);
  const y = ids(n, cfg.vocabSize, 22);
  const adam = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, clipNorm: 5 };
  const dropoutRun = async () => {
    const m = b.NativeModel.create({ ...cfg, dropout: 0.3 }, 5, 'cuda');
    const losses = [];
    for (let i = 0; i < 5; i++) losses.push((await m.trainStep(x, y, 8, 24, adam, 1000 + i)).loss);
    return losses;
  };
  const d1 = await dropoutRun();
  const d2 = await dropoutRun();
  let bf16Error = null;
  try {
    b.NativeModel.create(cfg, 1, 'cuda').setPrecision('bf16');
  } catch (e) {
    bf16Error = String(e.message).split('\n')[0];
  }
  const greedy = { numSamples: 4, maxTokens: 48, temperature: 0, topK: 0, topP: 1, seed: 3, stopSequences: [] };
  const prompt = new Uint32Array([1, 2, 3]);
  const gc = await cpu.NativeModel.fromSafetensors(weights, 'cpu').generate(prompt, greedy);
  const gg = await b.NativeModel.fromSafetensors(weights, 'cuda').generate(prompt, greedy);
  const samePrefix = gc.map((row, i) => {
    let k = 0;
    while (k < row.length && row[k] === gg[i][k]) k++;
    return k;
  });
  const gpuModel = b.NativeModel.fromSafetensors(weights, 'cuda');
  const sampled = await gpuModel.generate(prompt, { ...greedy, temperature: 1 });
  // Top-k / top-p filtered on the GPU: k = 1 and a tiny nucleus must give the greedy text, and
  // first tokens drawn with k = 5 or p = 0.9 must lie in the set the CPU's logits define.
  const same = (a, c) =>
    a.length === c.length && a.every((row, i) => row.length === c[i].length && row.every((t, j) => t === c[i][j]));
  const topk1 = await gpuModel.generate(prompt, { ...greedy, temperature: 1, topK: 1, seed: 8 });
  const topPTiny = await gpuModel.generate(prompt, { ...greedy, temperature: 1, topP: 1e-6, seed: 9 });
  const logits = await cpu.NativeModel.fromSafetensors(weights, 'cpu').logits(prompt, 1, prompt.length);
  const last = Array.from(logits.slice((prompt.length - 1) * cfg.vocabSize));
  const order = last.map((l, i) => [l, i]).sort((x, y) => y[0] - x[0] || x[1] - y[1]);
  const top5 = new Set(order.slice(0, 5).map((x) => x[1]));
  const mx = order[0][0];
  const z = last.reduce((acc, l) => acc + Math.exp(l - mx), 0);
  const nucleus = new Set();
  for (let k = 0, acc = 0; k < order.length && acc < 0.9; k++) {
    nucleus.add(order[k][1]);
    acc += Math.exp(order[k][0] - mx) / z;
  }
  const firsts = async (o) =>
    (await gpuModel.generate(prompt, { ...greedy, numSamples: 512, maxTokens: 1, temperature: 1, ...o })).map(
      (r) => r[0],
    );
  // Unfiltered draws on the GPU follow softmax(logits): each token's frequency over 8192 draws
  // within 5 standard errors of the CPU's probability.
  const nDraws = 8192;
  const draws = (
    await gpuModel.generate(prompt, { ...greedy, numSamples: nDraws, maxTokens: 1, temperature: 1, seed: 12 })
  ).map((r) => r[0]);
  const counts = new Array(cfg.vocabSize).fill(0);
  for (const t of draws) counts[t]++;
  const worstSe = Math.max(
    ...last.map((l, i) => {
      const p = Math.exp(l - mx) / z;
      return Math.abs(counts[i] / nDraws - p) / Math.sqrt((p * (1 - p)) / nDraws + 1e-12);
    }),
  );
  const k5 = await firsts({ topK: 5, seed: 10 });
  const p9 = await firsts({ topP: 0.9, seed: 11 });
  return {
    dropoutLosses: d1,
    dropoutDeterministic: d1.every((l, i) => l === d2[i]),
    dropoutLossFinite: d1.every(Number.isFinite),
    bf16Error,
    bf16Refused: bf16Error !== null,
    greedySamePrefix: samePrefix,
    greedyTokens: greedy.maxTokens,
    gumbelSampleLengths: sampled.map((r) => r.length),
    gumbelIdsInRange: sampled.every((r) => r.every((t) => t >= 0 && t < cfg.vocabSize)),
    gumbelWorstStdErr: worstSe,
    topK1IsGreedyOnGpu: same(topk1, gg),
    topPTinyIsGreedyOnGpu: same(topPTiny, gg),
    topK5InCpuSet: k5.every((t) => top5.has(t)),
    topK5Distinct: new Set(k5).size,
    topP09InCpuNucleus: p9.every((t) => nucleus.has(t)),
    topP09Distinct: new Set(p9).size,
    nucleusSize: nucleus.size,
  };
}

/** Peak memory (MiB) of this process on the GPU, sampled with nvidia-smi every 50 ms. */
function memoryWatch() {
  let peak = null;
  let child;
  try {
    child = spawn(
      'nvidia-smi',
      ['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits', '-lms', '50'],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    child.on('error', () => {});
    child.stdout.on('data', (d) => {
      for (const line of String(d).split('\n')) {
        const [pid, mib] = line.split(',').map((x) => Number(x.trim()));
        if (pid === process.pid && Number.isFinite(mib)) peak = Math.max(peak ?? 0, mib);
      }
    });
  } catch {
    child = undefined;
  }
  return {
    stop: () =>
      new Promise((res) =>
        setTimeout(() => {
          child?.kill();
          res(peak);
        }, 200),
      ),
  };
}

/** The table's name of the CUDA implementation that ran: kernels and recurrence. */
function implName(rec) {
  if (process.env.LSTMGEN_CUDA_KERNELS === 'candle') return 'lstmgen (CUDA, candle ops only)';
  if (!rec.persistent) return 'lstmgen (CUDA)';
  if (rec.forward === 0) return 'lstmgen (CUDA, persistent asked, fell back to standard)';
  return `lstmgen (CUDA, persistent recurrence${rec.fallbacks > 0 ? `, ${rec.fallbacks} layer runs fell back` : ''})`;
}

async function trainBench() {
  const { b, info } = loadCuda();
  const name = opt('config', 'keras');
  const c = CONFIGS[name];
  const seconds = Number(opt('seconds', '20'));
  const watch = memoryWatch();
  const model = b.NativeModel.create(
    {
      vocabSize: c.vocabSize,
      embeddingDim: c.embeddingDim,
      hiddenSize: c.hiddenSize,
      numLayers: c.numLayers,
      dropout: 0,
    },
    1,
    'cuda',
  );
  const n = c.batchSize * c.seqLen;
  const batches = Array.from({ length: 8 }, (_, i) => [ids(n, c.vocabSize, 100 + i), ids(n, c.vocabSize, 200 + i)]);
  const adam = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, clipNorm: 5 };
  const step = (i) => model.trainStep(batches[i % 8][0], batches[i % 8][1], c.batchSize, c.seqLen, adam, i);
  for (let i = 0; i < 3; i++) await step(i); // warm-up: kernels, cuBLAS handles, allocations
  let steps = 0;
  let loss = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  while ((steps < 10 || elapsed < seconds) && steps < 2000) {
    loss = (await step(steps + 3)).loss; // the loss is read back every step, as in real training
    steps++;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  const peakMiB = await watch.stop();
  const rec = recurrence(b);
  return {
    kind: 'train',
    impl: implName(rec),
    recurrence: rec,
    config: name,
    shape: c,
    device: info.cudaDevice,
    steps,
    seconds: elapsed,
    tokensPerSec: (steps * n) / elapsed,
    lastLoss: loss,
    peakMiB,
  };
}

async function generateBench() {
  const { b, info } = loadCuda();
  const c = CONFIGS.keras;
  const samples = Number(opt('samples', '256'));
  const tokens = Number(opt('tokens', '256'));
  const watch = memoryWatch();
  const model = b.NativeModel.create(
    {
      vocabSize: c.vocabSize,
      embeddingDim: c.embeddingDim,
      hiddenSize: c.hiddenSize,
      numLayers: c.numLayers,
      dropout: 0,
    },
    1,
    'cuda',
  );
  const topP = Number(opt('top-p', '1')); // 1: sampled on the GPU (Gumbel-max); < 1: logits go to the host
  const o = { numSamples: samples, maxTokens: tokens, temperature: 1, topK: 0, topP, seed: 3, stopSequences: [] };
  await model.generate(new Uint32Array([1]), { ...o, maxTokens: 8 }); // warm-up
  const t0 = process.hrtime.bigint();
  const out = await model.generate(new Uint32Array([1]), o);
  const sec = Number(process.hrtime.bigint() - t0) / 1e9;
  const generated = out.reduce((s, x) => s + x.length, 0);
  const where = process.env.LSTMGEN_CUDA_KERNELS === 'candle' && topP < 1 ? 'on the host' : 'on the GPU';
  const peakMiB = await watch.stop();
  const rec = recurrence(b); // after the memory watch: engineInfo() opens a CUDA device of its own
  const impl = `${implName(rec)}, ${topP >= 1 ? 'unfiltered' : `top-p ${topP}`}, sampled ${where}`;
  return {
    kind: 'generate',
    impl,
    recurrence: rec,
    config: 'keras',
    samples,
    tokens,
    device: info.cudaDevice,
    seconds: sec,
    tokensPerSec: generated / sec,
    peakMiB,
  };
}

function report(files) {
  const rows = files.filter((f) => fs.existsSync(f)).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
  const fmt = (x, d = 0) =>
    x === null || x === undefined || Number.isNaN(x)
      ? '-'
      : Number(x).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  const lines = [];
  const matches = rows.filter((r) => r.kind === 'match');
  const m = matches[0];
  const dev = rows.find((r) => r.device)?.device ?? '?';
  lines.push(`lstmgen GPU check on ${dev}`);
  if (m) {
    lines.push(
      `(a) CUDA vs CPU build, same weights and batch (${m.config.numLayers}x${m.config.hiddenSize}, vocab ${m.config.vocabSize}, batch ${m.config.batchSize}x${m.config.seqLen}): ${m.pass ? 'PASS' : 'FAIL'}`,
      `    loss |diff| ${m.lossAbsDiff.toExponential(2)} (tol ${TOL.loss} rel), logits max |diff| ${m.logitsMaxAbsDiff.toExponential(2)} (tol ${TOL.logits}),`,
      `    grad norm rel diff ${m.gradNormRelDiff.toExponential(2)} (tol ${TOL.gradNorm}), gradients max |diff| / max |g| ${m.gradMaxRelDiff.toExponential(2)} (tol ${TOL.grad}, worst ${m.gradWorstTensor})`,
    );
    const x = m.extras;
    if (x?.error) lines.push(`    extras failed: ${x.error.split('\n').slice(0, 3).join(' | ')}`);
    else if (x)
      lines.push(
        `    dropout 0.3 on the GPU: losses ${x.dropoutLosses.map((l) => l.toFixed(4)).join(' ')}, same seeds same losses: ${x.dropoutDeterministic}`,
        `    bf16 on CUDA refused: ${x.bf16Refused} (${x.bf16Error ?? 'no error'})`,
        `    greedy generation, tokens equal to the CPU's before the first difference: ${x.greedySamePrefix.join(', ')} of ${x.greedyTokens}; Gumbel-max sampling ids in range: ${x.gumbelIdsInRange}, 8192 draws vs the CPU's softmax: worst token ${x.gumbelWorstStdErr?.toFixed(2)} standard errors (limit 5)`,
        `    top-k/top-p on the GPU: k=1 gives the greedy text ${x.topK1IsGreedyOnGpu}, p=1e-6 too ${x.topPTinyIsGreedyOnGpu}; 512 draws with k=5 in the CPU's top 5 ${x.topK5InCpuSet} (${x.topK5Distinct} distinct), with p=0.9 in the CPU's nucleus of ${x.nucleusSize} ${x.topP09InCpuNucleus} (${x.topP09Distinct} distinct)`,
      );
  }
  // the further comparisons (other shapes, record resets, the persistent recurrence): one line each
  for (const r of matches.slice(1)) {
    if (r.error) {
      lines.push(`(a) ${r.label}: FAIL (${r.error}; its log is above)`);
      continue;
    }
    const c = r.config;
    const rec = r.recurrence?.persistent
      ? `persistent recurrence (${r.recurrence.forward} forward / ${r.recurrence.backward} backward launches, ${r.recurrence.fallbacks} fallbacks)`
      : 'standard recurrence';
    lines.push(
      `(a) ${rec}, ${c.numLayers}x${c.hiddenSize}, vocab ${c.vocabSize}, batch ${c.batchSize}x${c.seqLen}${r.resets ? ', record resets' : ''}: ${r.pass ? 'PASS' : 'FAIL'}`,
      `    loss |diff| ${r.lossAbsDiff.toExponential(2)}, from a carried state ${r.loss2AbsDiff.toExponential(2)}, logits max |diff| ${r.logitsMaxAbsDiff.toExponential(2)}, grad norm rel diff ${r.gradNormRelDiff.toExponential(2)}, gradients max |diff| / max |g| ${r.gradMaxRelDiff.toExponential(2)} (worst ${r.gradWorstTensor})${r.extras?.error ? `; extras failed: ${r.extras.error.split('\n')[0]}` : r.extras ? '; sampling, dropout and bf16 checks included' : ''}`,
    );
  }
  lines.push(
    '',
    '| what | config | implementation | tokens/s | peak GPU MiB | steps / time |',
    '|---|---|---|---:|---:|---|',
  );
  for (const r of rows.filter((x) => x.kind !== 'match')) {
    const what = r.kind === 'train' ? '(b) training' : `(c) generation, ${r.samples} samples x ${r.tokens}`;
    const s = r.shape ?? CONFIGS[r.config];
    const cfg = `${r.config}: ${s.numLayers}x${s.hiddenSize}, emb ${s.embeddingDim}, batch ${s.batchSize}x${s.seqLen}`;
    const mem = r.peakMiB !== undefined && r.peakMiB !== null ? fmt(r.peakMiB) : '-';
    const mem2 = r.torchPeakMiB ? ` (torch alloc ${fmt(r.torchPeakMiB)})` : '';
    const steps = r.steps ? `${r.steps} / ${fmt(r.seconds, 1)} s` : `${fmt(r.seconds, 2)} s`;
    lines.push(`| ${what} | ${cfg} | ${r.impl} | ${fmt(r.tokensPerSec)} | ${mem}${mem2} | ${steps} |`);
  }
  for (const r of rows.filter((x) => x.error && x.kind !== 'match'))
    lines.push(`error: ${r.impl ?? ''} ${r.config ?? ''}: ${r.error}`);
  console.log(lines.join('\n'));
}

const out = opt('out');
const write = (r) => {
  const text = JSON.stringify(r, null, 1);
  if (out) fs.writeFileSync(out, `${text}\n`);
  console.error(
    `gpu-check: ${r.kind}${typeof r.config === 'string' ? ` ${r.config}` : ''}: ${r.kind === 'match' ? (r.pass ? 'PASS' : 'FAIL') : `${Math.round(r.tokensPerSec)} tokens/s`}`,
  );
};
if (cmd === 'match') match().then(write);
else if (cmd === 'train') trainBench().then(write);
else if (cmd === 'generate') generateBench().then(write);
else if (cmd === 'report') report(args.slice(1));
else {
  console.error('usage: check.mjs match|train|generate|report ...');
  process.exit(2);
}

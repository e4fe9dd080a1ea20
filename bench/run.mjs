#!/usr/bin/env node
import { spawn, spawnSync } from 'node:child_process';
// `npm run bench`: the comparative benchmark of lstmgen against the LSTM trainers users would pick instead
// One run: for each configuration, tokenize tinyshakespeare once, then train every system
// in its own child process on the same token ids, shapes and step counts (after warm-up steps), and collect
// training tokens/s, generation tokens/s (a batch of 64 samples), peak resident memory and validation loss.
// Writes bench/results/latest.{md,json,svg} and prints the lstmgen/peer ratios. See bench/README.md.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, ratioLines, renderMarkdown, renderSvg, stepSpread } from './report.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const require = createRequire(import.meta.url);

/** The benchmark configurations: (a) the Keras reference model, (b) and (c) char-level models. */
export const CONFIGS = {
  a: {
    title: 'Keras reference (word-level)',
    tokenizer: 'word',
    vocabSize: 10000,
    embedding: 256,
    hidden: 1024,
    layers: 1,
    batch: 64,
    seq: 35,
  },
  b: {
    title: 'char-level tinyshakespeare',
    tokenizer: 'char',
    embedding: 64,
    hidden: 512,
    layers: 2,
    batch: 64,
    seq: 128,
  },
  c: { title: 'small (char-level)', tokenizer: 'char', embedding: 64, hidden: 128, layers: 1, batch: 32, seq: 64 },
};

export const SYSTEMS = ['lstmgen', 'lstmgen-bf16', 'lstmgen-cuda', 'torch', 'torch-bf16', 'keras', 'tfjs', 'brainjs'];

/**
 * Default work per system and configuration: timed steps, warm-up steps, generated tokens per sample, and
 * whether to evaluate. Sized so the whole run stays under 30 minutes on 2 cores. The slow JavaScript peers
 * run fewer steps (tokens/s is what is compared) and skip validation where it would take many minutes
 * (tfjs ~0.7 GFLOP/s: one step of (a) or (b) takes minutes). brain.js has no minibatches: one step there is
 * ONE sequence of seqLen tokens (batch 1). Validation losses are comparable between equal step counts only.
 */
const W = (steps, warmup, gen, val = true, budget = 0) => ({ steps, warmup, gen, val, budget });
// (a) and (b): 30 timed steps at least (the spread of 10 steps is within this machine's noise)
const FAST = { a: W(30, 3, 100), b: W(30, 3, 200), c: W(100, 5, 200) };
const DEFAULT_STEPS = {
  lstmgen: FAST,
  'lstmgen-bf16': FAST,
  'lstmgen-cuda': FAST,
  torch: FAST,
  'torch-bf16': FAST,
  keras: FAST,
  // one tfjs step of (a) or (b) takes 5-15 minutes here: stopped after 5, reported as an upper bound on tokens/s
  tfjs: { a: W(1, 0, 2, false, 300), b: W(1, 0, 4, false, 300), c: W(10, 2, 50) },
  brainjs: { a: W(2, 1, 2, false), b: W(4, 1, 4, false), c: W(64, 4, 32) },
};

const HELP = `usage: npm run bench -- [options]
  --configs a,b,c        configurations to run (default a,b,c)
  --systems LIST         of ${SYSTEMS.join(',')} (default all)
  --steps N              timed steps for every system (default: per system, see bench/README.md)
  --warmup N             warm-up steps for every system
  --gen-tokens N         generated tokens per sample for every system (64 samples)
  --gen-samples N        samples generated in one batch (default 64)
  --val-tokens N         validation tokens (default 16384; the start of the held-out last 10%)
  --threads N            threads for systems that take a setting (default: all ${os.availableParallelism()} cores)
  --timeout S            seconds before a system's run is stopped and marked failed (default 1500)
  --train-budget S       seconds of training after which a run is stopped and reported as an upper bound on
                         its tokens/s (default: 300 for tfjs on (a) and (b), else none; 0 = none)
  --corpus FILE          text to use (default: tinyshakespeare from shared/data, else $BENCH_CORPUS)
  --out DIR              where latest.{md,json,svg} go (default bench/results)
  --val / --no-val       evaluate every system / none (default: all but the slow peers on (a) and (b))
  --no-build             do not (re)build dist/ or the addon
  --no-setup             do not run bench/setup-python.sh when the venv is missing (Python peers are then skipped)
  --verbose              show every step of every system
environment: BENCH_VENV (Python venv with the peers, default bench/.venv; see bench/setup-python.sh)`;

function parseFlags(argv) {
  const f = {
    configs: 'a,b,c',
    systems: SYSTEMS.join(','),
    genSamples: 64,
    valTokens: 16384,
    threads: os.availableParallelism(),
    timeout: 1500,
    out: path.join(here, 'results'),
    build: true,
    verbose: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    switch (a) {
      case '--configs':
        f.configs = v();
        break;
      case '--systems':
        f.systems = v();
        break;
      case '--steps':
        f.steps = +v();
        break;
      case '--warmup':
        f.warmup = +v();
        break;
      case '--gen-tokens':
        f.genTokens = +v();
        break;
      case '--gen-samples':
        f.genSamples = +v();
        break;
      case '--val-tokens':
        f.valTokens = +v();
        break;
      case '--threads':
        f.threads = +v();
        break;
      case '--timeout':
        f.timeout = +v();
        break;
      case '--train-budget':
        f.trainBudget = +v();
        break;
      case '--corpus':
        f.corpus = v();
        break;
      case '--out':
        f.out = path.resolve(v());
        break;
      case '--no-build':
        f.build = false;
        break;
      case '--no-setup':
        f.setup = false;
        break;
      case '--val':
        f.val = true;
        break;
      case '--no-val':
        f.val = false;
        break;
      case '--verbose':
        f.verbose = true;
        break;
      case '-h':
      case '--help':
        console.log(HELP);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${a}\n${HELP}`);
    }
  }
  f.setup ??= true;
  f.configs = f.configs.split(',').filter(Boolean);
  f.systems = f.systems.split(',').filter(Boolean);
  for (const c of f.configs)
    if (!CONFIGS[c]) throw new Error(`unknown configuration ${c} (have ${Object.keys(CONFIGS)})`);
  for (const s of f.systems) if (!SYSTEMS.includes(s)) throw new Error(`unknown system ${s} (have ${SYSTEMS})`);
  return f;
}

/** The corpus: --corpus, $BENCH_CORPUS, or tinyshakespeare in shared/ (beside or above the clone). */
function findCorpus(flag) {
  const candidates = [
    flag,
    process.env.BENCH_CORPUS,
    path.join(repo, 'shared/data/tinyshakespeare/input.txt'),
    path.join(repo, '../shared/data/tinyshakespeare/input.txt'),
  ].filter(Boolean);
  for (const c of candidates) if (fs.existsSync(c)) return c;
  throw new Error(`tinyshakespeare not found (tried ${candidates.join(', ')}); give --corpus FILE or BENCH_CORPUS`);
}

/** Build what lstmgen needs when missing or older than its sources; returns a reason when it cannot. */
function ensureBuilt(build) {
  const addon = path.join(repo, 'lstmgen.linux-x64-gnu.node');
  const distIndex = path.join(repo, 'dist', 'index.js');
  const newest = (dir, re) => {
    let t = 0;
    if (!fs.existsSync(dir)) return t;
    for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
      if (e.isFile() && re.test(e.name))
        t = Math.max(t, fs.statSync(path.join(e.parentPath ?? e.path, e.name)).mtimeMs);
    }
    return t;
  };
  const run = (script) => {
    console.log(`> npm run ${script}`);
    const r = spawnSync('npm', ['run', script], { cwd: repo, stdio: 'inherit' });
    return r.status === 0 ? undefined : `npm run ${script} failed (exit ${r.status})`;
  };
  const stale = (file, t) => !fs.existsSync(file) || fs.statSync(file).mtimeMs < t;
  if (stale(addon, newest(path.join(repo, 'crates'), /\.rs$|^Cargo\.toml$/))) {
    if (!build) return fs.existsSync(addon) ? undefined : 'the native addon is not built (npm run build:native)';
    const why = run('build:native');
    if (why) return why;
  }
  if (stale(distIndex, newest(path.join(repo, 'ts'), /\.ts$/))) {
    if (!build) return fs.existsSync(distIndex) ? undefined : 'dist/ is not built (npm run build:ts)';
    const why = run('build:ts');
    if (why) return why;
  }
  return undefined;
}

/** Cut the held-out text to about `n` tokens at a line end; returns the text. */
function capValText(val, tokenizer, n) {
  const lines = val.split(/(?<=\n)/);
  let out = '';
  let count = 0;
  for (const line of lines) {
    if (count >= n) break;
    out += line;
    count += tokenizer.encode(line, { onWarning: () => {} }).length;
  }
  return out;
}

const writeIds = (file, ids) => fs.writeFileSync(file, Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength));

/** Tokenize once per configuration with lstmgen's own tokenizer; write ids and text for the peers. */
function prepareData(key, cfg, text, flags, work) {
  const lib = require(path.join(repo, 'dist'));
  const split = lib.splitText(text, 0.1);
  const tok = lib.buildTokenizer(split.train, {
    kind: cfg.tokenizer,
    vocabSize: cfg.vocabSize ?? 10000,
    lowercase: true,
  });
  const valText = capValText(split.val, tok, flags.valTokens);
  const quiet = { onWarning: () => {} };
  const trainIds = tok.encode(split.train, quiet);
  const valIds = tok.encode(valText, quiet);
  const promptText = 'ROMEO:';
  const prompt = Array.from(tok.encode(promptText, quiet));
  const dir = path.join(work, key);
  fs.mkdirSync(dir, { recursive: true });
  const files = {
    train: path.join(dir, 'train.u32'),
    val: path.join(dir, 'val.u32'),
    trainText: path.join(dir, 'train.txt'),
    valText: path.join(dir, 'val.txt'),
  };
  writeIds(files.train, trainIds);
  writeIds(files.val, valIds);
  fs.writeFileSync(files.trainText, split.train);
  fs.writeFileSync(files.valText, valText);
  return {
    files,
    vocab: tok.vocabSize,
    trainTokens: trainIds.length,
    valTokens: valIds.length,
    prompt,
    promptText,
    stepsPerEpoch: Math.floor(Math.floor((trainIds.length - 1) / cfg.batch) / cfg.seq),
  };
}

let setupTried = false;
/** The Python of the peers' venv; runs bench/setup-python.sh once when it is missing (unless --no-setup). */
function pythonFor(flags) {
  const venv = process.env.BENCH_VENV || path.join(here, '.venv');
  const py = path.join(venv, 'bin', 'python');
  if (!fs.existsSync(py) && flags?.setup && !setupTried) {
    setupTried = true;
    console.log(
      `\n> bash bench/setup-python.sh   (no venv at ${venv}; installs torch, tensorflow-cpu, keras from PyPI, several GB)`,
    );
    const r = spawnSync('bash', [path.join(here, 'setup-python.sh')], { cwd: repo, stdio: 'inherit' });
    if (r.status !== 0) flags.setupFailed = `bench/setup-python.sh failed (exit ${r.status})`;
  }
  if (fs.existsSync(py)) return { py, venv };
  return {
    venv,
    missing: flags?.setupFailed ?? `no Python venv at ${venv} (run bench/setup-python.sh, or set BENCH_VENV)`,
  };
}

/** Run one system on one configuration in a child process; resolves with its result object. */
function runChild(system, key, cfg, data, flags, logDir) {
  const d = DEFAULT_STEPS[system][key];
  const steps = flags.steps ?? d.steps;
  const warmup = flags.warmup ?? d.warmup;
  const genTokens = flags.genTokens ?? d.gen;
  const evaluate = flags.val ?? d.val;
  const budget = flags.trainBudget ?? d.budget;
  const tokensPerStep = system === 'brainjs' ? cfg.seq : cfg.batch * cfg.seq;
  const args = [
    '--train',
    data.files.train,
    '--val',
    data.files.val,
    '--vocab',
    data.vocab,
    '--embedding',
    cfg.embedding,
    '--hidden',
    cfg.hidden,
    '--layers',
    cfg.layers,
    '--batch',
    cfg.batch,
    '--seq',
    cfg.seq,
    '--steps',
    steps,
    '--warmup',
    warmup,
    '--lr',
    3e-3,
    '--clip',
    5,
    '--seed',
    1234,
    '--gen-samples',
    flags.genSamples,
    '--gen-tokens',
    genTokens,
    '--prompt',
    data.prompt.join(','),
    '--temperature',
    1,
    '--threads',
    flags.threads,
    ...(evaluate ? [] : ['--no-val']),
  ].map(String);
  let cmd;
  const base = { system, config: key, steps, warmup, genTokensPerSample: genTokens, validated: evaluate };
  // RAYON_NUM_THREADS: the thread count of candle's CPU kernels (lstmgen)
  const env = {
    ...process.env,
    TF_CPP_MIN_LOG_LEVEL: '2',
    PYTHONUNBUFFERED: '1',
    RAYON_NUM_THREADS: String(flags.threads),
  };
  if (system.startsWith('lstmgen')) {
    if (flags.lstmgenUnavailable)
      return Promise.resolve({ ...base, status: 'skipped', reason: flags.lstmgenUnavailable });
    cmd = [
      'node',
      path.join(here, 'peers', 'lstmgen.mjs'),
      ...args,
      '--train-text',
      data.files.trainText,
      '--val-text',
      data.files.valText,
      '--tokenizer',
      cfg.tokenizer,
      '--prompt-text',
      data.promptText,
      '--system',
      system,
      '--device',
      system === 'lstmgen-cuda' ? 'cuda' : 'cpu',
      '--precision',
      system === 'lstmgen-bf16' ? 'bf16' : 'f32',
    ];
  } else if (system === 'tfjs' || system === 'brainjs') {
    cmd = ['node', path.join(here, 'peers', `${system}.mjs`), ...args];
  } else {
    const p = pythonFor(flags);
    if (p.missing) return Promise.resolve({ ...base, status: 'skipped', reason: p.missing });
    cmd = [
      p.py,
      path.join(here, 'peers', system === 'keras' ? 'keras_lstm.py' : 'torch_lstm.py'),
      ...args,
      ...(system === 'torch-bf16' ? ['--autocast', 'bf16'] : []),
    ];
  }
  const logFile = path.join(logDir, `${key}-${system}.log`);
  const logStream = fs.createWriteStream(logFile);
  logStream.write(`$ ${cmd.join(' ')}\n`);
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(cmd[0], cmd.slice(1), { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errTail = '';
    let pending = '';
    let trainStart = 0;
    let stepsDone = 0;
    let overBudget = 0;
    const timer = setTimeout(() => {
      errTail += `\n[bench] timed out after ${flags.timeout} s`;
      child.kill('SIGKILL');
    }, flags.timeout * 1000);
    // the training budget: a run whose training outlasts it is stopped and reported as an upper bound
    const watchdog = setInterval(() => {
      if (
        budget > 0 &&
        trainStart &&
        !overBudget &&
        stepsDone < steps + warmup &&
        Date.now() - trainStart > budget * 1000
      ) {
        overBudget = (Date.now() - trainStart) / 1000;
        child.kill('SIGKILL');
      }
    }, 1000);
    child.stdout.on('data', (d) => {
      out += d;
      logStream.write(d);
    });
    child.stderr.on('data', (d) => {
      const s = d.toString();
      errTail = (errTail + s).slice(-4000);
      const lines = (pending + s).split('\n');
      pending = lines.pop();
      for (const l of lines) {
        if (l.startsWith('BENCH train-start')) trainStart = Date.now();
        const m = /^step (\d+)\//.exec(l);
        if (m) stepsDone = Number(m[1]);
      }
      logStream.write(s);
      if (flags.verbose) for (const line of s.split('\n')) if (line.trim()) console.log(`  [${key}/${system}] ${line}`);
    });
    child.on('error', (err) => {
      errTail += `\n${err.message}`;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearInterval(watchdog);
      logStream.end();
      const wall = (Date.now() - t0) / 1000;
      if (overBudget) {
        const bound = ((stepsDone + 1) * tokensPerStep) / overBudget;
        return resolve({
          ...base,
          status: 'timeout',
          trainTokensPerSecBound: bound,
          reason: `${stepsDone} of ${steps + warmup} training steps done in the ${budget} s budget: under ${fmt(bound)} tokens/s (--train-budget to change)`,
          wallSeconds: wall,
        });
      }
      const line = out
        .trim()
        .split('\n')
        .reverse()
        .find((l) => l.startsWith('{'));
      let r;
      try {
        r = line ? JSON.parse(line) : undefined;
      } catch {
        r = undefined;
      }
      if (r && (code === 0 || r.status === 'skipped')) return resolve({ ...base, ...r, system, wallSeconds: wall });
      const lastErr = errTail
        .trim()
        .split('\n')
        .filter((l) => l.trim())
        .slice(-3)
        .join(' | ');
      resolve({
        ...base,
        status: 'failed',
        reason: `${signal ? `killed (${signal})` : `exit ${code}`}: ${lastErr || 'no output'} (log: ${path.relative(repo, logFile)})`,
        wallSeconds: wall,
      });
    });
  });
}

function machine(flags) {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const flagsLine = /flags\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.split(' ') ?? [];
  const simd = ['avx2', 'fma', 'avx512f', 'avx512_bf16', 'amx_tile'].filter((x) => flagsLine.includes(x));
  const p = pythonFor();
  const pyVersion = p.py ? spawnSync(p.py, ['--version'], { encoding: 'utf8' }).stdout.trim() : 'none';
  return {
    cpu: model,
    cores: os.availableParallelism(),
    simd: simd.join(' '),
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    python: pyVersion,
    threads: flags.threads,
    loadAverage: os.loadavg().map((x) => +x.toFixed(2)),
  };
}

async function main() {
  const flags = parseFlags(process.argv.slice(2));
  const started = new Date();
  const work = path.join(here, '.tmp');
  const logDir = path.join(work, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  fs.mkdirSync(flags.out, { recursive: true });
  // the tokenizer lives in dist/: build it even when lstmgen itself is not benchmarked
  flags.lstmgenUnavailable = ensureBuilt(flags.build);
  if (!fs.existsSync(path.join(repo, 'dist', 'index.js')))
    throw new Error(`dist/ is needed to tokenize: ${flags.lstmgenUnavailable}`);
  const corpus = findCorpus(flags.corpus);
  const text = fs.readFileSync(corpus, 'utf8');
  if (flags.systems.some((s) => s === 'torch' || s === 'keras')) pythonFor(flags); // set up the venv first, when missing
  const m = machine(flags);
  console.log(`machine: ${m.cpu}, ${m.cores} cores (${m.simd}), ${m.memoryGiB} GiB; node ${m.node}; ${m.python}`);
  console.log(`corpus: ${corpus} (${text.length} characters)`);

  const results = [];
  const configs = {};
  for (const key of flags.configs) {
    const cfg = CONFIGS[key];
    const data = prepareData(key, cfg, text, flags, work);
    configs[key] = {
      ...cfg,
      vocab: data.vocab,
      trainTokens: data.trainTokens,
      valTokens: data.valTokens,
      stepsPerEpoch: data.stepsPerEpoch,
      prompt: data.promptText,
    };
    console.log(
      `\n(${key}) ${cfg.title}: vocab ${data.vocab}, embedding ${cfg.embedding}, hidden ${cfg.hidden}, ${cfg.layers} layer(s), batch ${cfg.batch}, seqLen ${cfg.seq}; ${data.trainTokens} train / ${data.valTokens} val tokens`,
    );
    for (const system of flags.systems) {
      process.stdout.write(`  ${system.padEnd(13)}`);
      const r = await runChild(system, key, cfg, data, flags, logDir);
      // Reasons quote file paths; keep them relative to the clone so results read the same on any machine.
      if (r.reason) r.reason = r.reason.replaceAll(`${repo}${path.sep}`, '');
      const spread = stepSpread(r, cfg);
      if (spread) r.trainTokensPerSecSpread = spread;
      results.push(r);
      if (r.status === 'ok') {
        const sp = spread ? ` [per step ${fmt(spread.min)} / ${fmt(spread.median)} / ${fmt(spread.max)}]` : '';
        console.log(
          `train ${fmt(r.trainTokensPerSec)} tok/s${sp} (${r.trainSteps}+${r.warmupSteps} steps), gen ${fmt(r.genTokensPerSec)} tok/s, peak ${fmt(r.peakRssMiB)} MiB, val loss ${r.valLoss == null ? '-' : r.valLoss.toFixed(3)}  [${r.wallSeconds.toFixed(0)} s]`,
        );
      } else {
        console.log(`${r.status}: ${r.reason}`);
      }
    }
  }
  m.loadAverageAtEnd = os.loadavg().map((x) => +x.toFixed(2));
  const report = {
    date: started.toISOString(),
    durationSeconds: (Date.now() - started.getTime()) / 1000,
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    corpus: `${path.basename(path.dirname(corpus))}/${path.basename(corpus)}`,
    machine: m,
    configs,
    results,
  };
  fs.writeFileSync(path.join(flags.out, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  fs.writeFileSync(path.join(flags.out, 'latest.md'), renderMarkdown(report));
  fs.writeFileSync(path.join(flags.out, 'latest.svg'), renderSvg(report));
  console.log('\nlstmgen / peer (higher is better for lstmgen):');
  for (const line of ratioLines(report)) console.log(`  ${line}`);
  console.log(
    `\nwrote ${['latest.md', 'latest.json', 'latest.svg'].map((f) => path.relative(process.cwd(), path.join(flags.out, f))).join(', ')} in ${(report.durationSeconds / 60).toFixed(1)} min`,
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(err?.stack ?? err);
    process.exit(1);
  });
}

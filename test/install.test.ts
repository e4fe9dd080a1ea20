// The real install: `npm pack` the main package and the linux-x64-gnu platform package, install both
// tarballs into a fresh directory with no cargo on PATH, and there train and generate from TypeScript (ESM
// and CommonJS, type-checked against the installed typings) and with the CLI. Needs the CPU addon
// (npm run build:native) and the npm registry for lstmgen's own dependencies. Linux x64 glibc only.
import { execFileSync, type SpawnSyncOptions, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI_ENTRY, shakespeare, tmpDir } from './helpers';

const ROOT = path.resolve(__dirname, '..');
const PLATFORM = 'linux-x64-gnu';
const NODE_FILE = path.join(ROOT, `lstmgen.${PLATFORM}.node`);
const supported = process.platform === 'linux' && process.arch === 'x64';
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
/** npm's own CLI script, run with this Node (the npm next to it, or the one running `npm test`). */
const NPM_CLI =
  [
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'),
    process.env.npm_execpath ?? '',
  ].find((f) => f.endsWith('npm-cli.js') && fs.existsSync(f)) ?? 'npm-cli.js not found';
const NPX_CLI = path.join(path.dirname(NPM_CLI), 'npx-cli.js');

/** PATH without any directory that holds cargo or rustc, so nothing can build from source. */
function pathWithoutCargo(): string {
  return (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((dir) => dir && !['cargo', 'rustc', 'rustup'].some((bin) => fs.existsSync(path.join(dir, bin))))
    .join(path.delimiter);
}

const env: NodeJS.ProcessEnv = {
  ...process.env,
  PATH: [path.dirname(process.execPath), pathWithoutCargo()].join(path.delimiter),
  CARGO: undefined,
  CARGO_HOME: undefined,
  RUSTUP_HOME: undefined,
  LSTMGEN_CUDA_BINARY: undefined,
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
  npm_config_prefer_offline: 'true',
};

function run(cmd: string, args: string[], cwd: string, timeout = 120_000) {
  const opts: SpawnSyncOptions = { cwd, env, encoding: 'utf8', timeout };
  const r = spawnSync(cmd, args, opts) as { status: number | null; stdout: string; stderr: string; error?: Error };
  const what =
    `${path.basename(cmd)} ${args.join(' ')} (in ${cwd})\n${r.error ?? ''}\n` +
    `--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
  expect(r.status, what).toBe(0);
  return r;
}
const npm = (args: string[], cwd: string, timeout?: number) => run(process.execPath, [NPM_CLI, ...args], cwd, timeout);

/** `npm pack` `dir` into `dest`; returns the tarball path and the packed file list. */
function pack(dir: string, dest: string): { tarball: string; files: string[] } {
  const r = npm(['pack', '--json', '--pack-destination', dest], dir);
  const [info] = JSON.parse(r.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  return { tarball: path.join(dest, info.filename), files: info.files.map((f) => f.path) };
}

describe.skipIf(!supported)('packed install (no Rust toolchain)', () => {
  let app: string;
  let mainFiles: string[];
  const tiny = { embeddingDim: 16, hiddenSize: 32, seqLen: 16, batchSize: 8, maxSteps: 4, seed: 5 };

  beforeAll(() => {
    expect(fs.existsSync(NODE_FILE), `${NODE_FILE} is missing: run npm run build:native`).toBe(true);
    const work = tmpDir();
    const tarballs = path.join(work, 'tarballs');
    fs.mkdirSync(tarballs);

    // Main package: staged from what `files` lists, with dist/ compiled afresh (other test files rewrite
    // the repo's dist/ concurrently), then packed exactly as `npm pack` would pack the repo.
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const stage = path.join(work, 'lstmgen');
    fs.mkdirSync(stage);
    for (const f of ['package.json', 'index.js', 'index.d.ts', 'README.md', 'LICENSE']) {
      if (fs.existsSync(path.join(ROOT, f))) fs.copyFileSync(path.join(ROOT, f), path.join(stage, f));
    }
    execFileSync(
      process.execPath,
      [TSC, '-p', path.join(ROOT, 'tsconfig.json'), '--outDir', path.join(stage, 'dist')],
      { cwd: ROOT },
    );
    const main = pack(stage, tarballs);
    mainFiles = main.files;

    // Platform package: npm/linux-x64-gnu/ plus the CPU addon (what scripts/release/prepare-packages.sh does).
    const plat = path.join(work, PLATFORM);
    fs.cpSync(path.join(ROOT, 'npm', PLATFORM), plat, { recursive: true });
    fs.copyFileSync(NODE_FILE, path.join(plat, path.basename(NODE_FILE)));
    const platPkg = JSON.parse(fs.readFileSync(path.join(plat, 'package.json'), 'utf8'));
    expect(platPkg.version).toBe(pkg.version);
    expect(pkg.optionalDependencies?.[platPkg.name]).toBe(pkg.version);
    const platform = pack(plat, tarballs);
    expect(platform.files).toContain(`lstmgen.${PLATFORM}.node`);

    app = path.join(work, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    fs.writeFileSync(path.join(app, 'corpus.txt'), shakespeare(20_000));
    expect(spawnSync('cargo', ['--version'], { env }).error, 'cargo must not be on PATH').toBeDefined();
    // The CUDA package is an optional dependency that is not published: npm skips it.
    npm(['install', '--no-save', main.tarball, platform.tarball], app, 180_000);
  }, 300_000);

  it('the main package ships dist/, index.js, index.d.ts, no native or Rust files, and no install script', () => {
    expect(mainFiles).toEqual(
      expect.arrayContaining([
        'dist/index.js',
        'dist/index.d.ts',
        CLI_ENTRY,
        'dist/native/loader.js',
        'index.js',
        'index.d.ts',
        'package.json',
      ]),
    );
    expect(
      mainFiles.filter(
        (f) => /\.(node|rs|toml)$/.test(f) || f.startsWith('crates/') || f.startsWith('ts/') || f.startsWith('test/'),
      ),
    ).toEqual([]);
    const installed = JSON.parse(fs.readFileSync(path.join(app, 'node_modules', 'lstmgen', 'package.json'), 'utf8'));
    for (const s of ['preinstall', 'install', 'postinstall', 'prepare']) expect(installed.scripts?.[s]).toBeUndefined();
    expect(fs.existsSync(path.join(app, 'node_modules', `lstmgen-${PLATFORM}`, `lstmgen.${PLATFORM}.node`))).toBe(true);
  });

  it('ESM and CommonJS TypeScript train a tiny model and generate text', { timeout: 240_000 }, () => {
    const body = (imp: string) => `${imp}
const text: string = readFileSync('corpus.txt', 'utf8');
async function mainFn(): Promise<void> {
  const { model, history } = await train({ corpus: { text }, ...${JSON.stringify(tiny)} });
  const samples: string[] = await model.generate({ prompt: 'ROMEO:', maxTokens: 20, seed: 1 });
  const info: EngineInfo = engineInfo();
  const [steps, loss, sample] = [history.steps.length, history.steps[0].loss, samples[0]];
  console.log(JSON.stringify({ steps, loss, sample, binary: info.binary, device: model.device }));
}
mainFn().catch((e: unknown) => { console.error(e); process.exit(1); });
`;
    fs.writeFileSync(
      path.join(app, 'esm.mts'),
      body(`import { train, engineInfo, type EngineInfo } from 'lstmgen';\nimport { readFileSync } from 'node:fs';`),
    );
    fs.writeFileSync(
      path.join(app, 'cjs.cts'),
      body(
        "import lstmgen = require('lstmgen');\nimport fs = require('node:fs');\n" +
          'const { train, engineInfo } = lstmgen;\ntype EngineInfo = lstmgen.EngineInfo;\nconst { readFileSync } = fs;',
      ),
    );
    // Type-check against the installed typings (dist/*.d.ts, index.d.ts) and emit esm.mjs / cjs.cjs.
    run(
      process.execPath,
      [
        TSC,
        '--strict',
        '--module',
        'node16',
        '--moduleResolution',
        'node16',
        '--target',
        'es2022',
        '--typeRoots',
        path.join(ROOT, 'node_modules', '@types'),
        '--types',
        'node',
        'esm.mts',
        'cjs.cts',
      ],
      app,
    );
    expect(fs.readFileSync(path.join(app, 'esm.mjs'), 'utf8')).toMatch(/^import .* from 'lstmgen'/m);
    expect(fs.readFileSync(path.join(app, 'cjs.cjs'), 'utf8')).toContain(`require("lstmgen")`);
    for (const script of ['esm.mjs', 'cjs.cjs']) {
      const out = JSON.parse(run(process.execPath, [script], app).stdout);
      expect(out, script).toMatchObject({ steps: tiny.maxSteps, binary: 'cpu', device: 'cpu' });
      expect(out.loss).toBeGreaterThan(0);
      expect(out.sample.length).toBeGreaterThan(0);
    }
  });

  it('the CLI trains, generates, and `lstmgen info` shows the CPU build', { timeout: 240_000 }, () => {
    const npx = (...args: string[]) => run(process.execPath, [NPX_CLI, '--no', 'lstmgen', ...args], app);
    npx(
      'train',
      '--corpus',
      'corpus.txt',
      '--embedding-dim',
      '16',
      '--hidden-size',
      '32',
      '--seq-len',
      '16',
      '--batch-size',
      '8',
      '--max-steps',
      '4',
      '--out',
      'm.lstm',
    );
    expect(fs.existsSync(path.join(app, 'm.lstm'))).toBe(true);
    const gen = npx('generate', '--model', 'm.lstm', '--prompt', 'ROMEO:', '--max-tokens', '20', '--seed', '1');
    expect(gen.stdout.startsWith('ROMEO:')).toBe(true);
    expect(gen.stdout.trim().length).toBeGreaterThan('ROMEO:'.length);

    const info = npx('info').stdout;
    expect(info).toMatch(/^engine: CPU build on cpu \(candle \d+\.\d+\.\d+, \d+ CPU threads\)$/m);
    expect(info).toContain(`binary: ${fs.realpathSync(path.join(app, 'node_modules', `lstmgen-${PLATFORM}`))}`);
    expect(info).toMatch(/^cuda: not used: the CUDA build is not installed \(npm package lstmgen-linux-x64-gnu-cuda/m);
    const json = JSON.parse(npx('info', '--json').stdout);
    expect(json).toMatchObject({ binary: 'cpu', device: 'cpu', cudaCompiled: false });
  });
});

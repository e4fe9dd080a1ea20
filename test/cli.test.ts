// Needs the native addon (npm run build:native); compiles ts/ to dist/ first.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI, compileTs, jsonLines, lstmgen, runCli, TINY_FLAGS } from './cli-helpers';
import { last, shakespeare, tmpDir } from './helpers';

/** Whether this system has `mkfifo` (not Windows): the FIFO cases need it. */
const HAS_MKFIFO = spawnSync('sh', ['-c', 'command -v mkfifo']).status === 0;

describe('lstmgen CLI', () => {
  let dir: string;
  let corpus: string;
  let modelFile: string;
  const tiny = [...TINY_FLAGS, '--lr', '0.01'];

  beforeAll(() => {
    compileTs();
    dir = tmpDir();
    corpus = path.join(dir, 'corpus.txt');
    fs.writeFileSync(corpus, shakespeare(20_000));
    modelFile = path.join(dir, 'm.lstm');
  }, 120_000);

  it('train --json prints the run-log records (step, epoch) and done, and writes the model', () => {
    const r = lstmgen(
      'train',
      '--corpus',
      corpus,
      ...tiny,
      '--max-steps',
      '6',
      '--seed',
      '3',
      '--out',
      modelFile,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const lines = jsonLines(r.stdout);
    const steps = lines.filter((l) => l.type === 'step');
    expect(steps).toHaveLength(6);
    expect(Object.keys(steps[0]).sort()).toEqual(['epoch', 'gradNorm', 'loss', 'lr', 'step', 'tokensPerSec', 'type']);
    const epochs = lines.filter((l) => l.type === 'epoch');
    expect(epochs).toHaveLength(1);
    expect(Object.keys(epochs[0]).sort()).toEqual([
      'epoch',
      'step',
      'trainLoss',
      'type',
      'valAccuracy',
      'valBitsPerChar',
      'valLoss',
      'valPerplexity',
    ]);
    const done = last(lines);
    expect(done.type).toBe('done');
    expect(Object.keys(done).sort()).toEqual([
      'aborted',
      'modelPath',
      'step',
      'tokensPerSec',
      'type',
      'valLoss',
      'valPerplexity',
    ]);
    expect(done.modelPath).toBe(modelFile);
    expect(done.aborted).toBe(false);
    expect(done.valLoss).toBe(epochs[0].valLoss);
    expect(lines).toHaveLength(8);
    expect(fs.existsSync(modelFile)).toBe(true);
  });

  it('generate --json prints {"samples":[...]}, reproducible with --seed', () => {
    const args = [
      'generate',
      '--model',
      modelFile,
      '--prompt',
      'ROMEO:',
      '--max-tokens',
      '30',
      '--temperature',
      '0.8',
      '--num-samples',
      '2',
      '--seed',
      '4',
      '--json',
    ];
    const a = lstmgen(...args);
    expect(a.code, a.stderr).toBe(0);
    const [out] = jsonLines(a.stdout);
    expect(Object.keys(out)).toEqual(['samples']);
    expect(out.samples).toHaveLength(2);
    expect(lstmgen(...args).stdout).toBe(a.stdout);
  });

  it('eval --json prints loss, perplexity, accuracy, bitsPerChar, tokens', () => {
    const r = lstmgen('eval', '--model', modelFile, '--corpus', corpus, '--json');
    expect(r.code, r.stderr).toBe(0);
    const [out] = jsonLines(r.stdout);
    expect(Object.keys(out).sort()).toEqual(['accuracy', 'bitsPerChar', 'loss', 'perplexity', 'tokens']);
    expect(Number.isInteger(out.tokens) && (out.tokens as number) > 0).toBe(true);
    expect(out.perplexity as number).toBeCloseTo(Math.exp(out.loss as number), 6);
    expect(out.bitsPerChar as number).toBeCloseTo((out.loss as number) / Math.LN2, 6);
  });

  it('prints a readable summary without --json', () => {
    const out = path.join(dir, 'h.lstm');
    const r = lstmgen('train', '--corpus', corpus, ...tiny, '--max-steps', '3', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/epoch 1: train loss [\d.]+, val loss [\d.]+/);
    expect(r.stdout).toContain(`model saved to ${out}`);
    const g = lstmgen('generate', '--model', out, '--prompt', 'KING', '--max-tokens', '10', '--seed', '1');
    expect(g.code, g.stderr).toBe(0);
    expect(g.stdout.startsWith('KING')).toBe(true);
  });

  it.skipIf(!HAS_MKFIFO)('a tokenizer.json or a run log that is a FIFO or a device is refused unread (exit 2)', () => {
    const fifo = path.join(dir, 'named.pipe');
    if (!fs.existsSync(fifo)) execFileSync('mkfifo', [fifo]);
    const out = path.join(dir, 'never.lstm');
    for (const [args, message] of [
      [
        ['train', '--corpus', corpus, '--tokenizer', fifo, '--out', out],
        /it is a FIFO \(named pipe\), not a regular file/,
      ],
      [['train', '--corpus', corpus, '--tokenizer', '/dev/null', '--out', out], /it is a character device/],
      [['plot', fifo, '-o', path.join(dir, 'never.svg')], /cannot read run log .*it is a FIFO \(named pipe\)/],
      [['plot', '/dev/null', '-o', path.join(dir, 'never.svg')], /cannot read run log .*it is a character device/],
    ] as const) {
      // reading a FIFO blocks until a writer comes (and /dev/zero never ends): a short limit, as no read may start
      const r = runCli(CLI, [...args], { timeoutMs: 30_000 });
      expect(r.signal, `${args.join(' ')} hung`).toBeNull();
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(args[0] === 'train' ? /^lstmgen: --tokenizer \(file\): cannot read / : /^lstmgen: /);
    }
    expect(fs.existsSync(out)).toBe(false);
  });

  it('reports errors as "lstmgen: <message>" without a stack, exit 1, or 2 for usage and unreadable paths', () => {
    const missing = lstmgen('train', '--corpus', path.join(dir, 'nope.txt'), '--out', path.join(dir, 'x.lstm'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^lstmgen: cannot read corpus .*no such file/);
    expect(missing.stderr).not.toMatch(/\n\s+at /);
    expect(missing.stdout).toBe('');
    // paths that cannot be read exit 2 (a usage error); files that can be read but hold the wrong thing exit 1.
    // A FIFO would block a read forever and /dev/null is a device: neither is read as a model.
    const fifo = path.join(dir, 'model.fifo');
    if (!fs.existsSync(fifo)) execFileSync('mkfifo', [fifo]);
    for (const [args, message] of [
      [['generate', '--model', fifo], /cannot read model file .*it is a FIFO \(named pipe\), not a regular file/],
      [['tokenize', '--model', '/dev/null', '--text', 'a'], /cannot read model file .*it is a character device/],
      [['generate', '--model', path.join(dir, 'nope.lstm')], /cannot read model file .*no such file/],
      [['generate', '--model', dir], /cannot read model file .*it is a directory/],
      [
        ['train', '--corpus', path.join(dir, 'nope-*.txt'), '--out', path.join(dir, 'x.lstm')],
        /corpus glob .* matches no/,
      ],
      [['plot', path.join(dir, 'none.jsonl'), '-o', path.join(dir, 'x.svg')], /cannot read run log .*no such file/],
    ] as const) {
      const r = lstmgen(...args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    // a directory redirected to standard input (`tokenize < dir`) is an unreadable path, not an internal error
    const dirFd = fs.openSync(dir, 'r');
    try {
      const r = spawnSync(process.execPath, [CLI, 'tokenize', '--model', modelFile], {
        stdio: [dirFd, 'pipe', 'pipe'],
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^lstmgen: cannot read standard input: it is a directory/);
    } finally {
      fs.closeSync(dirFd);
    }
    const notModel = lstmgen('generate', '--model', corpus);
    expect(notModel.code).toBe(1);
    expect(notModel.stderr).toMatch(/not a safetensors file/);

    const bad = lstmgen('train', '--corpus', corpus, '--hidden-size', '0', '--json');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('lstmgen: --hidden-size: must be a positive integer, got 0\n');
    expect(bad.stdout).toBe('');

    const nan = lstmgen('train', '--corpus', corpus, '--lr', 'NaN');
    expect(nan.code).toBe(2);
    expect(nan.stderr).toContain('--lr: must be a finite number > 0, got NaN');

    const top = lstmgen('generate', '--model', modelFile, '--prompt', 'the', '--top-p', '1.5');
    expect(top.code).toBe(2);
    expect(top.stderr).toContain('--top-p: must be a number in (0, 1], got 1.5');
    expect(top.stdout).toBe(''); // nothing is printed before the options are checked
    const trainOnce = ['--corpus', corpus, ...tiny, '--max-steps', '1', '--out', path.join(dir, 'refused.lstm')];
    // a positive temperature too small for the engine's float32 sampling is the flag's error (exit 2), and the
    // server's and the library's: one rule in the options' schema
    const cold = lstmgen('generate', '--model', modelFile, '--prompt', 'the', '--temperature', '1e-40');
    expect(cold.code, cold.stderr).toBe(2);
    expect(cold.stderr).toMatch(
      /^lstmgen: --temperature: must be 0 \(greedy\) or a finite number >= 1e-30 .*, got 1e-40\n$/,
    );
    const coldSample = lstmgen('train', ...trainOnce, '--sample-every', '1', '--sample-temperature', '1e-40');
    expect(coldSample.code, coldSample.stderr).toBe(2);
    expect(coldSample.stderr).toMatch(/^lstmgen: --sample-temperature: must be 0 \(greedy\)/);
    // numbers are decimal: 0x10 is not 16 (Number() would read it so), nor 1_000 a thousand
    for (const [command, flag, value] of [
      ['generate', '--temperature', '0x10'],
      ['generate', '--top-k', '0x10'],
      ['generate', '--max-tokens', '1_000'],
      ['generate', '--seed', '0b101'],
      ['generate', '--top-p', ''],
      ['train', '--lr', '0o17'],
      ['train', '--hidden-size', '0X20'],
    ]) {
      const args = command === 'train' ? trainOnce : ['--model', modelFile, '--prompt', 'the'];
      const r = lstmgen(command, ...args, flag, value, '--json');
      expect(r.code, `${flag} ${value}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(`${flag} <`);
      expect(r.stderr).toContain(`'${value}' is invalid. not a decimal number`);
      expect(r.stdout).toBe('');
    }
    const hexSchedule = lstmgen('train', ...trainOnce, '--lr-schedule', 'cosine:warmupSteps=0x10');
    expect(hexSchedule.code, hexSchedule.stderr).toBe(2);
    expect(hexSchedule.stderr).toMatch(/^lstmgen: --lr-schedule \(warmupSteps\): .*got "0x10"/);
    const decimal = lstmgen(
      'generate',
      '--model',
      modelFile,
      '--prompt',
      'the',
      '--temperature',
      '8E-1',
      '--top-k',
      '+1e1',
      '--max-tokens',
      '5',
      '--json',
    );
    expect(decimal.code, decimal.stderr).toBe(0);
    const topK0 = lstmgen('generate', '--model', modelFile, '--prompt', 'the', '--top-k', '0');
    expect(topK0.code).toBe(2);
    expect(topK0.stderr).toBe('lstmgen: --top-k: must be an integer >= 1, got 0\n');

    const strict = lstmgen('generate', '--model', modelFile, '--prompt', 'th\u{1F600}', '--strict');
    expect(strict.code).toBe(1);
    expect(strict.stdout).toBe('');

    const unknown = lstmgen('train', '--corpus', corpus, '--hiden-size', '3');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^lstmgen: unknown option '--hiden-size'/);

    const huge = lstmgen('train', '--corpus', corpus, '--hidden-size', '1e8');
    expect(huge.code).toBe(2);
    expect(huge.stderr).toBe('lstmgen: --hidden-size: must be <= 1048576, got 100000000\n');

    const stop = lstmgen('generate', '--model', modelFile, '--stop', '.', '--stop', '');
    expect(stop.code).toBe(2);
    expect(stop.stderr).toBe('lstmgen: --stop: must not be empty, got ""\n');

    const truncated = path.join(dir, 'truncated.lstm');
    fs.writeFileSync(truncated, fs.readFileSync(modelFile).subarray(0, 100));
    const load = lstmgen('generate', '--model', truncated, '--json');
    expect(load.code).toBe(1);
    expect(load.stderr).toMatch(/^lstmgen: /);
    expect(load.stderr).not.toMatch(/\n\s+at /);
    expect(load.stdout).toBe('');
  });

  it('eval rejects bad --batch-size/--seq-len (exit 2, flag named) and a too-short text (exit 1), never NaN', () => {
    for (const [flag, value] of [
      ['--seq-len', '-4'],
      ['--batch-size', '-1'],
      ['--batch-size', '0'],
      ['--batch-size', '1.5'],
    ]) {
      const r = lstmgen('eval', '--model', modelFile, '--corpus', corpus, flag, value, '--json');
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toBe(`lstmgen: ${flag}: must be a positive integer, got ${value}\n`);
      expect(r.stdout).toBe('');
    }
    const short = path.join(dir, 'short.txt');
    fs.writeFileSync(short, 'abc');
    const r = lstmgen('eval', '--model', modelFile, '--corpus', short, '--json');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^lstmgen: .*3 tokens, shorter than --seq-len \+ 1/);
    expect(r.stdout).toBe('');
  });

  it('train checks --out and --checkpoint-dir before training and names the flag', () => {
    const noDir = lstmgen(
      'train',
      '--corpus',
      corpus,
      ...tiny,
      '--max-steps',
      '2',
      '--out',
      path.join(dir, 'no-such-dir', 'x.lstm'),
      '--json',
    );
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toBe(
      `lstmgen: --out: cannot write ${JSON.stringify(path.join(dir, 'no-such-dir', 'x.lstm'))}: ` +
        `directory ${JSON.stringify(path.join(dir, 'no-such-dir'))} does not exist\n`,
    );
    expect(noDir.stdout).toBe(''); // not one step ran
    const isDir = lstmgen('train', '--corpus', corpus, ...tiny, '--max-steps', '2', '--out', dir);
    expect(isDir.code).toBe(2);
    expect(isDir.stderr).toMatch(/^lstmgen: --out: .*it is a directory\n$/);
    const ckpt = lstmgen(
      'train',
      '--corpus',
      corpus,
      ...tiny,
      '--max-steps',
      '2',
      '--checkpoint-dir',
      path.join(corpus, 'sub'),
      '--out',
      path.join(dir, 'c.lstm'),
      '--json',
    );
    expect(ckpt.code).toBe(2);
    expect(ckpt.stderr).toMatch(/^lstmgen: --checkpoint-dir: cannot write .*cannot create directory/);
    expect(ckpt.stdout).toBe('');
    expect(fs.existsSync(path.join(dir, 'c.lstm'))).toBe(false);
  });

  it('warns on stderr, exit 0, when training diverged (final validation loss > ln V)', () => {
    const r = lstmgen(
      'train',
      '--corpus',
      corpus,
      ...tiny.filter((_, i) => i < 8),
      '--device',
      'cpu',
      '--lr',
      '1e6',
      '--max-steps',
      '12',
      '--out',
      path.join(dir, 'd.lstm'),
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /^lstmgen: warning: training diverged: the final validation loss .* is above ln\(vocabSize\) = [\d.]+.*lower lr/m,
    );
    expect(last(jsonLines(r.stdout)).type).toBe('done');
  });
});

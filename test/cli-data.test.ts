// Needs the native addon; compiles ts/ to dist/ first. The data flags of `lstmgen train` and `eval`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../ts/model';
import { compileTs, lstmgen, startLstmgen } from './cli-helpers';
import { shakespeare, tmpDir } from './helpers';

const TINY = ['--embedding-dim', '8', '--hidden-size', '16', '--seq-len', '8', '--batch-size', '4', '--device', 'cpu'];

describe('lstmgen data flags', () => {
  let dir: string;

  beforeAll(() => {
    compileTs();
    dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'a.txt'), shakespeare(3000));
    fs.writeFileSync(path.join(dir, 'b.txt'), 'ZZZZ QQQQ '.repeat(100));
    fs.mkdirSync(path.join(dir, 'more'));
    fs.writeFileSync(path.join(dir, 'more', 'c.txt'), 'xyz '.repeat(200));
    fs.writeFileSync(path.join(dir, 'more', 'skip.md'), '###');
    fs.writeFileSync(path.join(dir, 'names.txt'), Array.from({ length: 300 }, (_, i) => `name${i}`).join('\n'));
  }, 120_000);

  it('reads every repeated --corpus (files, directories with --ext, globs), not only the last', async () => {
    const out = path.join(dir, 'two.lstm');
    const r = lstmgen(
      'train',
      '--corpus',
      path.join(dir, 'a.txt'),
      '--corpus',
      path.join(dir, 'b.txt'),
      '--corpus',
      path.join(dir, 'more'),
      '--ext',
      '.txt',
      ...TINY,
      '--max-steps',
      '2',
      '--out',
      out,
    );
    expect(r.code, r.stderr).toBe(0);
    const model = await loadModel(out);
    for (const ch of ['Z', 'Q', 'x', 'y', 'F']) expect(model.tokenizer.idOf(ch), ch).toBeDefined();
    expect(model.tokenizer.idOf('#')).toBeUndefined(); // skip.md filtered out by --ext
    const glob = lstmgen('train', '--corpus', `${dir}/*.txt`, ...TINY, '--max-steps', '1', '--out', out, '--json');
    expect(glob.code, glob.stderr).toBe(0);
    expect((await loadModel(out)).tokenizer.idOf('n')).toBeDefined(); // names.txt matched
  });

  it('trains records with --format lines and without validation with --val-fraction 0', () => {
    const out = path.join(dir, 'names.lstm');
    const r = lstmgen(
      'train',
      '--corpus',
      path.join(dir, 'names.txt'),
      '--format',
      'lines',
      '--val-fraction',
      '0',
      ...TINY,
      '--max-steps',
      '3',
      '--out',
      out,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/epoch 1: train loss \d+\.\d+ \(no validation\)/);
    const e = lstmgen('eval', '--model', out, '--corpus', path.join(dir, 'names.txt'), '--json');
    expect(e.code, e.stderr).toBe(0);
    expect(JSON.parse(e.stdout).loss).toBeGreaterThan(0);
    const bad = lstmgen('train', '--corpus', path.join(dir, 'names.txt'), '--format', 'xml', '--out', out);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--format.*xml/);
  });

  it('refuses --out equal to a corpus file before anything is written', () => {
    const corpus = path.join(dir, 'a.txt');
    const before = fs.readFileSync(corpus);
    const r = lstmgen('train', '--corpus', dir, '--ext', 'txt', ...TINY, '--out', corpus);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^lstmgen: --out: ".*a\.txt" is the same file as the corpus .*choose another path/m);
    expect(fs.readFileSync(corpus).equals(before)).toBe(true);
  });

  it('stops on Ctrl-C while reading a large corpus', async () => {
    const big = path.join(tmpDir(), 'big.txt');
    const block = Buffer.from(shakespeare(1 << 20));
    const fd = fs.openSync(big, 'w');
    for (let i = 0; i < 300; i++) fs.writeSync(fd, block);
    fs.closeSync(fd);
    const child = startLstmgen('train', '--corpus', big, ...TINY, '--out', `${big}.lstm`);
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    // Ctrl-C once the CLI reads the corpus (it opens it after installing its handler): where /proc exists, wait for
    // the file among the child's open files, so a slow start under load cannot make the signal arrive too early
    const target = fs.realpathSync(big);
    const reading = () => {
      try {
        const fds = `/proc/${child.pid}/fd`;
        return fs.readdirSync(fds).some((fd) => {
          try {
            return fs.readlinkSync(`${fds}/${fd}`) === target;
          } catch {
            return false;
          }
        });
      } catch {
        return undefined;
      }
    };
    const started = performance.now();
    let killedAt = Number.NaN;
    const poll = setInterval(() => {
      const state = reading();
      if (state === true || (state === undefined && performance.now() - started > 1500)) {
        clearInterval(poll);
        killedAt = performance.now();
        child.kill('SIGINT');
      }
    }, 20);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearInterval(poll);
    expect(performance.now() - killedAt).toBeLessThan(10_000);
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/lstmgen: interrupted/);
    expect(fs.existsSync(`${big}.lstm`)).toBe(false);
  }, 60_000);
});

// Needs the native addon. The memory check of training counts what a training step really holds (the weights'
// gradients, Adam's moments and a step's copies, besides the activations), so a model with a huge embeddingDim is
// refused at once with the estimate and the limit, instead of training at the edge of memory. The limit is set
// with `ulimit -v` in a child process: the check takes the address space left under it into account.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI } from './cli-helpers';
import { ROOT, shakespeare, tmpDir } from './helpers';

const GB = 2 ** 30;

/** The address space (VmSize, bytes) of a Node process that has loaded lstmgen and its engine. */
function loadedVmSize(): number {
  const script =
    "require('./dist').engineInfo(); " +
    "const m = /VmSize:\\s+(\\d+) kB/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8')); console.log(m[1])";
  const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return Number(r.stdout.trim()) * 1024;
}

describe('the memory check of training', () => {
  it('refuses a huge embeddingDim up front with the estimate and the limit (the old count let it start, then abort)', () => {
    const dir = tmpDir();
    const corpus = path.join(dir, 'c.txt');
    fs.writeFileSync(corpus, shakespeare(20_000));
    // about 1.25e8 parameters (embeddingDim 115,000 x (vocabulary + 4 x hiddenSize)): 2.0 GB for the weights, their
    // gradients and Adam's moments, 3.5 GB with a step's copies; 2.75 GB of address space is left to the run
    const limitKb = Math.round((loadedVmSize() + 2.75 * GB) / 1024);
    const args = [
      'train',
      '--corpus',
      corpus,
      '--embedding-dim',
      '115000',
      '--hidden-size',
      '256',
      '--batch-size',
      '1',
    ];
    args.push('--seq-len', '8', '--device', 'cpu'); // a step's activations are small: the weights' copies are what does not fit
    const r = spawnSync(
      'bash',
      [
        '-c',
        `ulimit -v ${limitKb} && exec "$@"`,
        'bash',
        process.execPath,
        CLI,
        ...args,
        '--max-steps',
        '1',
        '--out',
        path.join(dir, 'm.lstm'),
      ],
      {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      /^lstmgen: training this model \(parameters, gradients, Adam moments and the copies a step makes\) needs about 3\.\d\d GiB but only 2\.\d\d GiB of memory is available to this process .*; reduce --hidden-size, --num-layers, --embedding-dim or the vocabulary\n$/,
    );
    expect(fs.existsSync(path.join(dir, 'm.lstm'))).toBe(false);
  }, 120_000);
});

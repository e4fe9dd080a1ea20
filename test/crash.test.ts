// Needs the native addon and the compiled CLI (npm run build). Crash consistency: a checkpointing
// training run killed with SIGKILL at seeded random moments always leaves a newest complete checkpoint
// that loads, and --resume from it continues with the losses of an uninterrupted run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listCheckpoints, loadModel } from '../ts/index';
import { mulberry32 } from '../ts/random';
import { CLI, runCli, startLstmgen } from './cli-helpers';
import { last, shakespeare, tmpDir } from './helpers';

const STEPS = 60;
const KILLS = 3;

/** Step losses of `--json` output, by step. */
function stepLosses(stdout: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const r = JSON.parse(line) as { type: string; step: number; loss: number };
    if (r.type === 'step') out.set(r.step, r.loss);
  }
  return out;
}

describe('crash consistency', () => {
  it('SIGKILL at random moments: the newest checkpoint loads and --resume continues exactly', async () => {
    const dir = tmpDir();
    const corpus = path.join(dir, 'corpus.txt');
    fs.writeFileSync(corpus, shakespeare(30_000));
    const args = (out: string, ckpt: string) => [
      'train',
      '--corpus',
      corpus,
      '--embedding-dim',
      '16',
      '--hidden-size',
      '48',
      '--seq-len',
      '32',
      '--batch-size',
      '8',
      '--dropout',
      '0.1',
      '--device',
      'cpu',
      '--seed',
      '9',
      '--max-steps',
      String(STEPS),
      '--checkpoint-dir',
      ckpt,
      '--checkpoint-every',
      '3',
      '--keep',
      '2',
      '--json',
      '--out',
      out,
    ];
    const full = runCli(CLI, args(path.join(dir, 'full.lstm'), path.join(dir, 'full-ckpt')));
    expect(full.code).toBe(0);
    const reference = stepLosses(full.stdout);
    expect(reference.size).toBe(STEPS);

    const random = mulberry32(20261201); // the same kill moments on every run
    for (let k = 0; k < KILLS; k++) {
      const ckpt = path.join(dir, `ckpt-${k}`);
      const child = startLstmgen(...args(path.join(dir, `killed-${k}.lstm`), ckpt));
      let seen = 0;
      const killAt = 6 + Math.floor(random() * (STEPS - 12)); // a step count past the first checkpoint
      await new Promise<void>((resolve) => {
        child.stdout.on('data', (d: Buffer) => {
          seen += (d.toString().match(/"type":"step"/g) ?? []).length;
          // Kill a random fraction of a step later, so that some kills land inside a checkpoint write.
          if (seen >= killAt && !child.killed) setTimeout(() => child.kill('SIGKILL'), random() * 20);
        });
        child.on('exit', () => resolve());
      });
      const checkpoints = listCheckpoints(ckpt);
      expect(checkpoints.length, `run ${k}: no complete checkpoint`).toBeGreaterThan(0);
      const newest = last(checkpoints);
      const m = await loadModel(newest.path);
      expect(m.steps).toBe(newest.step);
      const resumed = runCli(CLI, [...args(path.join(dir, `resumed-${k}.lstm`), ckpt), '--resume', ckpt]);
      expect(resumed.code, resumed.stderr).toBe(0);
      const losses = stepLosses(resumed.stdout);
      expect(losses.size).toBe(STEPS - newest.step);
      for (const [step, loss] of losses) expect(loss, `run ${k}, step ${step}`).toBe(reference.get(step));
    }
  }, 240_000);
});

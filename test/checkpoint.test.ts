// Needs the native addon. Checkpoints and exact resume.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, ModelFileError } from '../ts/errors';
import type { CheckpointInfo } from '../ts/events';
import { loadModel } from '../ts/model';
import { listCheckpoints, readCheckpoint } from '../ts/train/checkpoint';
import { type TrainResult, train } from '../ts/train/loop';
import { readRunLog } from '../ts/train/runlog';
import { last, shakespeare, TINY, tmpDir } from './helpers';

/** 2 layers with dropout, a short corpus (28 steps per epoch) so runs cross epoch boundaries. */
const BASE = { ...TINY, corpus: { text: shakespeare(4_000) }, numLayers: 2, dropout: 0.3, lr: 0.05 };

const losses = (r: TrainResult) => r.history.steps.map((s) => s.loss);
const rates = (r: TrainResult) => r.history.steps.map((s) => s.lr);

/** Logits of a fixed input as bytes, to compare weights exactly. */
async function logitBytes(r: TrainResult): Promise<Buffer> {
  const ids = r.model.tokenizer.encode(shakespeare(64));
  const x = await r.model.logits(ids, 2, 32);
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
}

describe('checkpoints and exact resume', () => {
  it('resuming from a periodic checkpoint gives the same losses, rates and weights step for step', async () => {
    const cfg = {
      ...BASE,
      maxSteps: 60,
      evalEvery: 3,
      lrSchedule: { type: 'plateau' as const, patience: 1, minDelta: 0.03 },
    };
    const dir = tmpDir();
    const written: CheckpointInfo[] = [];
    const full = await train({
      ...cfg,
      checkpointDir: dir,
      checkpointEvery: 10,
      keepCheckpoints: 3,
      onCheckpoint: (c) => written.push(c),
    });
    expect(full.history.epochs.length).toBeGreaterThanOrEqual(2); // the resumed part crosses an epoch boundary
    // the plateau schedule reduced the rate before step 41: its state matters
    expect(full.history.steps[40].lr).toBeLessThan(cfg.lr);

    // every 10 steps + best; only the newest 3 periodic files remain; the final one is not written twice
    const periodic = written.filter((c) => c.kind !== 'best').map((c) => c.step);
    expect(periodic).toEqual([10, 20, 30, 40, 50, 60]);
    expect(written.some((c) => c.kind === 'best')).toBe(true);
    expect(fs.readdirSync(dir).sort()).toEqual([
      'best.lstm',
      'step-00000040.lstm',
      'step-00000050.lstm',
      'step-00000060.lstm',
    ]);
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([40, 50, 60]);

    const resumed = await train({ ...cfg, resumeFrom: path.join(dir, 'step-00000040.lstm') });
    expect(resumed.history.steps[0].step).toBe(41);
    expect(losses(resumed)).toEqual(losses(full).slice(40)); // exact equality, dropout on
    expect(rates(resumed)).toEqual(rates(full).slice(40));
    expect(resumed.history.evals.map((e) => e.valLoss)).toEqual(
      full.history.evals.filter((e) => e.step > 40).map((e) => e.valLoss),
    );
    expect((await logitBytes(resumed)).equals(await logitBytes(full))).toBe(true);

    // a checkpoint is also a model file
    const best = await loadModel(path.join(dir, 'best.lstm'), { device: 'cpu' });
    expect(best.tokenizer.tokens).toEqual(full.model.tokenizer.tokens);
  });

  it('an aborted run, resumed from its directory, continues exactly (cosine schedule with warmup)', async () => {
    const cfg = { ...BASE, maxSteps: 45, lrSchedule: { type: 'cosine' as const, warmupSteps: 5, minLr: 1e-3 } };
    const full = await train(cfg);
    const dir = tmpDir();
    const controller = new AbortController();
    const first = await train({
      ...cfg,
      checkpointDir: dir,
      signal: controller.signal,
      onStep: (s) => s.step === 17 && controller.abort(),
    });
    expect(first.history.aborted).toBe(true);
    expect(first.history.checkpoints).toEqual([
      { step: 17, path: path.join(dir, 'step-00000017.lstm'), kind: 'final' },
    ]);
    const rest = await train({ ...cfg, resumeFrom: dir });
    expect([...losses(first), ...losses(rest)]).toEqual(losses(full));
    expect([...rates(first), ...rates(rest)]).toEqual(rates(full));
    expect(rest.history.epochs.map((e) => e.valLoss)).toEqual(full.history.epochs.map((e) => e.valLoss));
  });

  it('a run ended by maxSteps at an epoch end resumes with more steps; the metrics log is appended to', async () => {
    const cfg = { ...BASE, lrSchedule: { type: 'step' as const, stepSize: 10, gamma: 0.7 } };
    const full = await train({ ...cfg, maxSteps: 50 });
    const dir = tmpDir();
    const log = path.join(dir, 'run.jsonl');
    const first = await train({ ...cfg, maxSteps: 28, checkpointDir: dir, logFile: log });
    const rest = await train({ ...cfg, maxSteps: 50, resumeFrom: path.join(dir, 'step-00000028.lstm'), logFile: log });
    expect([...losses(first), ...losses(rest)]).toEqual(losses(full));
    const steps = readRunLog(log).filter((r) => r.type === 'step');
    expect(steps.map((r) => r.step)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(
      readRunLog(log)
        .filter((r) => r.type === 'start')
        .map((r) => (r as { startStep: number }).startStep),
    ).toEqual([0, 28]);
  });

  it('takes shape and tokenizer from the checkpoint, rejects incompatible options, allows a new lr', async () => {
    const dir = tmpDir();
    await train({ ...BASE, maxSteps: 10, checkpointDir: dir });
    const file = path.join(dir, 'step-00000010.lstm');
    const ckpt = await readCheckpoint(file, 'cpu');
    expect(ckpt.state).toMatchObject({ step: 10, epoch: 1, batch: 10 });
    expect(ckpt.model.steps).toBe(10); // Adam's step count is restored

    const err = (p: Promise<unknown>) =>
      p.then(
        () => new Error('resolved'),
        (e: unknown) => e,
      );
    const shape = await err(train({ ...BASE, hiddenSize: 64, resumeFrom: file }));
    expect(shape).toBeInstanceOf(ConfigError);
    expect((shape as ConfigError).field).toBe('hiddenSize');
    expect((shape as Error).message).toMatch(
      /hiddenSize: cannot change when resuming \(the checkpoint has 32, got 64\)/,
    );
    expect(await err(train({ ...BASE, tokenizer: 'word', resumeFrom: file }))).toMatchObject({ field: 'tokenizer' });
    expect(await err(train({ ...BASE, batchSize: 4, resumeFrom: file }))).toMatchObject({ field: 'batchSize' });
    const otherText = await err(
      train({ ...BASE, corpus: { text: shakespeare(4_000).toUpperCase() }, resumeFrom: file }),
    );
    expect(otherText).toBeInstanceOf(ConfigError);
    // the tokenizer options are the checkpoint's, so the corpus is to blame
    expect((otherText as Error).message).toMatch(/^corpus: gives a different vocabulary than the checkpoint/);

    // a plain model file has no training state
    const plain = path.join(dir, 'plain.lstm');
    await ckpt.model.save(plain);
    expect(await err(train({ ...BASE, resumeFrom: plain }))).toBeInstanceOf(ModelFileError);
    expect(await err(train({ ...BASE, resumeFrom: path.join(dir, 'missing.lstm') }))).toBeInstanceOf(ModelFileError);

    // options left out come from the checkpoint; lr and epochs may change
    const { corpus, numLayers, dropout, hiddenSize, ...loose } = BASE;
    void [numLayers, dropout, hiddenSize];
    const same = await train({ ...BASE, maxSteps: 14, resumeFrom: file });
    const slower = await train({ ...loose, corpus, maxSteps: undefined, epochs: 1, lr: 1e-3, resumeFrom: file });
    expect(slower.history.steps[0].step).toBe(11);
    expect(last(slower.history.steps).step).toBe(28); // the rest of epoch 1
    expect(slower.history.steps[0].lr).toBe(1e-3);
    expect(slower.history.steps[0].loss).toBe(same.history.steps[0].loss); // step 11's loss precedes its update
    expect(slower.history.steps[1].loss).not.toBe(same.history.steps[1].loss);
  });

  it('rejects checkpoint options without checkpointDir', async () => {
    await expect(train({ ...BASE, checkpointEvery: 5 })).rejects.toThrow(/checkpointEvery: needs checkpointDir/);
    await expect(train({ ...BASE, keepCheckpoints: 0, checkpointDir: tmpDir() })).rejects.toThrow(ConfigError);
  });
});

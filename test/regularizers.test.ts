// Needs the native addon. The regularizers and SGD through train(): they learn, resume exactly, and tied
// weights are one tensor in the model file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../ts/errors';
import { type TrainResult, train } from '../ts/train/loop';
import { shakespeare, TINY, tensorBytes, tmpDir } from './helpers';

/** Every regularizer on: 2 layers, E = H so that the weights can be tied. */
const ALL = {
  ...TINY,
  corpus: { text: shakespeare(4_000) },
  embeddingDim: 32,
  numLayers: 2,
  dropout: 0.1,
  dropoutEmbedding: 0.2,
  dropoutHidden: 0.2,
  dropoutOutput: 0.3,
  dropoutWords: 0.1,
  weightDrop: 0.3,
  tieWeights: true,
  ar: 2,
  tar: 1,
};

const losses = (r: TrainResult) => r.history.steps.map((s) => s.loss);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('regularizers and SGD', () => {
  it('train with every regularizer on, and the same seed gives the same losses', async () => {
    const cfg = { ...ALL, maxSteps: 60, lr: 1e-2 };
    const a = await train(cfg);
    const l = losses(a);
    expect(l.every(Number.isFinite)).toBe(true);
    expect(mean(l.slice(-10))).toBeLessThan(mean(l.slice(0, 10)) - 0.3);
    expect(losses(await train(cfg))).toEqual(l);
    const other = await train({ ...cfg, weightDrop: 0.5 });
    expect(losses(other)).not.toEqual(l); // the masks take part
  });

  it('resumes exactly with the regularizers on (masks from the seed and step)', async () => {
    const dir = tmpDir();
    const cfg = { ...ALL, maxSteps: 40, lr: 0.2, optimizer: 'sgd' as const, momentum: 0.9 };
    const full = await train({ ...cfg, checkpointDir: dir, checkpointEvery: 20 });
    const resumed = await train({ ...cfg, resumeFrom: path.join(dir, 'step-00000020.lstm') });
    expect(losses(resumed)).toEqual(losses(full).slice(20));
    // the regularizers and the optimizer come from the checkpoint when the resumed run does not give them
    const file = path.join(dir, 'step-00000020.lstm');
    const bare = await train({ corpus: ALL.corpus, maxSteps: 40, lr: cfg.lr, device: 'cpu', resumeFrom: file });
    expect(losses(bare)).toEqual(losses(full).slice(20));
    await expect(train({ ...cfg, weightDrop: 0.1, resumeFrom: file })).rejects.toMatchObject({ field: 'weightDrop' });
  });

  it('writes the tied decoder weight as the embedding (PyTorch names) and refuses tying different widths', async () => {
    const dir = tmpDir();
    const { model } = await train({ ...ALL, maxSteps: 5 });
    const file = path.join(dir, 'tied.lstm');
    await model.save(file);
    const t = tensorBytes(fs.readFileSync(file));
    expect(t['decoder.weight'].equals(t['embedding.weight'])).toBe(true);
    await expect(train({ ...ALL, embeddingDim: 16 })).rejects.toMatchObject({ field: 'tieWeights' });
    await expect(train({ ...ALL, embeddingDim: 16 })).rejects.toBeInstanceOf(ConfigError);
    await expect(train({ ...TINY, momentum: 0.9 })).rejects.toMatchObject({ field: 'momentum' });
  });

  it('plain SGD with momentum learns', async () => {
    const r = await train({ ...TINY, maxSteps: 60, optimizer: 'sgd', momentum: 0.9, lr: 0.5, clipNorm: 1 });
    const l = losses(r);
    expect(mean(l.slice(-10))).toBeLessThan(mean(l.slice(0, 10)) - 0.3);
  });
});

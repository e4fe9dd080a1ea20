// Needs the native addon. NT-ASGD and the projection (projSize) through train(): the trigger fires and the
// saved model holds the average, a resumed run continues exactly, a projected model is saved under PyTorch's
// names, ties an embedding narrower than the LSTM, and the exports refuse it with a clear error.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../ts/errors';
import type { AveragingInfo } from '../ts/events';
import { exportModel } from '../ts/export/write';
import { loadModel } from '../ts/model';
import { type TrainResult, train } from '../ts/train/loop';
import type { RunRecord } from '../ts/train/runlog';
import { jsonLines, lstmgen, TINY_FLAGS } from './cli-helpers';
import { shakespeare, TINY, tensorBytes, tmpDir } from './helpers';

const losses = (r: TrainResult) => r.history.steps.map((s) => s.loss);

/**
 * NT-ASGD with a validation every 3 steps, an interval of 1 and a large rate on 4,000 characters, so that a
 * validation loss rises within a short run (on tinyshakespeare: after step 33).
 */
const ASGD = {
  ...TINY,
  corpus: { text: shakespeare(4_000) },
  maxSteps: 60,
  optimizer: 'ntasgd' as const,
  nonmono: 1,
  lr: 8,
  clipNorm: 0.5,
  evalEvery: 3,
};

describe('NT-ASGD', () => {
  it('starts averaging at the first validation the rule picks, and the saved model holds the average', async () => {
    const dir = tmpDir();
    const log = path.join(dir, 'run.jsonl');
    const told: AveragingInfo[] = [];
    const r = await train({ ...ASGD, logFile: log, onAveraging: (a) => void told.push(a) });
    const vals = r.history.evals.map((e) => e.valLoss);
    // the rule (Merity et al. 2017, Algorithm 1) on the validation losses of the run
    let fired: number | null = null;
    for (let t = 0; t < vals.length && fired === null; t++) {
      if (t > ASGD.nonmono && vals[t] > Math.min(...vals.slice(0, t - ASGD.nonmono))) fired = r.history.evals[t].step;
    }
    expect(fired).not.toBeNull();
    expect(r.history.averagingStart).toBe(fired);
    const records = fs
      .readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as RunRecord);
    expect(records.filter((x) => x.type === 'averaging').map((x) => x.step)).toEqual([fired]);
    expect(records.filter((x) => x.type === 'averaging')).toEqual(told.map((a) => ({ type: 'averaging', ...a })));
    // the model evaluated and saved is the average: a plain-SGD twin (the same iterates) ends elsewhere
    const sgd = await train({ ...ASGD, optimizer: 'sgd', nonmono: undefined });
    expect(losses(sgd)).toEqual(losses(r)); // the training losses are those of the iterates, identical
    const file = path.join(dir, 'avg.lstm');
    await r.model.save(file);
    const avg = tensorBytes(fs.readFileSync(file));
    await sgd.model.save(path.join(dir, 'sgd.lstm'));
    const iterate = tensorBytes(fs.readFileSync(path.join(dir, 'sgd.lstm')));
    expect(avg['lstm.weight_hh_l0'].equals(iterate['lstm.weight_hh_l0'])).toBe(false);
    const loaded = await loadModel(file);
    const text = { text: shakespeare(4_000).slice(-1_000) };
    expect((await loaded.evaluate(text)).loss).toBeCloseTo((await r.model.evaluate(text)).loss, 10);
  });

  it('lstmgen train --json prints the averaging record as the --log file has it', () => {
    const dir = tmpDir();
    const corpus = path.join(dir, 'c.txt');
    fs.writeFileSync(corpus, ASGD.corpus.text);
    const log = path.join(dir, 'run.jsonl');
    const flags = ['--optimizer', 'ntasgd', '--nonmono', '1', '--lr', '8', '--clip-norm', '0.5', '--eval-every', '3'];
    const r = lstmgen(
      'train',
      '--corpus',
      corpus,
      ...TINY_FLAGS,
      ...flags,
      '--max-steps',
      '60',
      '--seed',
      '7',
      '--json',
      '--log',
      log,
      '--out',
      path.join(dir, 'm.lstm'),
    );
    expect(r.code, r.stderr).toBe(0);
    const printed = jsonLines(r.stdout).filter((x) => x.type === 'averaging');
    const logged = jsonLines(fs.readFileSync(log, 'utf8')).filter((x) => x.type === 'averaging');
    expect(logged).toHaveLength(1);
    expect(printed).toEqual(logged);
  });

  it('resumes exactly from a checkpoint taken while averaging', async () => {
    const dir = tmpDir();
    const full = await train({ ...ASGD, checkpointDir: dir, checkpointEvery: 45 });
    const start = full.history.averagingStart;
    expect(start).not.toBeNull();
    expect(start as number).toBeLessThan(45); // the checkpoint holds the iterates and the average
    const resumed = await train({ ...ASGD, resumeFrom: path.join(dir, 'step-00000045.lstm') });
    expect(losses(resumed)).toEqual(losses(full).slice(45));
    expect(resumed.history.averagingStart).toBe(start);
    const a = path.join(dir, 'a.lstm');
    const b = path.join(dir, 'b.lstm');
    await full.model.save(a);
    await resumed.model.save(b);
    const [ta, tb] = [tensorBytes(fs.readFileSync(a)), tensorBytes(fs.readFileSync(b))];
    for (const name of Object.keys(ta)) expect(ta[name].equals(tb[name]), name).toBe(true);
  });

  it('refuses nonmono without ntasgd, and ntasgd without validation', async () => {
    await expect(train({ ...TINY, nonmono: 3 })).rejects.toMatchObject({ field: 'nonmono' });
    await expect(train({ ...TINY, optimizer: 'ntasgd', valFraction: 0 })).rejects.toMatchObject({
      field: 'optimizer',
    });
    await expect(train({ ...TINY, optimizer: 'ntasgd', nonmono: 0 })).rejects.toBeInstanceOf(ConfigError);
  });
});

/** A projection of both layers to 8 wide, tied to an 8-wide embedding of a 32-unit LSTM. */
const PROJ = { ...TINY, numLayers: 2, embeddingDim: 8, hiddenSize: 32, projSize: 8, tieWeights: true, maxSteps: 40 };

describe('projSize', () => {
  it('learns, saves weight_hr_l{k} under PyTorch names and shapes, and loads back to the same loss', async () => {
    const dir = tmpDir();
    const r = await train(PROJ);
    const l = losses(r);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(l.slice(-5))).toBeLessThan(mean(l.slice(0, 5)) - 0.3);
    const s = r.model.summary();
    expect(s.projSize).toBe(8);
    const shapes = Object.fromEntries(s.tensors.map((t) => [t.name, t.shape]));
    expect(shapes['lstm.weight_hr_l0']).toEqual([8, 32]);
    expect(shapes['lstm.weight_hr_l1']).toEqual([8, 32]);
    expect(shapes['lstm.weight_hh_l0']).toEqual([128, 8]);
    expect(shapes['lstm.weight_ih_l1']).toEqual([128, 8]);
    expect(shapes['decoder.weight']).toEqual([r.model.tokenizer.vocabSize, 8]);
    const file = path.join(dir, 'proj.lstm');
    await r.model.save(file);
    const t = tensorBytes(fs.readFileSync(file));
    expect(t['lstm.weight_hr_l1'].length).toBe(4 * 8 * 32);
    expect(t['decoder.weight'].equals(t['embedding.weight'])).toBe(true);
    const loaded = await loadModel(file);
    const text = { text: shakespeare(3_000) };
    expect((await loaded.evaluate(text)).loss).toBeCloseTo((await r.model.evaluate(text)).loss, 10);
    expect((await loaded.generate({ prompt: 'Th', maxTokens: 20, seed: 3 }))[0]).toBe(
      (await r.model.generate({ prompt: 'Th', maxTokens: 20, seed: 3 }))[0],
    );
  });

  it('resumes exactly', async () => {
    const dir = tmpDir();
    const full = await train({ ...PROJ, dropoutOutput: 0.2, weightDrop: 0.2, checkpointDir: dir, checkpointEvery: 20 });
    const resumed = await train({
      ...PROJ,
      dropoutOutput: 0.2,
      weightDrop: 0.2,
      resumeFrom: path.join(dir, 'step-00000020.lstm'),
    });
    expect(losses(resumed)).toEqual(losses(full).slice(20));
  });

  it('refuses a projection as wide as the LSTM, and tying widths that differ, naming what to set', async () => {
    await expect(train({ ...TINY, projSize: 32 })).rejects.toMatchObject({ field: 'projSize' });
    const tie = train({ ...TINY, embeddingDim: 8, tieWeights: true });
    await expect(tie).rejects.toMatchObject({ field: 'tieWeights' });
    await expect(train({ ...TINY, embeddingDim: 8, tieWeights: true })).rejects.toThrow(/set projSize to 8/);
    await expect(train({ ...PROJ, projSize: 4 })).rejects.toThrow(/set projSize to 8/);
  });

  it('TF.js and ONNX exports refuse a projected model with a ConfigError, writing nothing', async () => {
    const dir = tmpDir();
    const { model } = await train({ ...PROJ, maxSteps: 2 });
    for (const format of ['tfjs', 'onnx'] as const) {
      const out = path.join(dir, `out-${format}`);
      const e = await exportModel(model, { format, out }).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(ConfigError);
      expect(String(e)).toMatch(/projection \(projSize 8/);
      expect(fs.existsSync(out)).toBe(false);
    }
  });
});

// Needs the native addon. Samples while training (sampleEvery): reported through onSample, history, the run log,
// the CLI's progress bar (test/cli-finetune.test.ts has the CLI's lines); they leave the run's steps as they were.
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { sampleLines, TrainProgress } from '../ts/cli/train-progress';
import { ConfigError } from '../ts/errors';
import type { SampleInfo } from '../ts/events';
import { type TrainResult, train } from '../ts/train/loop';
import { plotRun } from '../ts/train/plot';
import { readRunLog } from '../ts/train/runlog';
import { shakespeare, TINY, tmpDir } from './helpers';

/** 2 layers with dropout, so that the dropout masks and the carried state both shape the losses. */
const BASE = { ...TINY, numLayers: 2, dropout: 0.3, maxSteps: 12 };

/** Logits of a fixed input, to compare weights exactly. */
async function logits(r: TrainResult): Promise<number[]> {
  return Array.from(await r.model.logits(r.model.tokenizer.encode(shakespeare(32)), 2, 16));
}

describe('samples while training', () => {
  it('every sampleEvery steps: onSample, history and the log; the losses and weights are those of a run without', async () => {
    const dir = tmpDir();
    const logFile = path.join(dir, 'run.jsonl');
    const seen: SampleInfo[] = [];
    const cfg = { ...BASE, evalEvery: 6 };
    const sampled = await train({
      ...cfg,
      sampleEvery: 4,
      samplePrompt: 'The ',
      sampleTokens: 30,
      logFile,
      onSample: (s) => {
        seen.push(s);
      },
    });
    const plain = await train(cfg);
    expect(sampled.history.steps.map((s) => s.loss)).toEqual(plain.history.steps.map((s) => s.loss));
    expect(sampled.history.evals).toEqual(plain.history.evals);
    expect(await logits(sampled)).toEqual(await logits(plain));

    expect(seen.map((s) => s.step)).toEqual([4, 8, 12]);
    expect(sampled.history.samples).toEqual(seen);
    for (const s of seen) {
      expect(s).toMatchObject({ epoch: 1, prompt: 'The ', temperature: 0.8, seed: BASE.seed });
      expect([...s.text]).toHaveLength(30); // char tokens: one code point each
    }
    const records = readRunLog(logFile).filter((r) => r.type === 'sample');
    expect(records).toEqual(seen.map((s) => ({ type: 'sample', ...s })));
    // the log's step records come before the sample of their step
    const types = readRunLog(logFile).map((r) =>
      r.type === 'step' || r.type === 'sample' ? `${r.type}${r.step}` : '',
    );
    expect(types.indexOf('sample4')).toBe(types.indexOf('step4') + 1);
    // plot draws the same chart with or without the sample records
    const all = readRunLog(logFile);
    expect(await plotRun(all)).toEqual(await plotRun(all.filter((r) => r.type !== 'sample')));
    expect(plain.history.samples).toEqual([]);
  });

  it('the time of sampling is not counted in tokens/s', async () => {
    let now = 0;
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => ++now); // every reading 1 ms after the last
    try {
      const r = await train({
        ...BASE,
        maxSteps: 4,
        sampleEvery: 1,
        sampleTokens: 5,
        onSample: () => {
          now += 1e6; // sampling "takes" 1000 s
        },
      });
      // a step is timed by two readings 1 ms apart: batchSize * seqLen tokens per ms, whatever sampling took
      const rate = BASE.batchSize * BASE.seqLen * 1000;
      expect(r.history.samples).toHaveLength(4);
      expect(r.history.steps.map((s) => s.tokensPerSec)).toEqual([rate, rate, rate, rate]);
      expect(r.history.tokensPerSec).toBe(rate);
    } finally {
      clock.mockRestore();
    }
  });

  it('the same sampleSeed at every step: the samples of unchanged weights are the same text', async () => {
    const seen: SampleInfo[] = [];
    // lr this small leaves the weights as they were but for ~1e-9: the same draws pick the same tokens
    await train({
      ...BASE,
      maxSteps: 2,
      lr: 1e-9,
      sampleEvery: 1,
      sampleTemperature: 1,
      sampleSeed: 5,
      sampleTokens: 20,
      onSample: (s) => {
        seen.push(s);
      },
    });
    expect(seen.map((s) => s.seed)).toEqual([5, 5]);
    expect(seen[1].text).toBe(seen[0].text);
  });

  it('an empty prompt starts a record corpus at the boundary token (its vocabulary has no line break)', async () => {
    const r = await train({ ...BASE, format: 'lines', maxSteps: 2, sampleEvery: 2, sampleTokens: 40 });
    expect(r.model.tokenizer.idOf('\n')).toBeUndefined();
    expect(r.history.samples).toHaveLength(1);
    expect(r.history.samples[0]).toMatchObject({ step: 2, prompt: '' });
    expect([...r.history.samples[0].text]).toHaveLength(40); // the boundary decodes as one line break
  });

  it('a prompt with symbols outside the vocabulary is a ConfigError before the first step', async () => {
    let steps = 0;
    const run = train({
      ...BASE,
      sampleEvery: 2,
      samplePrompt: 'Ω',
      onStep: () => {
        steps++;
      },
    });
    await expect(run).rejects.toBeInstanceOf(ConfigError);
    await expect(run).rejects.toMatchObject({ field: 'samplePrompt' });
    await expect(run).rejects.toThrow(/"Ω"/);
    expect(steps).toBe(0);
  });

  it('a terminal shows the sample above the bar and draws the bar again below it', () => {
    let out = '';
    const stream = new Writable({
      write(chunk, _encoding, done) {
        out += String(chunk);
        done();
      },
    }) as unknown as NodeJS.WriteStream;
    Object.assign(stream, { isTTY: true, columns: 120 });
    const progress = new TrainProgress(stream);
    progress.start(10, 0, { epoch: 1, loss: '-', tps: '-' });
    progress.update(4, { epoch: 1, loss: '2.5000', tps: 1000 });
    const sample = sampleLines({ step: 4, epoch: 1, prompt: 'The ', text: 'whale', temperature: 0.8, seed: 1 });
    const before = out.length;
    progress.log(sample);
    const after = out.slice(before);
    progress.stop();
    const at = after.indexOf(sample);
    expect(at).toBeGreaterThanOrEqual(0);
    expect(after.slice(0, at)).toContain('\x1b[2K'); // the bar's line is cleared before the text
    expect(after.slice(at + sample.length)).toMatch(/train \|.*\| 4\/10 steps/); // and drawn again below it
    expect(sample).toBe('--- sample at step 4 (epoch 1, temperature 0.8) ---\nThe whale\n');
  });
});

// Needs the native addon. Long runs stay healthy: memory, concurrent calls, panics.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NativeError, wrapNative } from '../ts/errors';
import { train } from '../ts/train/loop';
import { TINY } from './helpers';

const MB = 2 ** 20;

describe('long runs', () => {
  // Measured here (2 cores, tiny model, 3,000 steps = 21 epochs with validation): RSS grows 12.5 MB between step
  // 500 and step 3,000 with OpenBLAS and 21.9 MB with lstmgen's own kernels (the Moby-Dick stand-in text), at a steady
  // 4-5 KB per step in both up to 6,000 steps: the returned history keeps every step's record, and V8 heap churn.
  // A leak of 12 KB per step would add 30 MB.
  it('3,000 training steps keep resident memory flat (< 30 MB growth from step 500 to 3,000)', {
    timeout: 300_000,
  }, async () => {
    const rss: Record<number, number> = {};
    const { history } = await train({
      ...TINY,
      maxSteps: 3000,
      onStep: (s) => {
        if (s.step === 500 || s.step === 3000) rss[s.step] = process.memoryUsage.rss();
      },
    });
    expect(history.steps).toHaveLength(3000);
    const growth = (rss[3000] - rss[500]) / MB;
    console.log(
      `RSS at step 500: ${(rss[500] / MB).toFixed(1)} MB, at step 3000: ${(rss[3000] / MB).toFixed(1)} MB, ` +
        `growth ${growth.toFixed(1)} MB`,
    );
    expect(growth).toBeLessThan(30);
  });

  it('many models live in one process, each keeping its own weights', async () => {
    const runs = await Promise.all(Array.from({ length: 12 }, (_, i) => train({ ...TINY, seed: i, maxSteps: 3 })));
    const samples = await Promise.all(runs.map((r) => r.model.generate({ prompt: 'ROMEO:', maxTokens: 20, seed: 1 })));
    // the same model trained alone gives the same text: models do not share state
    const alone = await train({ ...TINY, seed: 5, maxSteps: 3 });
    expect(samples[5]).toEqual(await alone.model.generate({ prompt: 'ROMEO:', maxTokens: 20, seed: 1 }));
    expect(new Set(samples.map((s) => s[0])).size).toBeGreaterThan(6);
  });

  it('generate() on one model while another trains: both finish with the results they have alone', async () => {
    const { model } = await train({ ...TINY, maxSteps: 20 });
    const opts = { prompt: 'KING', maxTokens: 40, seed: 3, numSamples: 2 };
    const expected = await model.generate(opts);
    const trained = train({ ...TINY, seed: 99, maxSteps: 40 });
    const during: string[][] = [];
    let settled = false;
    void trained.finally(() => (settled = true));
    while (!settled) during.push(await model.generate(opts));
    const { history } = await trained;
    const aloneRun = await train({ ...TINY, seed: 99, maxSteps: 40 });
    expect(during.length).toBeGreaterThan(1);
    for (const d of during) expect(d).toEqual(expected);
    expect(history.steps.map((s) => s.loss)).toEqual(aloneRun.history.steps.map((s) => s.loss));
  });

  it('a Rust panic surfaces as a NativeError and the process lives on', async () => {
    // debugPanic is a test hook of the addon, outside the typed API: load the addon's loader directly.
    const { debugPanic } = require(path.resolve(__dirname, '..', 'index.js')) as { debugPanic(): void };
    let caught: unknown;
    try {
      debugPanic();
    } catch (err) {
      caught = wrapNative(err);
    }
    expect(caught).toBeInstanceOf(NativeError);
    expect((caught as Error).message).toMatch(/^panic in the native engine: lstmgen debug panic/);
    const { history } = await train({ ...TINY, maxSteps: 3 });
    expect(history.steps).toHaveLength(3);
  });
});

// Needs the native addon (npm run build:native). bf16 mixed precision: bf16 inputs to the matrix products,
// f32 accumulation and everything else in f32; AMX tiles where the CPU has them, emulated elsewhere.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../ts/errors';
import { loadModel } from '../ts/model';
import { engineInfo } from '../ts/native/loader';
import { train } from '../ts/train/loop';
import { last, shakespeare, TINY, tmpDir } from './helpers';

describe('precision: bf16', () => {
  it('engineInfo() says how bf16 products run here', () => {
    expect(engineInfo().cpuGemm).toMatch(/; bf16: (AMX|emulated \(no AMX\))$/);
  });

  it('trains as well as f32 on the same data and seed, and the saved model loads in either precision', {
    timeout: 300_000,
  }, async () => {
    const cfg = {
      corpus: { text: shakespeare(120_000) },
      embeddingDim: 32,
      hiddenSize: 128,
      batchSize: 32,
      seqLen: 64,
      lr: 1e-2,
      maxSteps: 120,
      seed: 3,
      device: 'cpu' as const,
    };
    const f32 = await train({ ...cfg, precision: 'f32' });
    const bf16 = await train({ ...cfg, precision: 'bf16' });
    expect(f32.model.precision).toBe('f32');
    expect(bf16.model.precision).toBe('bf16');
    const [a, b] = [f32.history.steps, bf16.history.steps];
    // Identical start (same weights and batch; bf16 rounding moves the first loss only slightly) ...
    expect(Math.abs(a[0].loss - b[0].loss)).toBeLessThan(0.01);
    expect(a[0].loss).not.toBe(b[0].loss); // ... but bf16 really changed the products
    // ... and the same learning: both end well below ln(V), within 0.1 nats of each other.
    const [va, vb] = [last(f32.history.epochs).valLoss, last(bf16.history.epochs).valLoss];
    expect(vb).toBeLessThan(Math.log(bf16.model.tokenizer.vocabSize) - 1);
    expect(Math.abs(va - vb)).toBeLessThan(0.1);

    const file = path.join(tmpDir(), 'bf16.lstm');
    await bf16.model.save(file);
    const asF32 = await loadModel(file, { device: 'cpu' });
    const asBf16 = await loadModel(file, { device: 'cpu', precision: 'bf16' });
    expect(asF32.precision).toBe('f32');
    expect(asBf16.precision).toBe('bf16');
    const text = { text: shakespeare(130_000).slice(120_000) };
    const [e32, e16] = [await asF32.evaluate(text), await asBf16.evaluate(text)];
    expect(Math.abs(e32.loss - e16.loss)).toBeLessThan(0.02);
    const [s] = await asBf16.generate({ prompt: 'ROMEO:', maxTokens: 40, seed: 1 });
    expect(s.length).toBeGreaterThan(0);
  });

  it('rejects an unknown precision with a ConfigError naming the field', async () => {
    await expect(train({ ...TINY, precision: 'fp8' as never })).rejects.toThrow(ConfigError);
    await expect(train({ ...TINY, precision: 'fp8' as never })).rejects.toThrow(/precision/);
  });

  it('setPrecision() and loadModel() reject an unknown value with a ConfigError naming precision', async () => {
    const { model } = await train({ ...TINY, maxSteps: 1 });
    expect(() => model.setPrecision('f16' as never)).toThrow(ConfigError);
    expect(model.precision).toBe('f32');
    const file = path.join(tmpDir(), 'm.lstm');
    await model.save(file);
    await expect(loadModel(file, { precision: 'fp8' as never })).rejects.toThrow(/^precision: must be "f32" or "bf16"/);
  });
});

// Needs the native addon (npm run build:native).
import { describe, expect, it, vi } from 'vitest';
import { MIN_TEMPERATURE } from '../ts/config';
import { ConfigError, DataError } from '../ts/errors';
import { type ImportTorchOptions, importTorch } from '../ts/interop/torch';
import { loadModel } from '../ts/model';
import { train } from '../ts/train/loop';
import { last, shakespeare, TINY } from './helpers';

describe('learning', () => {
  it('a char model on tinyshakespeare goes from ~ln(V) to validation loss < 2.5', { timeout: 600_000 }, async () => {
    const { model, history } = await train({
      corpus: { text: shakespeare(300_000) },
      embeddingDim: 32,
      hiddenSize: 128,
      batchSize: 32,
      seqLen: 64,
      lr: 1e-2,
      maxSteps: 300,
      seed: 1,
      device: 'cpu',
    });
    const V = model.tokenizer.vocabSize;
    expect(V).toBeGreaterThan(50);
    expect(Math.abs(history.steps[0].loss - Math.log(V))).toBeLessThan(0.25); // untrained: near uniform
    expect(history.steps).toHaveLength(300);
    const final = last(history.epochs);
    expect(final.valLoss).toBeLessThan(2.5);
    expect(final.valPerplexity).toBeCloseTo(Math.exp(final.valLoss), 6);
    expect(final.valAccuracy).toBeGreaterThan(0.25);
    const ev = await model.evaluate({ text: shakespeare(330_000).slice(300_000) });
    expect(ev.loss).toBeLessThan(2.5);
    expect(ev.bitsPerChar).toBeCloseTo(ev.loss / Math.LN2, 10);
  });
});

describe('train()', () => {
  it('reports steps and epochs through callbacks and history', async () => {
    const steps: number[] = [];
    const epochs: number[] = [];
    let total = 0;
    const { history } = await train({
      ...TINY,
      onStart: (s) => (total = s.totalSteps),
      onStep: (s) => {
        expect(Number.isFinite(s.loss) && s.loss > 0).toBe(true);
        expect(s.tokensPerSec).toBeGreaterThan(0);
        expect(s.gradNorm).toBeGreaterThan(0);
        steps.push(s.step);
      },
      onEpoch: (e) => epochs.push(e.epoch),
    });
    expect(total).toBe(12);
    expect(steps).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(history.steps.map((s) => s.step)).toEqual(steps);
    // 18 000 training chars / (8 * 16) = 140 steps per epoch: maxSteps ends epoch 1 early, still validated
    expect(epochs).toEqual([1]);
    expect(history.epochs[0].valLoss).toBeGreaterThan(0);
    expect(history.tokensPerSec).toBeGreaterThan(0);
    expect(history.aborted).toBe(false);
  });

  it('is deterministic for a seed (dropout included) and differs across seeds', async () => {
    const cfg = { ...TINY, numLayers: 2, dropout: 0.3 };
    const a = await train(cfg);
    const b = await train(cfg);
    const c = await train({ ...cfg, seed: 8 });
    const losses = (r: typeof a) => r.history.steps.map((s) => s.loss);
    expect(losses(a)).toEqual(losses(b));
    expect(a.history.epochs[0].valLoss).toBe(b.history.epochs[0].valLoss);
    expect(losses(c)).not.toEqual(losses(a));
  });

  it('keeps the event loop responsive while training', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      await train({ ...TINY, hiddenSize: 64, maxSteps: 20 });
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThanOrEqual(5);
  });

  it('stops cleanly at a step boundary on abort and returns a usable model', async () => {
    const controller = new AbortController();
    const { model, history } = await train({
      ...TINY,
      maxSteps: 50,
      signal: controller.signal,
      onStep: (s) => s.step === 3 && controller.abort(),
    });
    expect(history.aborted).toBe(true);
    expect(history.steps).toHaveLength(3);
    expect(model.steps).toBe(3);
    const [text] = await model.generate({ prompt: 'ROMEO:', maxTokens: 10, seed: 1 });
    expect([...text].length).toBeLessThanOrEqual(10);
  });

  it('awaits async callbacks, and a callback that rejects rejects train() with its error', async () => {
    const seen: number[] = [];
    await train({
      ...TINY,
      maxSteps: 4,
      onStep: async (s) => {
        await new Promise((r) => setTimeout(r, s.step === 4 ? 300 : 5));
        seen.push(s.step); // the last one long after its step: train() must still wait for it
      },
    });
    expect(seen).toEqual([1, 2, 3, 4]);
    for (const hook of ['onStep', 'onEpoch'] as const) {
      const fail = async () => {
        throw new Error(`${hook} failed`);
      };
      await expect(train({ ...TINY, maxSteps: 3, [hook]: fail })).rejects.toThrow(`${hook} failed`);
    }
  });

  it('public functions reject missing or mistyped arguments with a ConfigError naming them', async () => {
    const { model } = await train({ ...TINY, maxSteps: 1 });
    const field = (p: Promise<unknown>) =>
      p.then(
        () => 'resolved',
        (e: unknown) => (e instanceof ConfigError ? e.field : String(e)),
      );
    expect(await field(loadModel(undefined as unknown as string))).toBe('file');
    expect(await field(importTorch('x.st', undefined as unknown as ImportTorchOptions))).toBe('tokenizer');
    expect(await field(model.evaluate(5 as unknown as string))).toBe('corpus');
    expect(await field(train({ ...TINY, lr: 0.01, lrSchedule: { type: 'cosine', minLr: 1 } }))).toBe(
      'lrSchedule.minLr',
    );
  });

  it('runs several epochs when maxSteps needs them and validates after each', async () => {
    const { history } = await train({ ...TINY, corpus: { text: shakespeare(3_000) }, maxSteps: undefined, epochs: 3 });
    expect(history.epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
    const perEpoch = history.steps.length / 3;
    expect(Number.isInteger(perEpoch)).toBe(true);
    expect(history.steps[perEpoch].epoch).toBe(2);
  });

  it('trains a word model; evaluate gives bits per character of the decoded words', async () => {
    const { model } = await train({
      ...TINY,
      corpus: { text: shakespeare(60_000) },
      tokenizer: 'word',
      vocabSize: 500,
    });
    expect(model.tokenizer.kind).toBe('word');
    expect(model.tokenizer.vocabSize).toBe(500);
    const r = await model.evaluate({ text: shakespeare(70_000).slice(60_000) }, { onWarning: () => {} });
    expect(r.chars).toBeGreaterThan(3 * r.tokens);
    expect(r.bitsPerChar).toBeCloseTo((r.loss * r.tokens) / r.chars / Math.LN2, 10);
    expect(r.perplexity).toBeCloseTo(Math.exp(r.loss), 8);
    expect(r.accuracy).toBeGreaterThanOrEqual(0);
    expect(r.accuracy).toBeLessThanOrEqual(1);
  });

  it('gives typed errors for bad input and the process lives on', async () => {
    await expect(train({ ...TINY, hiddenSize: 0 })).rejects.toThrow(ConfigError);
    await expect(train({ ...TINY, hiddenSize: 1e8 })).rejects.toMatchObject({
      name: 'ConfigError',
      field: 'hiddenSize',
    }); // not the engine's DataError
    await expect(train({ ...TINY, lr: NaN })).rejects.toThrow(/lr: must be a finite number > 0, got NaN/);
    await expect(train({ ...TINY, corpus: { text: '' } })).rejects.toThrow(DataError);
    await expect(train({ ...TINY, corpus: '/no/such/file.txt' })).rejects.toThrow(/no such file/);
    await expect(train({ ...TINY, corpus: { text: 'short text' } })).rejects.toThrow(/seqLen \+ 1/);
    await expect(train({ ...TINY, corpus: { text: shakespeare(100) } })).rejects.toThrow(DataError);
    const { history } = await train({ ...TINY, maxSteps: 2 });
    expect(history.steps).toHaveLength(2);
  });

  it('evaluate(): a bad batchSize/seqLen is a ConfigError naming it, a too-short text a DataError', async () => {
    const { model } = await train({ ...TINY, maxSteps: 2 });
    const text = { text: shakespeare(3000) };
    for (const [field, value] of [
      ['seqLen', -4],
      ['seqLen', 0],
      ['batchSize', -1],
      ['batchSize', 0],
      ['batchSize', 1.5],
    ] as const) {
      await expect(model.evaluate(text, { [field]: value })).rejects.toMatchObject({ name: 'ConfigError', field });
    }
    await expect(model.evaluate({ text: 'ab' })).rejects.toThrow(DataError);
    await expect(model.evaluate(new Uint32Array(0))).rejects.toThrow(DataError);
    await expect(model.evaluate({ text: shakespeare(17) }, { seqLen: 16 })).resolves.toMatchObject({ tokens: 16 });
  });

  it('warns (LSTMGEN_DIVERGED, run still resolves) when the final validation loss exceeds ln(vocabSize)', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const diverged = () =>
      warn.mock.calls.filter((c) => (c[1] as { code?: string } | undefined)?.code === 'LSTMGEN_DIVERGED');
    try {
      const { model, history } = await train({ ...TINY, lr: 1e6 });
      expect(last(history.epochs).valLoss).toBeGreaterThan(Math.log(model.tokenizer.vocabSize));
      expect(diverged()).toHaveLength(1);
      expect(String(diverged()[0][0])).toMatch(/training diverged.*ln\(vocabSize\).*lower lr/);
      warn.mockClear();
      await train({ ...TINY });
      expect(diverged()).toHaveLength(0);
    } finally {
      warn.mockRestore();
    }
  });
});

describe('generate()', () => {
  it('samples reproducibly, greedily at temperature 0, and honours stop, topK, topP', async () => {
    const { model } = await train({ ...TINY, maxSteps: 30 });
    const opts = { prompt: 'First Citizen:', maxTokens: 40, temperature: 0.9, seed: 3, numSamples: 3 };
    const a = await model.generate(opts);
    expect(a).toHaveLength(3);
    expect(await model.generate(opts)).toEqual(a);
    for (const s of a) expect([...s].length).toBeLessThanOrEqual(40);

    const g1 = await model.generate({ prompt: 'the', maxTokens: 20, temperature: 0, seed: 1 });
    const g2 = await model.generate({ prompt: 'the', maxTokens: 20, temperature: 0, seed: 2 });
    expect(g1).toEqual(g2);

    const stopped = await model.generate({
      prompt: 'the',
      maxTokens: 200,
      temperature: 1,
      seed: 5,
      numSamples: 4,
      stop: ['e'],
    });
    for (const s of stopped) expect(s).not.toContain('e');

    const k1 = await model.generate({ prompt: 'the', maxTokens: 20, temperature: 1, topK: 1, seed: 9 });
    expect(k1).toEqual(g1); // top-1 sampling is greedy
    const p = await model.generate({ prompt: 'the', maxTokens: 20, temperature: 1, topP: 1e-6, seed: 9 });
    expect(p).toEqual(g1); // a tiny nucleus keeps only the most likely token
    // the smallest temperature taken samples (the limit of small temperatures is greedy decoding)
    const cold = await model.generate({ prompt: 'the', maxTokens: 20, temperature: MIN_TEMPERATURE, seed: 9 });
    expect(cold).toEqual(g1);

    // a positive temperature below it (f32 overflows from ~1.2e-38) is the option's error, not the model's
    // NumericError, in generate(), stream() and sessions alike
    const refused = { name: 'ConfigError', field: 'temperature', message: expect.stringMatching(/0 \(greedy\)/) };
    await expect(model.generate({ prompt: 'the', temperature: 1e-40 })).rejects.toMatchObject(refused);
    let streamError: unknown;
    try {
      model.stream({ prompt: 'the', temperature: 1e-40 });
    } catch (err) {
      streamError = err;
    }
    expect(streamError).toMatchObject(refused);
    const session = model.session({ seed: 1 });
    await session.feed('the');
    await expect(session.sample({ maxTokens: 5, temperature: 1e-40 })).rejects.toMatchObject(refused);
    session.dispose();
  });

  it('maps unknown prompt symbols to <unk> with a warning, or throws with strict; empty prompt works', async () => {
    const { model } = await train(TINY);
    const spy = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const [s] = await model.generate({ prompt: 'the 🐳 whale', maxTokens: 5, seed: 1 });
      expect(typeof s).toBe('string');
      expect(spy).toHaveBeenCalledTimes(1);
      expect(String(spy.mock.calls[0][0])).toContain('🐳');
    } finally {
      spy.mockRestore();
    }
    await expect(model.generate({ prompt: 'the 🐳', strict: true })).rejects.toThrow(DataError);
    const [empty] = await model.generate({ prompt: '', maxTokens: 8, seed: 1 });
    expect([...empty].length).toBeLessThanOrEqual(8);
    await expect(model.generate({ temperature: -1 })).rejects.toThrow(/temperature/);
    await expect(model.generate({ topP: 0 })).rejects.toThrow(/topP/);
    await expect(model.generate({ topK: 0 })).rejects.toThrow(/topK/);
  });
});

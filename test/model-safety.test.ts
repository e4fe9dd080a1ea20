// Needs the native addon (npm run build:native). One model used by several callers at once (streams among
// evaluations, generations and saves), a disposed model, and the model summary against the tensors it writes.
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseGenerateOptions } from '../ts/config';
import { ConfigError, type LstmModel, loadModel, train } from '../ts/index';
import { planSampling } from '../ts/sampling/plan';
import { shakespeare, TINY, tmpDir } from './helpers';

let model: LstmModel;
const text = { text: shakespeare(6_000) };
const streamOpts = { prompt: 'ROMEO:', maxTokens: 120, temperature: 1, seed: 3, chunkTokens: 4 };

beforeAll(async () => {
  ({ model } = await train({ ...TINY, maxSteps: 5 }));
}, 120_000);

/** The pieces of a stream joined. */
async function collect(pieces: AsyncIterable<string>): Promise<string> {
  let out = '';
  for await (const p of pieces) out += p;
  return out;
}

describe('streams among other calls on one model', () => {
  it('a stream interleaved with evaluations, generations, a save and another stream gives its text alone', async () => {
    const alone = await collect(model.stream(streamOpts));
    const other = { ...streamOpts, prompt: 'JULIET:', seed: 4, chunkTokens: 1 };
    const otherAlone = await collect(model.stream(other));
    const evalAlone = await model.evaluate(text);
    const gen = { prompt: 'KING', maxTokens: 50, seed: 9 };
    const [genAlone] = await model.generate(gen);
    const file = path.join(tmpDir(), 'during-stream.lstm');
    const [s, e1, t, g, , e2] = await Promise.all([
      collect(model.stream(streamOpts)),
      model.evaluate(text),
      collect(model.stream(other)),
      model.generate(gen),
      model.save(file),
      model.evaluate(text),
    ]);
    expect(s).toBe(alone);
    expect(t).toBe(otherAlone);
    expect(g).toEqual([genAlone]);
    expect(e1.loss).toBe(evalAlone.loss);
    expect(e2.loss).toBe(evalAlone.loss);
    expect((await (await loadModel(file)).evaluate(text)).loss).toBeCloseTo(evalAlone.loss, 10);
  });

  it('a long stream takes one turn per chunk: an evaluation started mid-stream ends before the stream', async () => {
    const events: string[] = [];
    const consume = (async () => {
      let pieces = 0;
      for await (const _ of model.stream({ ...streamOpts, maxTokens: 400, chunkTokens: 1 })) {
        pieces++;
        if (pieces === 2) {
          void model.evaluate(text).then(() => events.push(`evaluated after ${pieces} pieces`));
        }
      }
      events.push(`stream ended after ${pieces} pieces`);
    })();
    await consume;
    expect(events).toHaveLength(2);
    expect(events[0]).toMatch(/^evaluated/);
  });

  it('evaluations interleaved with a running stream do not change each other', async () => {
    const alone = await model.evaluate(text, { batchSize: 2, seqLen: 8 });
    const pieces = model.stream({ ...streamOpts, chunkTokens: 1 });
    const results = [];
    for await (const _ of pieces) {
      if (results.length < 3) results.push(model.evaluate(text, { batchSize: 2, seqLen: 8 }));
    }
    for (const r of await Promise.all(results)) expect(r.loss).toBe(alone.loss);
  });
});

describe('dispose()', () => {
  it('makes every later call throw a ConfigError, and rejects calls that had not started', async () => {
    const { model: m } = await train({ ...TINY, maxSteps: 2 });
    const pieces = m.stream({ prompt: 'a', maxTokens: 50, chunkTokens: 1, seed: 1 });
    expect((await pieces.next()).done).toBe(false);
    const queued = m.evaluate(text);
    m.dispose();
    await expect(queued).rejects.toBeInstanceOf(ConfigError);
    await expect(pieces.next()).rejects.toThrow(/disposed/);
    await expect(m.generate({ maxTokens: 5 })).rejects.toBeInstanceOf(ConfigError);
    await expect(m.evaluate(text)).rejects.toThrow(/model was disposed/);
    await expect(m.save(path.join(tmpDir(), 'x.lstm'))).rejects.toBeInstanceOf(ConfigError);
    await expect(m.logits(Uint32Array.of(1), 1, 1)).rejects.toBeInstanceOf(ConfigError);
    expect(() => m.stream()).toThrow(ConfigError);
    expect(() => m.summary()).toThrow(ConfigError);
    expect(() => m.steps).toThrow(ConfigError);
    expect(() => m.toBytes()).toThrow(ConfigError);
    m.dispose(); // a second call does nothing
  });
});

describe('summary()', () => {
  it('counts the parameters of every tensor the model file holds, and the config shape', async () => {
    const { model: m } = await train({ ...TINY, numLayers: 2, embeddingDim: 12, hiddenSize: 20, maxSteps: 1 });
    const s = m.summary();
    const V = m.tokenizer.vocabSize;
    const [E, H] = [12, 20];
    expect(s).toMatchObject({
      tokenizer: 'char',
      vocabSize: V,
      embeddingDim: E,
      hiddenSize: H,
      numLayers: 2,
      dropout: 0,
      device: 'cpu',
      precision: 'f32',
      steps: 1,
    });
    expect(s.parameters).toBe(V * E + (4 * H * (E + H) + 8 * H) + (4 * H * (H + H) + 8 * H) + V * H + V);
    expect(s.bytes).toBe(4 * s.parameters);
    // the same tensors, names and shapes as the engine writes to the model file
    const bytes = m.toBytes();
    const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8'));
    const written = Object.entries(header as Record<string, { shape: number[] }>)
      .filter(([name]) => name !== '__metadata__' && !name.startsWith('lstmgen.'))
      .map(([name, t]) => [name, t.shape]);
    expect(Object.fromEntries(s.tensors.map((t) => [t.name, t.shape]))).toEqual(Object.fromEntries(written));
    expect(s.tensors.reduce((n, t) => n + t.parameters, 0)).toBe(s.parameters);
  });
});

describe('<unk> in sampling', () => {
  it('is banned from the native sampler unless allowUnk is set', () => {
    const tok = model.tokenizer;
    expect(planSampling(tok, parseGenerateOptions({ prompt: 'a' })).native.bannedIds).toEqual([tok.unkId]);
    expect(planSampling(tok, parseGenerateOptions({ prompt: 'a', allowUnk: true })).native.bannedIds).toEqual([]);
  });

  it('allowUnk: true lets the model sample it', async () => {
    const [s] = await model.generate({ maxTokens: 4_000, temperature: 1.5, seed: 5, allowUnk: true });
    expect(s).toContain('\uFFFD');
  });
});

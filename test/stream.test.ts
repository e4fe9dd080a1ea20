// Needs the native addon. Streaming generation: model.stream() pieces, their agreement with generate(), stops.
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../ts/errors';
import type { LstmModel } from '../ts/model';
import { SamplerHandle } from '../ts/native/handle';
import { train } from '../ts/train/loop';
import { shakespeare, TINY } from './helpers';

/** All pieces of a stream. */
async function collect(stream: AsyncIterable<string>): Promise<string[]> {
  const pieces: string[] = [];
  for await (const p of stream) pieces.push(p);
  return pieces;
}

describe('model.stream()', () => {
  let char: LstmModel;
  let word: LstmModel;

  beforeAll(async () => {
    ({ model: char } = await train({ ...TINY, maxSteps: 40 }));
    ({ model: word } = await train({
      ...TINY,
      corpus: { text: shakespeare(60_000) },
      tokenizer: 'word',
      vocabSize: 300,
      maxSteps: 20,
    }));
  }, 120_000);

  it('streamed pieces joined equal generate() for the same seed (char and word models, any chunk size)', async () => {
    const cases = [
      { prompt: 'ROMEO:', maxTokens: 80, temperature: 0.8, seed: 1 },
      { prompt: '', maxTokens: 50, temperature: 1, seed: 2, topK: 5 },
      { prompt: 'the', maxTokens: 60, temperature: 0, seed: 3 },
      { prompt: 'First', maxTokens: 120, temperature: 1, topP: 0.9, seed: 4, stop: ['\n\n', 'e t'] },
      { prompt: 'What', maxTokens: 200, temperature: 1.2, seed: 5, stop: ['.'] },
    ];
    for (const model of [char, word]) {
      for (const c of cases) {
        const [expected] = await model.generate(c);
        for (const chunkTokens of [1, 7]) {
          const pieces = await collect(model.stream({ ...c, chunkTokens }));
          expect(pieces.join(''), `${model.tokenizer.kind} ${JSON.stringify(c)} chunk ${chunkTokens}`).toBe(expected);
          expect(pieces.every((p) => p.length > 0)).toBe(true);
        }
      }
    }
    // per token: without stop strings, a char model yields one character per piece
    const pieces = await collect(char.stream({ prompt: 'KING', maxTokens: 30, seed: 9 }));
    expect(pieces).toHaveLength(30);
    expect(pieces.every((p) => [...p].length === 1)).toBe(true);
  });

  it('stops sampling when the consumer breaks', async () => {
    const next = vi.spyOn(SamplerHandle.prototype, 'next');
    try {
      let got = '';
      for await (const piece of char.stream({ prompt: 'ROMEO:', maxTokens: 10_000, seed: 1 })) {
        got += piece;
        if (got.length >= 5) break;
      }
      expect(got).toHaveLength(5);
      expect(next).toHaveBeenCalledTimes(5);
    } finally {
      next.mockRestore();
    }
  });

  it('rejects bad options as ConfigErrors (numSamples belongs to generate)', () => {
    expect(() => char.stream({ chunkTokens: 0 })).toThrow(/chunkTokens: must be a positive integer/);
    expect(() => char.stream({ numSamples: 2 } as never)).toThrow(ConfigError);
  });

  it('priming piece by piece gives the same state as priming at once', async () => {
    const prompt = char.tokenizer.encode('First Citizen:\nBefore we proceed any further, hear me speak.');
    const opts = { numSamples: 3, maxTokens: 60, temperature: 0.9, topK: 0, topP: 1, seed: 11, stopSequences: [] };
    const once = await char.native.startSampling(prompt, opts).next(new Uint32Array(0), 60);
    const pieces = char.native.startSampling(prompt.subarray(0, 1), opts);
    for (let at = 1; at < prompt.length; at += 7) {
      const r = await pieces.next(prompt.subarray(at, Math.min(prompt.length, at + 7)), 0);
      expect(r.tokens.every((t) => t.length === 0)).toBe(true);
    }
    const piecewise = await pieces.next(new Uint32Array(0), 60);
    expect(piecewise.tokens).toEqual(once.tokens);
    expect(once.tokens).toEqual(await char.native.generate(prompt, opts));
  });
});

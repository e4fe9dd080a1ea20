// Needs the native addon. Sessions (model.session()) and the generation controls through the public API.
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../ts/errors';
import type { LstmModel } from '../ts/model';
import { train } from '../ts/train/loop';
import { shakespeare, TINY } from './helpers';

describe('model.session()', () => {
  let char: LstmModel;
  let word: LstmModel;

  beforeAll(async () => {
    ({ model: char } = await train({ ...TINY, maxSteps: 30 }));
    ({ model: word } = await train({
      ...TINY,
      corpus: { text: shakespeare(60_000) },
      tokenizer: 'word',
      vocabSize: 300,
      maxSteps: 10,
    }));
  }, 120_000);

  it('next() gives the full softmax: all vocabSize probabilities sum to 1, sorted, top-N is its head', async () => {
    for (const model of [char, word]) {
      const s = model.session({ seed: 1 });
      await s.feed('ROMEO: the');
      const all = await s.next({ topN: model.tokenizer.vocabSize });
      expect(all).toHaveLength(model.tokenizer.vocabSize);
      const sum = all.reduce((a, t) => a + t.probability, 0);
      expect(Math.abs(sum - 1)).toBeLessThan(1e-9);
      for (let i = 1; i < all.length; i++) expect(all[i - 1].probability).toBeGreaterThanOrEqual(all[i].probability);
      const top = await s.next({ topN: 5 });
      expect(top.map((t) => t.id)).toEqual(all.slice(0, 5).map((t) => t.id));
      expect(new Set(all.map((t) => t.id)).size).toBe(all.length);
      s.dispose();
    }
  });

  it('feeding in pieces equals feeding at once', async () => {
    const text = shakespeare(3000).slice(1000, 1600);
    const once = char.session({ seed: 2 });
    await once.feed(text);
    const pieces = char.session({ seed: 2 });
    for (let i = 0; i < text.length; i += 37) await pieces.feed(text.slice(i, i + 37));
    const [a, b] = [await once.next({ topN: 20 }), await pieces.next({ topN: 20 })];
    expect(b.map((t) => t.id)).toEqual(a.map((t) => t.id));
    for (const [i, t] of a.entries()) expect(Math.abs(t.probability - b[i].probability)).toBeLessThan(1e-6);
    // and the samples that follow are the same
    expect(await pieces.sample({ maxTokens: 40, temperature: 0.9 })).toBe(
      await once.sample({ maxTokens: 40, temperature: 0.9 }),
    );
  });

  it("a session's first sample after feed(p) is generate({ prompt: p }) for its seed, controls included", async () => {
    const cases = [
      { maxTokens: 60, temperature: 0.8 },
      { maxTokens: 60, temperature: 1, topK: 8, stop: ['\n'] },
      { maxTokens: 60, temperature: 1, repetitionPenalty: 1.3, frequencyPenalty: 0.2, noRepeatNgram: 3 },
      { maxTokens: 30, temperature: 1, bannedTokens: ['e', 't'], minTokens: 10 },
    ];
    for (const c of cases) {
      const s = char.session({ seed: 5 });
      await s.feed('JULIET:');
      const [want] = await char.generate({ ...c, prompt: 'JULIET:', seed: 5 });
      expect(await s.sample(c)).toBe(want);
      s.dispose();
    }
  });

  it('sample() continues the state; fork() copies it; reset() starts over', async () => {
    const s = char.session({ seed: 9 });
    await s.feed('KING:');
    const first = await s.sample({ maxTokens: 20 });
    const fork = s.fork();
    const a = await s.sample({ maxTokens: 30 });
    const b = await fork.sample({ maxTokens: 30 });
    expect(b).toBe(a);
    await s.reset();
    await s.feed('KING:');
    expect(await s.sample({ maxTokens: 20 })).toBe(first);
    s.dispose();
    await expect(s.feed('x')).rejects.toThrow(ConfigError);
    await expect(fork.next({ topN: 0 })).rejects.toThrow(/topN/);
    await expect(fork.sample({ temperature: -1 })).rejects.toThrow(/temperature/);
    fork.dispose();
  });

  it('bannedTokens are never sampled; a string that is not one token is a ConfigError naming it', async () => {
    const texts = await char.generate({ prompt: 'the', maxTokens: 300, bannedTokens: ['e', ' '], seed: 3 });
    expect(texts[0]).toHaveLength(300);
    expect(texts[0]).not.toMatch(/[e ]/);
    await expect(char.generate({ bannedTokens: ['ee'] })).rejects.toThrow(/bannedTokens\.0/);
    await expect(char.generate({ repetitionPenalty: 0 })).rejects.toThrow(/repetitionPenalty/);
    await expect(char.generate({ penaltyWindow: 0 })).rejects.toThrow(/penaltyWindow/);
  });

  it('noRepeatNgram 4 leaves no repeated 4-gram inside the window; minTokens delays a one-token stop', async () => {
    const [t] = await char.generate({
      prompt: 'a',
      maxTokens: 200,
      temperature: 0,
      noRepeatNgram: 4,
      penaltyWindow: 1000,
    });
    const seen = new Set<string>();
    const full = `a${t}`;
    for (let i = 0; i + 4 <= full.length; i++) {
      const g = full.slice(i, i + 4);
      expect(seen.has(g), `4-gram ${JSON.stringify(g)} repeated`).toBe(false);
      seen.add(g);
    }
    for (let seed = 0; seed < 5; seed++) {
      const [text] = await char.generate({ prompt: 'a', maxTokens: 80, stop: ['\n'], minTokens: 25, seed });
      // the stop token is banned for 25 tokens, so at least 25 characters come before it
      expect(text.length).toBeGreaterThanOrEqual(25);
    }
  });
});

// Needs the native addon. The train/validation cut of a text, and training without validation.
import { describe, expect, it } from 'vitest';
import { ConfigError, DataError } from '../ts/errors';
import type { StartInfo } from '../ts/events';
import { train } from '../ts/train/loop';
import { defined, TINY } from './helpers';

/** The token counts train() reports for `corpus` with `valFraction`. */
async function sizes(corpus: string, extra: Record<string, unknown> = {}): Promise<StartInfo> {
  let start: StartInfo | undefined;
  await train({
    ...TINY,
    corpus: { text: corpus },
    maxSteps: 1,
    onStart: (s) => {
      start = s;
    },
    ...extra,
  });
  return defined(start);
}

describe('train/validation cut', () => {
  it('cuts CJK text without whitespace at a code point: both parts have the right sizes', async () => {
    const text = `${'白鯨は海を泳ぐ船を追う。'.repeat(300)}\n`; // 3,601 code points, whitespace only at the end
    const s = await sizes(text, { valFraction: 0.1 });
    expect(s.valTokens).toBe(361);
    expect(s.trainTokens).toBe(3240);
  });

  it('cuts a one-line corpus anywhere, not at the next whitespace', async () => {
    const text = `${'x'.repeat(3000)} ${'y'.repeat(999)}`; // the only space is far after the 90% point
    const s = await sizes(text, { valFraction: 0.1 });
    expect(s.valTokens).toBe(400);
    expect(s.trainTokens).toBe(3600);
  });

  it('cuts a word corpus between two words: the parts hold the right numbers of tokens', async () => {
    const text = Array.from({ length: 2000 }, (_, i) => `w${i % 50}`).join(' ');
    const s = await sizes(text, { valFraction: 0.25, tokenizer: 'word', vocabSize: 60 });
    expect(s.valTokens).toBe(500);
    expect(s.trainTokens).toBe(1500);
  });

  it('says which part is too short and how it was taken', async () => {
    const text = 'abcdefghij'.repeat(20); // 200 characters: 20 held out, fewer than seqLen + 1
    const err = await train({ ...TINY, corpus: { text }, seqLen: 32, batchSize: 2 }).catch((e) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err.message).toMatch(/^the validation part \(the last valFraction = 0\.1 held out .*\) has 20 tokens/);
    expect(err.message).toMatch(/a larger valFraction .* valFraction: 0 for no validation/);
    const short = await train({ ...TINY, corpus: { text }, seqLen: 16, batchSize: 16 }).catch((e) => e);
    expect(short.message).toMatch(/^the training part \(the corpus minus the last valFraction = 0\.1 held out/);
  });
});

describe('valFraction 0', () => {
  it('trains without validation: no validation metrics, every token trains', async () => {
    const text = TINY.corpus.text;
    let start: StartInfo | undefined;
    const { history } = await train({
      ...TINY,
      valFraction: 0,
      onStart: (s) => {
        start = s;
      },
    });
    expect(start?.valTokens).toBe(0);
    expect(start?.trainTokens).toBe([...text].length);
    expect(history.steps).toHaveLength(TINY.maxSteps);
    expect(history.epochs.at(-1)).toMatchObject({ valLoss: null, valPerplexity: null, valAccuracy: null });
    expect(history.best).toBeNull();
  });

  it('refuses options that need validation with a ConfigError that says so', async () => {
    for (const extra of [
      { earlyStopping: { patience: 2 } },
      { evalEvery: 5 },
      { lrSchedule: { type: 'plateau' as const } },
    ]) {
      const err = await train({ ...TINY, valFraction: 0, ...extra }).catch((e) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.field).toBe(Object.keys(extra)[0]);
      expect(err.message).toMatch(/needs validation, and valFraction 0 turns it off/);
    }
    // with a separate validation corpus they are fine
    await expect(
      train({ ...TINY, valFraction: 0, valCorpus: { text: TINY.corpus.text.slice(0, 2000) }, evalEvery: 6 }),
    ).resolves.toBeDefined();
  });
});

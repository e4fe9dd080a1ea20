// Needs the native addon (npm run build:native) for the train() cases. What the warnings of a run say, where
// they go (onWarning, else process warnings), and that they stay short and true.
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DataError, train, WordTokenizer } from '../ts/index';
import { divergenceWarning } from '../ts/train/loop';
import { ROOT, TINY } from './helpers';

afterEach(() => {
  vi.restoreAllMocks();
});

/** The process warnings with `code` that `spy` (on process.emitWarning) saw. */
const withCode = (spy: { mock: { calls: unknown[][] } }, code: string) =>
  spy.mock.calls.filter((c) => (c[1] as { code?: string } | undefined)?.code === code);

describe('unknown-symbol messages', () => {
  const tok = WordTokenizer.fromText('the whale and the sea', { vocabSize: 100, lowercase: true });
  const huge = 'x'.repeat(90_000);
  const text = ['the', huge, ...Array.from({ length: 29 }, (_, i) => `unknown${i}`), 'unknown0', 'sea'].join(' ');

  it('name at most 20 symbols, each cut to 40 characters, and count the rest', () => {
    const warnings: string[] = [];
    tok.encode(text, { onWarning: (m) => warnings.push(m) });
    expect(warnings).toHaveLength(1);
    const [m] = warnings;
    expect(m.length).toBeLessThan(1_000);
    expect(m).toContain('31 symbols not in the vocabulary (30 distinct: ');
    expect(m).toContain(`"${'x'.repeat(40)}"… (90000 characters)`);
    expect(m).toContain('"unknown18"');
    expect(m).not.toContain('"unknown19"');
    expect(m).toContain('and 10 more) mapped to <unk>');
  });

  it('are as short in the strict error', () => {
    let err: unknown;
    try {
      tok.encode(text, { strict: true });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message.length).toBeLessThan(1_000);
  });

  it('keep a short symbol whole and say nothing more when all are named', () => {
    const warnings: string[] = [];
    tok.encode('the kraken', { onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual(['1 symbol not in the vocabulary ("kraken") mapped to <unk>']);
  });
});

describe('the divergence warning', () => {
  it('says nothing for the loss of a barely trained model, a little above ln(V)', () => {
    const lnV = Math.log(59);
    expect(divergenceWarning(lnV + 0.04, 59, 1e-3)).toBeUndefined();
    expect(divergenceWarning(lnV * 1.2, 59, 1e-3)).toMatch(/training diverged.*ln\(vocabSize\).*lower lr/);
    expect(divergenceWarning(Number.NaN, 59, 1e-3)).toMatch(/training diverged/);
    expect(divergenceWarning(undefined, 59, 1e-3)).toBeUndefined();
  });

  it('is not given after 2 small steps of a tiny model (validation loss just above ln(V))', async () => {
    const spy = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const { model, history } = await train({ ...TINY, maxSteps: 2, lr: 1e-3, seed: 1 });
    const valLoss = history.epochs.at(-1)?.valLoss ?? Number.NaN;
    expect(valLoss).toBeGreaterThan(Math.log(model.tokenizer.vocabSize)); // the case that used to warn
    expect(withCode(spy, 'LSTMGEN_DIVERGED')).toHaveLength(0);
  });
});

describe('train({ onWarning })', () => {
  it('receives the run warnings with their codes instead of process.emitWarning', async () => {
    const spy = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const got: Array<[string, string]> = [];
    await train({
      ...TINY,
      valCorpus: { text: `${TINY.corpus.text.slice(0, 2_000)}🐳` },
      lr: 1e6,
      onWarning: (message, code) => got.push([message, code]),
    });
    expect(got.map(([, code]) => code)).toEqual(['LSTMGEN_UNKNOWN_SYMBOLS', 'LSTMGEN_DIVERGED']);
    expect(got[0][0]).toMatch(/^validation text: 1 symbol not in the vocabulary \("🐳"\)/);
    expect(spy).not.toHaveBeenCalled();
  });

  it('defaults to process warnings', async () => {
    const spy = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    await train({ ...TINY, valCorpus: { text: `${TINY.corpus.text.slice(0, 2_000)}🐳` } });
    expect(withCode(spy, 'LSTMGEN_UNKNOWN_SYMBOLS')).toHaveLength(1);
  });

  it('vocabSize with the char tokenizer is a ConfigError, not an ignored option', async () => {
    await expect(train({ ...TINY, tokenizer: 'char', vocabSize: 50 })).rejects.toMatchObject({
      name: 'ConfigError',
      field: 'vocabSize',
      message: expect.stringMatching(/applies to the word and bpe tokenizers only/),
    });
  });

  it('lowercase and wordSplit with a tokenizer other than word, vocabSize with a tokenizer.json, are ConfigErrors', async () => {
    const file = path.join(ROOT, 'test', 'fixtures', 'hf-wordpiece', 'tokenizer.json');
    for (const [options, field, applies, own] of [
      [{ tokenizer: 'char', lowercase: true }, 'lowercase', 'the word tokenizer', 'the char vocabulary'],
      [{ tokenizer: 'char', lowercase: false }, 'lowercase', 'the word tokenizer', 'the char vocabulary'],
      [{ tokenizer: 'char', wordSplit: 'whitespace' }, 'wordSplit', 'the word tokenizer', 'the char vocabulary'],
      [{ lowercase: false }, 'lowercase', 'the word tokenizer', 'the char vocabulary'], // char is the default
      [{ tokenizer: 'bpe', lowercase: true, vocabSize: 300 }, 'lowercase', 'the word tokenizer', 'the bpe tokenizer'],
      [{ tokenizer: 'bpe', wordSplit: 'punctuation' }, 'wordSplit', 'the word tokenizer', 'the bpe tokenizer'],
      [{ tokenizer: { file }, vocabSize: 300 }, 'vocabSize', 'the word and bpe tokenizers', 'a tokenizer.json file'],
      [{ tokenizer: { file }, lowercase: true }, 'lowercase', 'the word tokenizer', 'a tokenizer.json file'],
    ] as const) {
      const err = await train({ ...TINY, ...options } as never).catch((e: unknown) => e);
      expect(err, JSON.stringify(options)).toMatchObject({ name: 'ConfigError', field });
      expect((err as Error).message).toContain(`${field}: applies to ${applies} only: ${own}`);
    }
    // the word tokenizer takes all three
    const word = await train({
      ...TINY,
      tokenizer: 'word',
      vocabSize: 50,
      lowercase: false,
      wordSplit: 'whitespace',
      maxSteps: 1,
      valFraction: 0,
    });
    expect(word.history.steps).toHaveLength(1);
  });

  it('must be a function', async () => {
    await expect(train({ ...TINY, onWarning: 'log' as never })).rejects.toMatchObject({ field: 'onWarning' });
  });
});

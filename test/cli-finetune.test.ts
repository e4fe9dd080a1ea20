// Needs the native addon; compiles ts/ to dist/ first. The CLI of fine-tuning (--init-from, --extend-vocab) and of
// samples while training (--sample-every ...).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileTs, jsonLines, lstmgen, TINY_FLAGS } from './cli-helpers';
import { shakespeare, tmpDir } from './helpers';

describe('lstmgen train: fine-tuning and samples while training', () => {
  let dir: string;
  let corpus: string;
  beforeAll(() => {
    compileTs();
    dir = tmpDir();
    corpus = path.join(dir, 'corpus.txt');
    fs.writeFileSync(corpus, shakespeare(20_000));
  }, 120_000);

  it('--init-from trains on a new corpus; --extend-vocab adds its symbols; the architecture flags are refused', () => {
    const base = path.join(dir, 'base.lstm');
    const first = lstmgen('train', '--corpus', corpus, ...TINY_FLAGS, '--max-steps', '4', '--out', base, '--json');
    expect(first.code, first.stderr).toBe(0);
    const newCorpus = path.join(dir, 'new.txt');
    fs.writeFileSync(newCorpus, shakespeare(20_000).replaceAll('e', 'Ω'));
    const tuned = path.join(dir, 'tuned.lstm');
    const args = ['train', '--corpus', newCorpus, '--init-from', base, '--max-steps', '3', '--device', 'cpu'];
    const r = lstmgen(...args, '--extend-vocab', '--out', tuned, '--json');
    expect(r.code, r.stderr).toBe(0);
    const start = jsonLines(r.stdout).find((l) => l.type === 'done');
    expect(start).toMatchObject({ step: 3, modelPath: tuned });
    // --strict fails on prompt symbols outside the vocabulary: the base model's, not the grown one's
    const gen = (model: string) =>
      lstmgen('generate', '--model', model, '--prompt', 'Ω', '--max-tokens', '5', '--strict');
    expect(gen(base).code).toBe(1);
    expect(gen(tuned).code, gen(tuned).stderr).toBe(0);

    const shape = lstmgen(...args, '--hidden-size', '64', '--out', path.join(dir, 'x.lstm'));
    expect(shape.code).toBe(2);
    expect(shape.stderr).toContain('--hidden-size: cannot change when fine-tuning');
    expect(shape.stderr).toContain('has 32, got 64');
    const both = lstmgen(...args, '--resume', base, '--out', path.join(dir, 'y.lstm'));
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--init-from: cannot be combined with --resume');
    const over = lstmgen(...args, '--out', base);
    expect(over.code).toBe(2);
    expect(over.stderr).toContain('the model to fine-tune');
    expect(lstmgen('train', '--corpus', corpus, '--extend-vocab').stderr).toContain(
      '--extend-vocab: needs --init-from',
    );
  });

  it("--vocab-size with --init-from a bpe model is refused unless it is the model's", () => {
    const base = path.join(dir, 'bpe.lstm');
    const first = lstmgen(
      'train',
      '--corpus',
      corpus,
      ...TINY_FLAGS,
      '--tokenizer',
      'bpe',
      '--vocab-size',
      '300',
      '--max-steps',
      '2',
      '--out',
      base,
    );
    expect(first.code, first.stderr).toBe(0);
    const args = ['train', '--corpus', corpus, '--init-from', base, '--max-steps', '1', '--device', 'cpu'];
    const other = lstmgen(...args, '--vocab-size', '400', '--out', path.join(dir, 'bpe2.lstm'));
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('--vocab-size: cannot change when fine-tuning');
    expect(other.stderr).toContain('has 300, got 400');
    const same = lstmgen(...args, '--vocab-size', '300', '--out', path.join(dir, 'bpe3.lstm'));
    expect(same.code, same.stderr).toBe(0);
  });

  it('prints sample JSON lines with --json, and the samples on stderr without it', () => {
    const args = ['train', '--corpus', corpus, ...TINY_FLAGS, '--max-steps', '6', '--sample-every', '3'];
    const sampleFlags = ['--sample-prompt', 'The ', '--sample-tokens', '12', '--sample-temperature', '0.5'];
    const json = lstmgen(...args, ...sampleFlags, '--out', path.join(dir, 'a.lstm'), '--json');
    expect(json.code, json.stderr).toBe(0);
    const samples = jsonLines(json.stdout).filter((l) => l.type === 'sample');
    expect(samples.map((s) => s.step)).toEqual([3, 6]);
    expect(samples[0]).toMatchObject({ prompt: 'The ', temperature: 0.5, seed: 1234 });
    expect([...String(samples[0].text)]).toHaveLength(12);

    const human = lstmgen(...args, ...sampleFlags, '--sample-seed', '9', '--out', path.join(dir, 'b.lstm'));
    expect(human.code, human.stderr).toBe(0);
    expect(human.stderr).toContain('--- sample at step 3 (epoch 1, temperature 0.5) ---\nThe ');
    expect(human.stderr).toContain('--- sample at step 6 ');

    const help = lstmgen('train', '--help');
    for (const flag of ['--sample-every <n>', '--sample-prompt <text>', '--init-from <file>', '--extend-vocab'])
      expect(help.stdout).toContain(flag);
  });
});

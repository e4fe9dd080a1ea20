// Needs the native addon and the compiled CLI. The regularizer, optimizer and word-split flags of `lstmgen train`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonLines, lstmgen, TINY_FLAGS } from './cli-helpers';
import { tensorBytes, tmpDir } from './helpers';

/** Pre-tokenized lines in the style of Penn Treebank. */
const PTB_LIKE = Array.from({ length: 400 }, (_, i) => ` the n.v. 's <unk> N mr. co. u.s. ${i % 7} said \n`).join('');

describe('lstmgen train: regularizer, optimizer and word-split flags', () => {
  it('trains a tied word model on pre-tokenized text with every regularizer and SGD', () => {
    const dir = tmpDir();
    const corpus = path.join(dir, 'ptb.txt');
    const out = path.join(dir, 'm.lstm');
    fs.writeFileSync(corpus, PTB_LIKE);
    const r = lstmgen(
      'train',
      '--corpus',
      corpus,
      '--tokenizer',
      'word',
      '--word-split',
      'whitespace',
      '--no-lowercase',
      '--embedding-dim',
      '16',
      '--hidden-size',
      '16',
      '--num-layers',
      '2',
      '--seq-len',
      '8',
      '--batch-size',
      '4',
      '--tie-weights',
      '--dropout-embedding',
      '0.2',
      '--dropout-hidden',
      '0.2',
      '--dropout-output',
      '0.3',
      '--dropout-words',
      '0.1',
      '--weight-drop',
      '0.3',
      '--ar',
      '2',
      '--tar',
      '1',
      '--optimizer',
      'sgd',
      '--momentum',
      '0.9',
      '--lr',
      '0.1',
      '--max-steps',
      '6',
      '--device',
      'cpu',
      '--out',
      out,
      '--json',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const steps = jsonLines(r.stdout).filter((l) => l.type === 'step');
    expect(steps).toHaveLength(6);
    expect(steps.every((s) => Number.isFinite(s.loss))).toBe(true);
    const t = tensorBytes(fs.readFileSync(out));
    expect(t['decoder.weight'].equals(t['embedding.weight'])).toBe(true);
  });

  it('refuses --tie-weights with different widths, --momentum without sgd and --vocab-size with char (exit 2, flag named)', () => {
    const tie = lstmgen(
      'train',
      '--corpus',
      'moby-dick',
      '--tie-weights',
      '--embedding-dim',
      '8',
      '--hidden-size',
      '16',
    );
    expect(tie.code).toBe(2);
    expect(tie.stderr).toContain('--tie-weights');
    expect(tie.stderr).toMatch(
      /needs --embedding-dim == the last layer's output width \(--proj-size, or --hidden-size/,
    );
    expect(tie.stderr).toContain('set --proj-size to 8');
    const mom = lstmgen('train', '--corpus', 'moby-dick', '--momentum', '0.9');
    expect(mom.code).toBe(2);
    expect(mom.stderr).toContain('--momentum');
    const vocab = lstmgen('train', '--corpus', 'moby-dick', '--tokenizer', 'char', '--vocab-size', '500');
    expect(vocab.code).toBe(2);
    expect(vocab.stderr).toMatch(/--vocab-size.*applies to the word and bpe tokenizers only/);
    // the word options are no more ignored by the other tokenizers than --vocab-size is by char
    for (const [args, flag] of [
      [['--tokenizer', 'char', '--lowercase'], '--lowercase'],
      [['--tokenizer', 'char', '--no-lowercase'], '--lowercase'],
      [['--tokenizer', 'char', '--word-split', 'whitespace'], '--word-split'],
      [['--tokenizer', 'bpe', '--lowercase'], '--lowercase'],
      [['--tokenizer', 'bpe', '--word-split', 'punctuation'], '--word-split'],
    ] as const) {
      const once = [...TINY_FLAGS, '--max-steps', '1', '--out', path.join(tmpDir(), 'never.lstm')];
      const r = lstmgen('train', '--corpus', 'moby-dick', ...args, ...once);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(
        new RegExp(
          `^lstmgen: ${flag}: applies to the word tokenizer only: .*; drop ${flag} or choose tokenizer "word"\\n$`,
        ),
      );
    }
  });
});

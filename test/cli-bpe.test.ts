/** The CLI with subword tokenizers: `train --tokenizer bpe|FILE.json`, `tokenize`, and bits per character in `eval`. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, jsonLines, lstmgen, runCli, TINY_FLAGS } from './cli-helpers';
import { ROOT, shakespeare, tmpDir } from './helpers';

describe('lstmgen with BPE', () => {
  it('trains a BPE model, tokenizes a text exactly, and evaluates bits per character', () => {
    const dir = tmpDir();
    const corpus = path.join(dir, 'c.txt');
    fs.writeFileSync(corpus, shakespeare(30_000));
    const out = path.join(dir, 'm.lstm');
    const args = ['--corpus', corpus, ...TINY_FLAGS, '--max-steps', '3', '--out', out];
    const r = lstmgen('train', ...args, '--tokenizer', 'bpe', '--vocab-size', '300', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(jsonLines(r.stdout).at(-1)?.type).toBe('done');

    const text = 'First Citizen: 👍🏽\r\n\tdone';
    const t = lstmgen('tokenize', '--model', out, '--text', text, '--json');
    expect(t.code, t.stderr).toBe(0);
    const [res] = jsonLines(t.stdout) as Array<{ ids: number[]; tokens: string[]; pieces: string[]; chars: number }>;
    expect(res.ids.length).toBe(res.tokens.length);
    expect(res.chars).toBe([...text].length);
    const plain = lstmgen('tokenize', '--model', out, '--text', 'First');
    expect(plain.stdout).toMatch(/tokens, 5 characters \(bpe, vocabulary 300\)/);
    // standard input is checked as train checks a corpus: text is read, binary data is a DataError (exit 1)
    const piped = runCli(CLI, ['tokenize', '--model', out], { input: Buffer.from('\ufeffFirst', 'utf8') });
    expect(piped.stdout).toMatch(/tokens, 5 characters \(bpe, vocabulary 300\)/);
    const binary = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24));
    for (const [bytes, why] of [
      [binary, /standard input is not valid utf-8 text/],
      [Buffer.from('one\0two'), /standard input contains NUL characters.*binary data/],
    ] as const) {
      const bad = runCli(CLI, ['tokenize', '--model', out], { input: bytes });
      expect(bad.code).toBe(1);
      expect(bad.stdout).toBe('');
      expect(bad.stderr).toMatch(why);
    }

    const e = lstmgen('eval', '--model', out, '--corpus', corpus, '--json');
    expect(e.code, e.stderr).toBe(0);
    const [ev] = jsonLines(e.stdout) as Array<{ loss: number; bitsPerChar: number }>;
    expect(ev.bitsPerChar).toBeGreaterThan(0);
    expect(ev.bitsPerChar).toBeLessThan(ev.loss / Math.LN2);
  });

  it('trains with a tokenizer.json and names a bad one', () => {
    const dir = tmpDir();
    const corpus = path.join(dir, 'c.txt');
    fs.writeFileSync(corpus, shakespeare(20_000));
    const base = ['--corpus', corpus, ...TINY_FLAGS, '--max-steps', '2', '--out', path.join(dir, 'm.lstm')];
    const file = path.join(ROOT, 'test', 'fixtures', 'hf-bpe', 'tokenizer.json');
    expect(lstmgen('train', ...base, '--tokenizer', file).code).toBe(0);
    const bad = lstmgen('train', ...base, '--tokenizer', path.join(dir, 'missing.json'));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/missing\.json.*no such file/);
    const typo = lstmgen('train', ...base, '--tokenizer', 'bpee');
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/"bpee".*tokenizer is "char", "word", "bpe" or a tokenizer\.json file/);
  });

  it('refuses a bpe --vocab-size below 257 as a bad flag (exit 2) before reading the corpus', () => {
    const r = lstmgen('train', '--corpus', 'moby-dick', '--tokenizer', 'bpe', '--vocab-size', '100');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^lstmgen: --vocab-size: must be >= 257 for the bpe tokenizer/);
  });
});

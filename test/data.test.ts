import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCorpus, tokenizeCorpus } from '../ts/corpus/dataset';
import { batchLayout, makeBatches, splitText } from '../ts/data';
import { DataError } from '../ts/errors';
import { accuracy, bitsPerChar, perplexity } from '../ts/metrics';

const range = (n: number) => Uint32Array.from({ length: n }, (_, i) => i);

describe('makeBatches', () => {
  it('cuts the stream into batchSize contiguous streams with targets shifted by one', () => {
    // 27 tokens, B = 2, T = 4: streamLen = floor(26 / 2) = 13, stream 0 = 0..12, stream 1 = 13..25
    const batches = [...makeBatches(range(27), 2, 4)];
    expect(batches.map((b) => b.seqLen)).toEqual([4, 4, 4, 1]);
    expect(Array.from(batches[0].inputs)).toEqual([0, 1, 2, 3, 13, 14, 15, 16]);
    expect(Array.from(batches[0].targets)).toEqual([1, 2, 3, 4, 14, 15, 16, 17]);
    expect(Array.from(batches[1].inputs)).toEqual([4, 5, 6, 7, 17, 18, 19, 20]);
    expect(Array.from(batches[3].inputs)).toEqual([12, 25]);
    expect(Array.from(batches[3].targets)).toEqual([13, 26]);
  });

  it('visits every input position exactly once and each target is the next token', () => {
    const ids = Uint32Array.from({ length: 1001 }, (_, i) => (i * 7919) % 65);
    const B = 3;
    const T = 7;
    const { streamLen } = batchLayout(ids.length, B, T);
    const seen: number[][] = Array.from({ length: B }, () => []);
    for (const b of makeBatches(ids, B, T)) {
      expect(b.inputs.length).toBe(B * b.seqLen);
      for (let r = 0; r < B; r++) {
        for (let t = 0; t < b.seqLen; t++) {
          const pos = r * streamLen + seen[r].length;
          expect(b.inputs[r * b.seqLen + t]).toBe(ids[pos]);
          expect(b.targets[r * b.seqLen + t]).toBe(ids[pos + 1]);
          seen[r].push(pos);
        }
      }
    }
    expect(seen.flat().length).toBe(B * streamLen);
  });

  it('drops the last short batch with dropLast', () => {
    const batches = [...makeBatches(range(27), 2, 4, true)];
    expect(batches).toHaveLength(3);
    expect(batches.every((b) => b.seqLen === 4 && b.inputs.length === 8)).toBe(true);
  });

  it('accepts exactly batchSize * seqLen + 1 tokens', () => {
    const batches = [...makeBatches(range(9), 2, 4)];
    expect(batches).toHaveLength(1);
    expect(Array.from(batches[0].targets)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('throws DataError with the numbers when the stream is too short', () => {
    expect(() => makeBatches(range(8), 2, 4)).toThrow(DataError);
    expect(() => makeBatches(range(8), 2, 4)).toThrow(/8 tokens.*batchSize \* seqLen \+ 1 = 9/);
    expect(() => makeBatches(range(4), 1, 4)).toThrow(/4 tokens, shorter than seqLen \+ 1 = 5/);
    expect(() => makeBatches(new Uint32Array(0), 1, 1)).toThrow(DataError);
  });
});

describe('loadCorpus / splitText', () => {
  it('reads files, inline text and the builtin moby-dick', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lstmgen-'));
    const file = path.join(dir, 'c.txt');
    fs.writeFileSync(file, '\uFEFFhello 🐳');
    expect(await loadCorpus(file)).toEqual(['hello 🐳']);
    expect(await loadCorpus({ path: file })).toEqual(['hello 🐳']);
    expect(await loadCorpus({ text: 'abc' })).toEqual(['abc']);
    const [moby] = await loadCorpus('moby-dick');
    expect(moby.length).toBeGreaterThan(1_000_000);
    expect(moby).toContain('Call me Ishmael.');
  });

  it('throws DataError for a missing file, an empty directory and an empty corpus', async () => {
    await expect(loadCorpus('/no/such/corpus.txt')).rejects.toThrow(DataError);
    await expect(loadCorpus('/no/such/corpus.txt')).rejects.toThrow(/no such file/);
    await expect(loadCorpus({ path: fs.mkdtempSync(path.join(os.tmpdir(), 'lstmgen-')) })).rejects.toThrow(
      /directory .* holds no files/,
    );
    await expect(loadCorpus({ text: '' })).rejects.toThrow(/empty/);
    const empty = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lstmgen-')), 'empty.txt');
    fs.writeFileSync(empty, '');
    await expect(loadCorpus(empty)).rejects.toThrow(DataError);
  });

  it('warns when a corpus is mostly control characters, not for text', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => 1 + (i % 8))); // valid UTF-8, control codes
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lstmgen-')), 'blob.bin');
      fs.writeFileSync(file, bytes);
      const tiny = { kind: 'char' as const, vocabSize: 10, lowercase: true };
      await tokenizeCorpus(file, tiny);
      await tokenizeCorpus({ text: 'plain text\twith\ttabs\r\nand lines\n'.repeat(50) }, tiny);
      await tokenizeCorpus('moby-dick', tiny);
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/blob\.bin" does not look like text: \d+\.\d% of its first \d+ characters/);
  });

  it('holds out the last valFraction of the code points, cutting anywhere', () => {
    const text = Array.from({ length: 1000 }, (_, i) => `w${i}`).join(' ');
    const { train, val } = splitText(text, 0.1);
    expect(train + val).toBe(text);
    expect(val.length).toBe(text.length - Math.floor(text.length * 0.9));
  });

  it('never splits a surrogate pair', () => {
    const text = '🐳'.repeat(11); // 22 code units, no whitespace
    const { train, val } = splitText(text, 0.5);
    expect(train + val).toBe(text);
    expect([...train].every((c) => c === '🐳') && [...val].every((c) => c === '🐳')).toBe(true);
  });
});

describe('metrics', () => {
  it('computes perplexity, bits per char and accuracy', () => {
    expect(perplexity(Math.log(65))).toBeCloseTo(65, 10);
    expect(bitsPerChar(Math.LN2 * 1.5)).toBeCloseTo(1.5, 12);
    expect(bitsPerChar(Math.LN2 * 6, 4)).toBeCloseTo(1.5, 12);
    expect(accuracy(3, 4)).toBe(0.75);
    expect(accuracy(0, 0)).toBeNaN();
  });
});

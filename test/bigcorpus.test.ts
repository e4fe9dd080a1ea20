// Needs the native addon. A corpus file larger than the longest JavaScript string trains, in bounded memory.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StartInfo } from '../ts/events';
import { train } from '../ts/train/loop';
import { shakespeare, TINY, tmpDir } from './helpers';

/** Node 20's maximum string length in UTF-16 units (V8's String::kMaxLength on 64-bit). */
const MAX_STRING = 536_870_888;
const MiB = 1 << 20;

describe('a corpus larger than the maximum string length', () => {
  let dir: string;
  let file: string;
  let size = 0;

  beforeAll(() => {
    dir = tmpDir();
    file = path.join(dir, 'big.txt');
    const ascii = shakespeare(MiB).replace(/[^ -~\n]/g, '?'); // printable ASCII: one byte per character
    const block = Buffer.from(ascii.padEnd(MiB, ' ').slice(0, MiB));
    const fd = fs.openSync(file, 'w');
    for (size = 0; size <= MAX_STRING; size += block.length) fs.writeSync(fd, block);
    fs.closeSync(fd);
  }, 60_000);

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('trains two steps with the ids in one byte each and memory bounded by the ids', async () => {
    expect(size).toBeGreaterThan(MAX_STRING);
    expect(() => fs.readFileSync(file, 'utf8')).toThrow(); // what reading it whole would do
    let start: StartInfo | undefined;
    const rssBefore = process.memoryUsage().rss;
    const { history, model } = await train({
      ...TINY,
      corpus: file,
      valFraction: 0,
      maxSteps: 2,
      onStart: (s) => {
        start = s;
      },
    });
    expect(start?.trainTokens).toBe(size);
    expect(history.steps).toHaveLength(2);
    expect(Number.isFinite(history.steps[1].loss)).toBe(true);
    expect(model.tokenizer.vocabSize).toBeLessThan(256);
    // the ids take `size` bytes (Uint8Array); the text is never held: growth well under two copies of the file
    const grown = process.memoryUsage().rss - rssBefore;
    expect(grown).toBeLessThan(1.5 * size + 300 * MiB);
  }, 120_000);

  it('stops reading when the signal aborts (what Ctrl-C does in the CLI)', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const t0 = performance.now();
    const err = await train({ ...TINY, corpus: file, signal: controller.signal }).catch((e) => e);
    expect(err.name).toBe('AbortError');
    expect(performance.now() - t0).toBeLessThan(3000);
  }, 30_000);
});

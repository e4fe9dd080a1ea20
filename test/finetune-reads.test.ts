// Needs the native addon. A fine-tuning run reads its corpus as often as any run: one tokenization, two passes
// (count, then encode), whether extendVocab grows the vocabulary or not. Counted by the opens of the corpus file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { train } from '../ts/train/loop';
import { shakespeare, TINY, tmpDir } from './helpers';

describe('reads of the corpus', () => {
  let dir: string;
  let baseFile: string;
  let corpus: string;

  beforeAll(async () => {
    dir = tmpDir();
    baseFile = path.join(dir, 'base.lstm');
    const { model } = await train({ ...TINY, maxSteps: 2 });
    await model.save(baseFile);
    corpus = path.join(dir, 'new.txt');
    fs.writeFileSync(corpus, shakespeare(20_000).replaceAll('e', 'Ω')); // a symbol the base lacks
  }, 120_000);

  /** How many times `run` opens the corpus file. */
  async function opens(run: () => Promise<unknown>): Promise<number> {
    const open = vi.spyOn(fs.promises, 'open');
    open.mockClear();
    try {
      await run();
      return open.mock.calls.filter(([file]) => file === corpus).length;
    } finally {
      open.mockRestore();
    }
  }

  it('a new run, a fine-tuning run and one with extendVocab each open the corpus twice', async () => {
    const run = { seqLen: 16, batchSize: 8, maxSteps: 1, device: 'cpu' as const, onWarning: () => {} };
    expect(await opens(() => train({ ...TINY, corpus, maxSteps: 1 }))).toBe(2);
    expect(await opens(() => train({ ...run, corpus, initFrom: baseFile }))).toBe(2);
    let grown = 0;
    expect(
      await opens(async () => {
        const { model } = await train({ ...run, corpus, initFrom: baseFile, extendVocab: true });
        grown = model.tokenizer.vocabSize;
      }),
    ).toBe(2);
    const { model: base } = await train({ ...run, corpus, initFrom: baseFile });
    expect(grown).toBe(base.tokenizer.vocabSize + 1); // 'Ω' was added
  });
});

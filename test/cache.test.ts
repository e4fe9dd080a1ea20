// The tokenized-ids cache (cacheDir): hits, and stale, truncated or corrupt files rebuilt.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { tokenizeCorpus } from '../ts/corpus/dataset';
import { tmpDir } from './helpers';

const WORD = { kind: 'word' as const, vocabSize: 50, lowercase: true };
const TEXT = 'the whale and the sea\nthe ship\n'.repeat(40);

function setup() {
  const dir = tmpDir();
  const corpus = path.join(dir, 'corpus.txt');
  fs.writeFileSync(corpus, TEXT);
  return { corpus, cacheDir: path.join(dir, 'cache') };
}

const cacheFiles = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith('.ids'));

describe('cacheDir', () => {
  it('stores the ids on the first run and loads the same ids and vocabulary on the second', async () => {
    const { corpus, cacheDir } = setup();
    const first = await tokenizeCorpus(corpus, WORD, { cacheDir });
    expect(first.cache).toBe('written');
    const phases: string[] = [];
    const second = await tokenizeCorpus(corpus, WORD, { cacheDir, onProgress: (p) => void phases.push(p.phase) });
    expect(second.cache).toBe('hit');
    expect(new Set(phases)).toEqual(new Set(['cache']));
    expect(second.ids).toEqual(first.ids);
    expect(second.tokenizer.toJSON()).toEqual(first.tokenizer.toJSON());
    // other settings are another cache entry
    const char = await tokenizeCorpus(corpus, { ...WORD, kind: 'char' }, { cacheDir });
    expect(char.cache).toBe('written');
    expect(cacheFiles(cacheDir)).toHaveLength(2);
  });

  it('rebuilds a stale entry when the file changed (size or modification time)', async () => {
    const { corpus, cacheDir } = setup();
    await tokenizeCorpus(corpus, WORD, { cacheDir });
    fs.appendFileSync(corpus, 'a new line\n');
    const changed = await tokenizeCorpus(corpus, WORD, { cacheDir });
    expect(changed.cache).toBe('written');
    expect(changed.tokenizer.idOf('new')).toBeDefined();
    const later = new Date(Date.now() + 5000);
    fs.utimesSync(corpus, later, later);
    expect((await tokenizeCorpus(corpus, WORD, { cacheDir })).cache).toBe('written');
    expect((await tokenizeCorpus(corpus, WORD, { cacheDir })).cache).toBe('hit');
    expect(cacheFiles(cacheDir)).toHaveLength(1); // the stale file was replaced, not kept beside
  });

  it('detects a truncated or corrupt cache file, warns and rebuilds it', async () => {
    const { corpus, cacheDir } = setup();
    const first = await tokenizeCorpus(corpus, WORD, { cacheDir });
    const [name] = cacheFiles(cacheDir);
    const file = path.join(cacheDir, name);
    const spy = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      fs.truncateSync(file, fs.statSync(file).size - 7);
      const rebuilt = await tokenizeCorpus(corpus, WORD, { cacheDir });
      expect(rebuilt.cache).toBe('written');
      expect(rebuilt.ids).toEqual(first.ids);
      expect(String(spy.mock.calls.at(-1)?.[0])).toMatch(
        /cache file .* is truncated \(\d+ of \d+ bytes\); rebuilding it/,
      );
      const bytes = fs.readFileSync(file);
      bytes[bytes.length - 3] ^= 0xff;
      fs.writeFileSync(file, bytes);
      expect((await tokenizeCorpus(corpus, WORD, { cacheDir })).cache).toBe('written');
      expect(String(spy.mock.calls.at(-1)?.[0])).toMatch(/is corrupt \(checksum mismatch\); rebuilding it/);
      expect((await tokenizeCorpus(corpus, WORD, { cacheDir })).cache).toBe('hit');
    } finally {
      spy.mockRestore();
    }
  });
});

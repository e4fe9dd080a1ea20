// Bad corpus input: each gives a clear typed error (or a warning) and nothing hangs.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { loadCorpus, tokenizeCorpus } from '../ts/corpus/dataset';
import { ConfigError, DataError } from '../ts/errors';
import { train } from '../ts/train/loop';
import { TINY, tmpDir } from './helpers';

const CHAR = { kind: 'char' as const, vocabSize: 10, lowercase: true };

function write(name: string, bytes: string | Buffer): string {
  const file = path.join(tmpDir(), name);
  fs.writeFileSync(file, bytes);
  return file;
}

/** UTF-16 bytes of `text`, little- or big-endian. */
function utf16(text: string, endian: 'le' | 'be'): Buffer {
  const le = Buffer.from(text, 'utf16le');
  return endian === 'le' ? le : Buffer.from(le).swap16();
}

describe('non-regular files', () => {
  it('refuses /dev/zero and /dev/urandom as character devices instead of reading forever', async () => {
    for (const dev of ['/dev/zero', '/dev/urandom']) {
      const err = await tokenizeCorpus(dev, CHAR).catch((e) => e);
      expect(err).toBeInstanceOf(DataError);
      expect(err.message).toMatch(/is a character device, not a regular file/);
    }
    await expect(train({ ...TINY, corpus: '/dev/zero' })).rejects.toThrow(/character device/);
  });

  it('refuses a FIFO at once (no open that waits for a writer)', async () => {
    const fifo = path.join(tmpDir(), 'pipe');
    execFileSync('mkfifo', [fifo]);
    const t0 = performance.now();
    await expect(tokenizeCorpus(fifo, CHAR)).rejects.toThrow(/is a FIFO \(named pipe\), not a regular file/);
    await expect(tokenizeCorpus({ path: fifo }, CHAR)).rejects.toThrow(DataError);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

describe('encodings', () => {
  const TEXT = 'Café naïve — 白鯨 🐳\nline two\n';

  it('decodes UTF-16 (both byte orders) and UTF-8 with a byte-order mark', async () => {
    const bom16 = (endian: 'le' | 'be') => Buffer.concat([utf16('\uFEFF', endian), utf16(TEXT, endian)]);
    expect(await loadCorpus(write('le.txt', bom16('le')))).toEqual([TEXT]);
    expect(await loadCorpus(write('be.txt', bom16('be')))).toEqual([TEXT]);
    expect(await loadCorpus(write('u8.txt', `\uFEFF${TEXT}`))).toEqual([TEXT]);
  });

  it('says a UTF-16 file without a byte-order mark looks like UTF-16, and reads it with encoding', async () => {
    const file = write('nobom.txt', utf16('plain ASCII text in UTF-16\n'.repeat(20), 'le'));
    const err = await loadCorpus(file).catch((e) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err.message).toMatch(
      /contains NUL characters .*looks like UTF-16LE without a byte-order mark; give encoding: 'utf-16le'/,
    );
    expect((await loadCorpus(file, { encoding: 'utf-16le' }))[0]).toMatch(/^plain ASCII text in UTF-16\n/);
    const be = write('nobom-be.txt', utf16('plain text\n'.repeat(20), 'be'));
    await expect(loadCorpus(be)).rejects.toThrow(/give encoding: 'utf-16be'/);
  });

  it('says a Latin-1 file is not UTF-8 and which encoding to give, and reads it with encoding latin1', async () => {
    const file = write('latin1.txt', Buffer.from('café naïve\n', 'latin1'));
    const err = await loadCorpus(file).catch((e) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err.message).toMatch(/is not valid utf-8 text .*give encoding: 'latin1' \(--encoding latin1\)/);
    expect(await loadCorpus(file, { encoding: 'latin1' })).toEqual(['café naïve\n']);
    await expect(train({ ...TINY, corpus: file })).rejects.toThrow(/not valid utf-8/);
  });

  it('refuses binary files found in a directory, naming the file and the extension filter', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'some text\n'.repeat(100));
    fs.writeFileSync(
      path.join(dir, 'photo.png'),
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0xff, 0xd8]),
    );
    const err = await tokenizeCorpus(dir, CHAR).catch((e) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err.message).toMatch(
      /photo\.png" .* \(found by directory ".*": pick the text files with extensions, e\.g\. --ext \.txt\)/,
    );
    const ok = await tokenizeCorpus(dir, CHAR, { extensions: ['.txt'] });
    expect(ok.documents).toHaveLength(1);
  });
});

describe('paths lstmgen writes', () => {
  it('refuses a cache directory that cannot be written, before reading the corpus', async () => {
    const blocker = write('file', 'x');
    const err = await tokenizeCorpus({ text: 'abc' }, CHAR, { cacheDir: path.join(blocker, 'cache') }).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.field).toBe('cacheDir');
    expect(err.message).toMatch(/cannot create directory .* \(a file is in the way\)/);
    await expect(train({ ...TINY, cacheDir: path.join(blocker, 'cache') })).rejects.toThrow(/^cacheDir: /);
  });

  it('refuses a log file that is a corpus file, leaving it untouched', async () => {
    const corpus = write('corpus.txt', TINY.corpus.text);
    const err = await train({ ...TINY, corpus, logFile: corpus }).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.field).toBe('logFile');
    expect(fs.readFileSync(corpus, 'utf8')).toBe(TINY.corpus.text);
  });
});

describe('word tokenizer on text without spaces', () => {
  it('warns that CJK "words" are whole clauses, and not for English', async () => {
    const spy = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const word = { kind: 'word' as const, vocabSize: 1000, lowercase: true };
      await tokenizeCorpus({ text: '白鯨は海を泳いでいた、船はそれを追った。'.repeat(50) }, word);
      const calls = spy.mock.calls.filter((c) => (c[1] as { code?: string })?.code === 'LSTMGEN_NO_SPACES');
      expect(calls).toHaveLength(1);
      expect(String(calls[0][0])).toMatch(/its "words" are whole clauses .*use the char tokenizer/);
      spy.mockClear();
      await tokenizeCorpus({ text: 'The whale swam, and the ship followed it.\n'.repeat(50) }, word);
      expect(spy.mock.calls.filter((c) => (c[1] as { code?: string })?.code === 'LSTMGEN_NO_SPACES')).toHaveLength(0);
    } finally {
      spy.mockRestore();
    }
  });
});

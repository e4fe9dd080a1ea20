import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { corpusStream, loadCorpus, tokenizeCorpus } from '../ts/corpus/dataset';
import { ResolvedCorpus, resolveCorpus } from '../ts/corpus/sources';
import { DataError } from '../ts/errors';
import { BOUNDARY, CharTokenizer } from '../ts/tokenizer';
import { defined, tmpDir } from './helpers';

const CHAR = { kind: 'char' as const, vocabSize: 10, lowercase: true };
const WORD = { kind: 'word' as const, vocabSize: 100, lowercase: true };

/** Write `files` (relative path -> text) under a fresh directory; returns it. */
function tree(files: Record<string, string>): string {
  const dir = tmpDir();
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}

/** All ids of the corpus stream. */
function streamIds(corpus: Awaited<ReturnType<typeof tokenizeCorpus>>): number[] {
  const s = corpusStream(corpus);
  const out = new Uint32Array(s.length);
  s.read(0, s.length, out, 0);
  return Array.from(out);
}

/** The ids of `texts` joined and framed by the boundary, as the tokenizer `tok` encodes each. */
function framed(tok: { encode(t: string): Uint32Array; boundaryId: number | undefined }, texts: string[]): number[] {
  const b = defined(tok.boundaryId);
  return [b, ...texts.flatMap((t) => [...tok.encode(t), b])];
}

describe('corpus sources', () => {
  const files = { 'b.txt': 'bee\n', 'a.txt': 'ay\n', 'sub/c.txt': 'sea\n', 'sub/d.md': 'dee\n', '.hidden.txt': 'no' };

  it('reads a directory recursively in sorted path order, hidden files skipped, as the framed concatenation', async () => {
    const dir = tree(files);
    const corpus = await tokenizeCorpus(dir, CHAR);
    expect(corpus.documents.map((d) => path.relative(dir, d.name))).toEqual([
      'a.txt',
      'b.txt',
      'sub/c.txt',
      'sub/d.md',
    ]);
    expect(corpus.tokenizer.tokens).toContain(BOUNDARY);
    expect(streamIds(corpus)).toEqual(framed(corpus.tokenizer, ['ay\n', 'bee\n', 'sea\n', 'dee\n']));
    // the same documents as a list of files, and as a glob, give the same ids
    const list = ['a.txt', 'b.txt', 'sub/c.txt', 'sub/d.md'].map((f) => path.join(dir, f));
    expect(Array.from((await tokenizeCorpus(list, CHAR)).ids)).toEqual(Array.from(corpus.ids));
    expect(Array.from((await tokenizeCorpus(`${dir}/**/*.{txt,md}`, CHAR)).ids)).toEqual(Array.from(corpus.ids));
  });

  it('filters directories and globs by extension, keeps a list in the order given and reads a file once', async () => {
    const dir = tree(files);
    const txt = resolveCorpus(dir, { extensions: ['txt'] });
    expect(txt.map((d) => path.basename(d.name))).toEqual(['a.txt', 'b.txt', 'c.txt']);
    const upper = resolveCorpus(dir, { extensions: ['.MD'] });
    expect(upper.map((d) => path.basename(d.name))).toEqual(['d.md']);
    const list = resolveCorpus([path.join(dir, 'sub'), path.join(dir, 'a.txt'), path.join(dir, 'sub/c.txt')]);
    expect(list.map((d) => path.basename(d.name))).toEqual(['c.txt', 'd.md', 'a.txt']);
  });

  it('gives a word corpus of several files the same ids as the framed concatenation', async () => {
    const dir = tree({ 'x.txt': 'The whale.\nThe sea', 'y.txt': 'the whale!' });
    const corpus = await tokenizeCorpus(dir, WORD);
    expect(corpus.tokenizer.tokens.slice(0, 3)).toEqual(['<unk>', '<eos>', BOUNDARY]);
    expect(streamIds(corpus)).toEqual(framed(corpus.tokenizer, ['The whale.\nThe sea', 'the whale!']));
  });

  it('keeps one text document unframed, with no boundary token (the ids of the text)', async () => {
    const corpus = await tokenizeCorpus({ text: 'hello world' }, CHAR);
    expect(corpus.tokenizer.boundaryId).toBeUndefined();
    expect(Array.from(corpus.ids)).toEqual(Array.from(CharTokenizer.fromText('hello world').encode('hello world')));
  });

  it('does not let the builtin shadow a file named moby-dick; builtin:moby-dick is the builtin', async () => {
    const dir = tree({ 'moby-dick': 'my own whale story' });
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      expect(await loadCorpus('moby-dick')).toEqual(['my own whale story']);
      const [builtin] = await loadCorpus('builtin:moby-dick');
      expect(builtin).toContain('Call me Ishmael.');
    } finally {
      process.chdir(cwd);
    }
    const [bare] = await loadCorpus('moby-dick'); // no such file here: the builtin
    expect(bare).toContain('Call me Ishmael.');
    await expect(loadCorpus('builtin:nope')).rejects.toThrow(
      /no builtin corpus "nope"; the builtins are builtin:moby-dick/,
    );
  });

  it('refuses an empty directory, a directory without matching files and a glob that matches nothing', async () => {
    const empty = tmpDir();
    expect(() => resolveCorpus(empty)).toThrow(DataError);
    expect(() => resolveCorpus(empty)).toThrow(/directory ".*" holds no files \(hidden files are skipped\)/);
    const dir = tree({ 'a.md': 'x' });
    expect(() => resolveCorpus(dir, { extensions: ['.txt'] })).toThrow(/holds no files ending in \.txt/);
    expect(() => resolveCorpus(`${dir}/*.csv`)).toThrow(/glob ".*\*\.csv" matches no files/);
    expect(() => resolveCorpus(path.join(dir, 'missing.txt'))).toThrow(/no such file or directory/);
  });
});

describe('ResolvedCorpus', () => {
  it("looks the items up once: the files of those found, then the documents or the first failed item's error", async () => {
    const dir = tree({ 'a.txt': 'alpha alpha', 'sub/b.txt': 'beta' });
    const a = path.join(dir, 'a.txt');
    const missing = path.join(dir, 'nope.txt');
    const resolved = new ResolvedCorpus([a, missing, path.join(dir, 'sub')]);
    expect(resolved.files()).toEqual([a, path.join(dir, 'sub', 'b.txt')]);
    // the lookup is done: a file made now is not seen, and the missing item's error comes when reading
    fs.writeFileSync(missing, 'late');
    expect(() => resolved.documents()).toThrow(DataError);
    expect(() => resolved.documents()).toThrow(/cannot read corpus .*nope\.txt.*no such file/);
    await expect(tokenizeCorpus(resolved, CHAR)).rejects.toThrow(/nope\.txt.*no such file/);
    const ok = new ResolvedCorpus([a, a, path.join(dir, 'sub')]);
    expect(ok.documents().map((d) => d.name)).toEqual([a, path.join(dir, 'sub', 'b.txt')]);
    expect((await tokenizeCorpus(ok, CHAR)).name).toBe(`${a}, ${a}, ${path.join(dir, 'sub')}`);
  });
});

// Needs the native addon for the training tests. Record formats, the record split and the per-epoch shuffle.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCorpus, splitCorpus, tokenizeCorpus } from '../ts/corpus/dataset';
import type { TokenStream } from '../ts/data';
import { DataError } from '../ts/errors';
import { type TrainResult, train } from '../ts/train/loop';
import { defined, TINY, tmpDir } from './helpers';

const CHAR = { kind: 'char' as const, vocabSize: 10, lowercase: true };

function write(name: string, text: string): string {
  const file = path.join(tmpDir(), name);
  fs.writeFileSync(file, text);
  return file;
}

/** Names of the form "name 17 ends", sorted (sorted lists are common: the split must not take the last ones). */
const NAMES = Array.from({ length: 200 }, (_, i) => `name ${String(i).padStart(3, '0')} ends`);

/** The stream's ids. */
function idsOf(stream: TokenStream): number[] {
  const out = new Uint32Array(stream.length);
  stream.read(0, stream.length, out, 0);
  return Array.from(out);
}

/** The records of a framed stream (ids between boundaries), decoded. */
function records(stream: TokenStream, decode: (ids: number[]) => string): string[] {
  const ids = idsOf(stream);
  const b = defined(stream.boundaryId);
  expect(ids[0]).toBe(b);
  expect(ids.at(-1)).toBe(b);
  const out: string[] = [];
  let cur: number[] = [];
  for (const id of ids.slice(1)) {
    if (id === b) {
      out.push(decode(cur));
      cur = [];
    } else cur.push(id);
  }
  return out;
}

describe('record formats', () => {
  it('reads lines, JSONL fields and CSV columns (by name or index) as the same records', async () => {
    const lines = write('n.txt', `${NAMES.slice(0, 3).join('\r\n')}\n\n  \n`);
    const jsonl = write(
      'n.jsonl',
      `${NAMES.slice(0, 3)
        .map((n, i) => JSON.stringify({ id: i, name: n }))
        .join('\n')}\n\n`,
    );
    const csv = write(
      'n.csv',
      `id,name\n${NAMES.slice(0, 3)
        .map((n, i) => `${i},"${n}"`)
        .join('\n')}\n`,
    );
    const want = NAMES.slice(0, 3);
    expect(await loadCorpus(lines, { format: 'lines' })).toEqual(want);
    expect(await loadCorpus(jsonl, { format: 'jsonl', field: 'name' })).toEqual(want);
    expect(await loadCorpus(csv, { format: 'csv', field: 'name' })).toEqual(want);
    expect(await loadCorpus(csv, { format: 'csv', field: 1 })).toEqual(want);
    expect(await loadCorpus(csv, { format: 'csv', field: '1' })).toEqual(want);
    const multiline = write('m.csv', 'text\n"two\nlines"\nplain\n');
    expect(await loadCorpus(multiline, { format: 'csv' })).toEqual(['two\nlines', 'plain']);
  });

  it('names the line of a JSONL line that is not JSON, a missing field and a field that is not a string', async () => {
    const bad = write('bad.jsonl', '{"text":"ok"}\n\n{"text": oops}\n');
    await expect(loadCorpus(bad, { format: 'jsonl' })).rejects.toThrow(DataError);
    await expect(loadCorpus(bad, { format: 'jsonl' })).rejects.toThrow(/bad\.jsonl" line 3 is not JSON/);
    const missing = write('m.jsonl', '{"text":"a"}\n{"body":"b","id":2}\n');
    await expect(loadCorpus(missing, { format: 'jsonl' })).rejects.toThrow(
      /line 2 has no field "text" \(its fields: "body", "id"\)/,
    );
    const number = write('x.jsonl', '{"text":5}\n');
    await expect(loadCorpus(number, { format: 'jsonl' })).rejects.toThrow(
      /line 1: field "text" is number, not a string/,
    );
    const array = write('y.jsonl', '["text"]\n');
    await expect(loadCorpus(array, { format: 'jsonl' })).rejects.toThrow(/line 1 is an array, not a JSON object/);
  });

  it('names the columns of a CSV without the column, and reports invalid CSV', async () => {
    const csv = write('t.csv', 'id,title\n1,a\n');
    await expect(loadCorpus(csv, { format: 'csv', field: 'text' })).rejects.toThrow(
      /has no column "text": its header has 2 columns \("id", "title"\)/,
    );
    await expect(loadCorpus(csv, { format: 'csv', field: 5 })).rejects.toThrow(/has no column index 5/);
    const ragged = write('r.csv', 'a,b\n1,2\n3\n');
    await expect(loadCorpus(ragged, { format: 'csv', field: 'a' })).rejects.toThrow(/is not valid CSV: .*line 3/);
  });
});

describe('record split and shuffle', () => {
  it('holds out a seeded random valFraction of the records, not the last ones, and shuffles the rest every epoch', async () => {
    const corpus = await tokenizeCorpus({ text: NAMES.join('\n') }, CHAR, { format: 'lines' });
    const decode = (ids: number[]) => corpus.tokenizer.decode(ids);
    const split = splitCorpus(corpus, 0.1, 42);
    const val = records(defined(split.val), decode);
    expect(val).toHaveLength(20);
    expect(val).toEqual([...val].sort()); // validation in corpus order
    expect(val).not.toEqual(NAMES.slice(-20));
    const e1 = records(split.train(1), decode);
    const e2 = records(split.train(2), decode);
    expect(e1).toHaveLength(180);
    expect([...e1].sort()).toEqual(NAMES.filter((n) => !val.includes(n)));
    expect([...e2].sort()).toEqual([...e1].sort());
    expect(e2).not.toEqual(e1);
    expect(split.train(2).length).toBe(split.train(1).length);
    // the same seed gives the same split and orders; another seed another split
    const again = splitCorpus(corpus, 0.1, 42);
    expect(records(again.train(2), decode)).toEqual(e2);
    expect(records(defined(again.val), decode)).toEqual(val);
    const other = splitCorpus(corpus, 0.1, 43);
    expect(records(defined(other.val), decode)).not.toEqual(val);
  });

  it('says when holding out leaves no training record', async () => {
    const corpus = await tokenizeCorpus({ text: 'one\n' }, CHAR, { format: 'lines' });
    expect(() => splitCorpus(corpus, 0.1, 1)).toThrow(
      /valFraction = 0.1 of the 1 records .* leaves no training record/,
    );
  });
});

describe('training on records', () => {
  const RECORDS = { ...TINY, format: 'lines' as const, seqLen: 8, batchSize: 4, maxSteps: 8 };
  const losses = (r: TrainResult) => r.history.steps.map((s) => s.loss);

  it('trains on a lines file and a JSONL file of short records', async () => {
    const lines = write('names.txt', NAMES.join('\n'));
    const a = await train({ ...RECORDS, corpus: lines });
    expect(a.model.tokenizer.boundaryId).toBe(1);
    expect(a.history.epochs.at(-1)?.valLoss).toBeGreaterThan(0);
    const jsonl = write('names.jsonl', NAMES.map((n) => JSON.stringify({ text: n })).join('\n'));
    const b = await train({ ...RECORDS, corpus: jsonl, format: 'jsonl' });
    expect(losses(b)).toEqual(losses(a)); // the same records, the same vocabulary: the same run
    expect(b.model.config.format).toBe('jsonl');
  });

  it('resumes exactly across an epoch boundary with shuffled records', async () => {
    const corpus = write('names.txt', NAMES.slice(0, 80).join('\n'));
    const cfg = { ...RECORDS, corpus, maxSteps: 40, batchSize: 8, seqLen: 8, dropout: 0.2, numLayers: 2 };
    const dir = tmpDir();
    const full = await train({ ...cfg, checkpointDir: dir, checkpointEvery: 10, keepCheckpoints: 10 });
    expect(full.history.epochs.length).toBeGreaterThanOrEqual(2); // the resumed part crosses epochs, each its own record order
    const resumed = await train({ ...cfg, resumeFrom: path.join(dir, 'step-00000010.lstm') });
    expect(losses(resumed)).toEqual(losses(full).slice(10));
  });
});

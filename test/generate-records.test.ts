// Needs the native addon. The state reset at record boundaries seen from TypeScript (evaluation), whole-record
// generation with novelty against the training records, and the training-record hashes in model files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseGenerateOptions } from '../ts/config';
import { corpusStream, recordCount, tokenizeCorpus } from '../ts/corpus/dataset';
import { recordHash, TrainingRecords } from '../ts/corpus/recordset';
import type { TokenStream } from '../ts/data';
import { ConfigError } from '../ts/errors';
import { LstmModel, loadModel, RECORDS_KEY } from '../ts/model';
import { sampleRecords } from '../ts/sampling/records';
import { BOUNDARY } from '../ts/tokenizer';
import { train } from '../ts/train/loop';
import { jsonLines, lstmgen } from './cli-helpers';
import { TINY, tmpDir } from './helpers';

/** A few short names, each many times: a small model learns them by heart. */
const NAMES = ['anna', 'bob', 'carla', 'dave', 'emma', 'fritz', 'gina', 'hugo'];
const LINES = Array.from({ length: 400 }, (_, i) => NAMES[(i * 5) % NAMES.length]);

let corpusFile: string;
let model: LstmModel;

beforeAll(async () => {
  corpusFile = path.join(tmpDir(), 'names.txt');
  fs.writeFileSync(corpusFile, `${LINES.join('\n')}\n`);
  const r = await train({
    ...TINY,
    corpus: corpusFile,
    format: 'lines',
    hiddenSize: 48,
    seqLen: 12,
    batchSize: 8,
    maxSteps: 150,
    lr: 2e-2,
    valFraction: 0,
  });
  model = r.model;
}, 120_000);

afterEach(() => {
  vi.restoreAllMocks();
});

/** Summed loss (nats) of an evaluation of `stream` in one row. */
async function lossSum(m: LstmModel, stream: TokenStream, seqLen: number): Promise<number> {
  const r = await m.evaluate(stream, { batchSize: 1, seqLen });
  return r.loss * r.tokens;
}

describe('the state reset at record boundaries', () => {
  it('makes the loss of a record stream independent of the record order and equal to the records alone', async () => {
    const corpus = await tokenizeCorpus(corpusFile, model.tokenizer, { format: 'lines' });
    const n = 12;
    const forward = Uint32Array.from({ length: n }, (_, i) => i);
    const backward = forward.slice().reverse();
    const a = corpusStream(corpus, forward);
    const b = corpusStream(corpus, backward);
    // seqLen 5: the batches cut records apart, and the state carried from batch to batch resets too
    const [inOrder, reversed] = [await lossSum(model, a, 5), await lossSum(model, b, 5)];
    expect(Math.abs(inOrder - reversed)).toBeLessThan(1e-4 * inOrder);
    let alone = 0;
    for (let r = 0; r < n; r++) alone += await lossSum(model, corpusStream(corpus, Uint32Array.of(r)), 2);
    expect(Math.abs(inOrder - alone)).toBeLessThan(1e-4 * alone);
    // the same ids without resets: the state runs across records and the order matters
    const carried = (s: TokenStream): TokenStream => ({ length: s.length, read: s.read, boundaryId: null });
    const [c1, c2] = [await lossSum(model, carried(a), 5), await lossSum(model, carried(b), 5)];
    expect(Math.abs(c1 - c2)).toBeGreaterThan(1e-3);
  });
});

describe('whole-record generation', () => {
  it('returns n whole records without the boundary or a line break, novel exactly when not a training record', async () => {
    const records = await model.generate({ records: 50, maxTokens: 30, temperature: 0.8, seed: 3 });
    expect(records).toHaveLength(50);
    const names = new Set(LINES);
    for (const r of records) {
      expect(r.text).not.toContain(BOUNDARY);
      expect(r.text).not.toContain('\n');
      expect(['boundary', 'maxTokens']).toContain(r.end);
      expect(r.novel).toBe(!names.has(r.text));
    }
    const whole = records.filter((r) => r.end === 'boundary');
    expect(whole.length).toBeGreaterThan(40); // the names are short and well learnt
    expect(whole.filter((r) => r.novel === false).length).toBeGreaterThan(25);
    // greedy: the most likely whole record, a training name
    const [greedy] = await model.generate({ records: 1, temperature: 0, maxTokens: 30 });
    expect(greedy).toEqual({ text: expect.any(String), novel: false, end: 'boundary' });
    expect(names.has(greedy.text)).toBe(true);
  });

  it('plain generation goes on after a sampled boundary from the state a record starts from', async () => {
    const [greedy] = await model.generate({ records: 1, temperature: 0, maxTokens: 30 });
    // the boundary decodes as a line break; every line after the first is the greedy record again
    const [text] = await model.generate({ prompt: 'anna', temperature: 0, maxTokens: 40 });
    const lines = text.split('\n');
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines.slice(1, -1)) expect(line).toBe(greedy.text);
    // without a prompt (the vocabulary has no line break) plain generation starts at the boundary: the greedy record
    const [unprompted] = await model.generate({ temperature: 0, maxTokens: 40 });
    expect(unprompted.split('\n')[0]).toBe(greedy.text);
  });

  it('says when a record reached maxTokens instead of its end', async () => {
    const records = await model.generate({ records: 8, maxTokens: 2, seed: 1 });
    for (const r of records) {
      expect(r.end).toBe('maxTokens');
      expect([...r.text].length).toBe(2);
    }
  });

  it('continues a prompt as the start of each record', async () => {
    const records = await model.generate({ records: 10, prompt: 'ca', temperature: 0.5, seed: 4, maxTokens: 30 });
    for (const r of records) expect(r.text.startsWith('ca')).toBe(true);
    expect(records.some((r) => r.text === 'carla' && r.novel === false)).toBe(true);
  });

  it('keeps the prompt as given in the text, symbols the vocabulary lacks included (as plain generation shows it)', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const prompt = 'C\u{1F433}a'; // the names are lower case: neither 'C' nor the whale is a token
    const records = await model.generate({ records: 6, prompt, temperature: 0.5, seed: 4, maxTokens: 30 });
    for (const r of records) {
      expect(r.text.startsWith(prompt), r.text).toBe(true);
      expect(r.text).not.toContain('\uFFFD');
    }
    // the model read <unk> for them (one warning per call): what follows is the continuation of that
    expect(warn.mock.calls.filter((c) => String(c[0]).includes('\u{1F433}'))).toHaveLength(1);
    // other unknown symbols are the same ids, so the same records follow, after that prompt as given
    const other = 'Q\u{1F600}a';
    const again = await model.generate({ records: 6, prompt: other, temperature: 0.5, seed: 4, maxTokens: 30 });
    expect(again).toEqual(records.map((r) => ({ ...r, text: other + r.text.slice(prompt.length) })));
  });

  it('keeps sampling until n novel records are found, or gives up after the documented number with a warning', async () => {
    const warn = vi.fn();
    const o = { ...parseGenerateOptions({ records: 4, onlyNovel: true, temperature: 2, seed: 5, maxTokens: 20 }) };
    const found = await sampleRecords(model.native, model.tokenizer, model.records, { ...o, records: 4 }, warn);
    const names = new Set(LINES);
    if (found.length === 4) expect(warn).not.toHaveBeenCalled();
    for (const r of found) {
      expect(r).toMatchObject({ novel: true, end: 'boundary' });
      expect(names.has(r.text)).toBe(false);
    }
    // every record known: nothing is novel; it samples 20 per record asked for, then says so
    const calls: number[] = [];
    const native = model.native;
    const counting = {
      generate: (prompt: Uint32Array, opts: { numSamples: number }) => {
        calls.push(opts.numSamples);
        return native.generate(prompt, opts as Parameters<typeof native.generate>[1]);
      },
    } as unknown as typeof native;
    const everything = { known: true, why: null, has: () => true } as unknown as TrainingRecords;
    const none = await sampleRecords(counting, model.tokenizer, everything, { ...o, records: 3 }, warn);
    expect(none).toEqual([]);
    expect(calls.reduce((a, b) => a + b, 0)).toBe(60);
    expect(warn).toHaveBeenLastCalledWith(
      expect.stringMatching(/found 0 of 3 novel .* in 60 sampled/),
      'LSTMGEN_FEW_NOVEL',
    );
  });

  it('refuses records for a plain-text model, onlyNovel without hashes or records, and records with numSamples or stop', async () => {
    const plain = (await train({ ...TINY, maxSteps: 1 })).model;
    expect(plain.tokenizer.boundaryId).toBeUndefined();
    const err = await plain.generate({ records: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe('records');
    expect((err as Error).message).toMatch(/trained on one plain text/);
    // a BPE vocabulary always holds the boundary token: the model file's record of its training data decides
    const bpe = (await train({ ...TINY, maxSteps: 1, tokenizer: 'bpe', vocabSize: 300 })).model;
    expect(bpe.tokenizer.boundaryId).toBeDefined();
    const bpeFile = path.join(tmpDir(), 'plain-bpe.lstm');
    await bpe.save(bpeFile);
    for (const m of [bpe, await loadModel(bpeFile)]) {
      const e = await m.generate({ records: 2, maxTokens: 5 }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).field).toBe('records');
      expect((e as Error).message).toMatch(/trained on one plain text/);
    }
    const cli = lstmgen('generate', '--model', bpeFile, '--records', '2', '--max-tokens', '5');
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/records: this model was trained on one plain text/);
    await expect(model.generate({ onlyNovel: true })).rejects.toThrow(/onlyNovel: needs records/);
    await expect(model.generate({ records: 2, numSamples: 3 })).rejects.toThrow(/numSamples: cannot be combined/);
    await expect(model.generate({ records: 2, stop: ['a'] })).rejects.toThrow(/stop: cannot be combined/);
    const unknown = new LstmModel(model.native, model.tokenizer, model.config);
    const warning = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const records = await unknown.generate({ records: 3, seed: 1, maxTokens: 20 });
    expect(records.map((r) => r.novel)).toEqual([null, null, null]);
    expect(warning).toHaveBeenCalledWith(expect.stringMatching(/novel is null: .*without its training records/), {
      code: 'LSTMGEN_NOVELTY_UNKNOWN',
    });
    await expect(unknown.generate({ records: 1, onlyNovel: true })).rejects.toThrow(/onlyNovel: cannot tell/);
  });
});

describe('training-record hashes', () => {
  it('hashes with MurmurHash3 x86_32 (reference vectors) and keeps every record of the corpus', async () => {
    // SMHasher's MurmurHash3_x86_32 with seed 0 on the little-endian bytes of the words
    expect(recordHash([]) >> 32n).toBe(0n);
    expect(recordHash([0xffffffff]) >> 32n).toBe(0x76293b50n);
    expect(recordHash([0x87654321]) >> 32n).toBe(0xf55b516bn);
    const corpus = await tokenizeCorpus(corpusFile, model.tokenizer, { format: 'lines' });
    const set = TrainingRecords.of(corpus);
    expect(set.count).toBe(recordCount(corpus));
    for (const name of NAMES) expect(set.has(model.tokenizer.encode(name))).toBe(true);
    expect(set.has(model.tokenizer.encode('annabob'))).toBe(false);
    expect(set.has(model.tokenizer.encode('ann'))).toBe(false);
    const again = TrainingRecords.fromMetadata(set.toMetadata());
    expect(again.known).toBe(true);
    expect(again.has(model.tokenizer.encode('gina'))).toBe(true);
    expect(again.has(model.tokenizer.encode('gin'))).toBe(false);
  });

  it('travel in the model file: a loaded model gives the same records and novelty', async () => {
    const file = path.join(tmpDir(), 'names.lstmgen');
    await model.save(file);
    const loaded = await loadModel(file);
    expect(loaded.records.known).toBe(true);
    expect(loaded.records.count).toBe(LINES.length);
    expect(loaded.native.metadata()[RECORDS_KEY]).toBeDefined();
    const opts = { records: 12, seed: 9, maxTokens: 20 };
    expect(await loaded.generate(opts)).toEqual(await model.generate(opts));
  });

  it('lstmgen generate --records N --json prints {"records":[{"text","novel","end"}]}', async () => {
    const file = path.join(tmpDir(), 'names.lstm');
    await model.save(file);
    const r = lstmgen('generate', '--model', file, '--records', '5', '--max-tokens', '20', '--seed', '2', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [out] = jsonLines(r.stdout);
    const records = out.records as Array<{ text: string; novel: boolean; end: string }>;
    expect(records).toHaveLength(5);
    expect(records).toEqual(await model.generate({ records: 5, maxTokens: 20, seed: 2 }));
    const plain = lstmgen('generate', '--model', file, '--records', '3', '--max-tokens', '20', '--seed', '2');
    expect(plain.stdout.trimEnd().split('\n')).toEqual(records.slice(0, 3).map((x) => x.text));
    const novel = lstmgen(
      'generate',
      '--model',
      file,
      '--records',
      '2',
      '--only-novel',
      '--max-tokens',
      '20',
      '--json',
    );
    expect(novel.code).toBe(0);
    for (const x of jsonLines(novel.stdout)[0].records as Array<{ novel: boolean }>) expect(x.novel).toBe(true);
    // a prompt with symbols the model lacks: the records' text and plain generation both show it as typed
    const prompt = 'Ca';
    const typed = lstmgen('generate', '--model', file, '--records', '2', '--prompt', prompt, '--seed', '3', '--json');
    expect(typed.code, typed.stderr).toBe(0);
    expect(typed.stderr).toMatch(/^lstmgen: warning: .*"C"/);
    for (const x of jsonLines(typed.stdout)[0].records as Array<{ text: string }>) {
      expect(x.text.startsWith(prompt), x.text).toBe(true);
    }
    const typedPlain = lstmgen('generate', '--model', file, '--records', '2', '--prompt', prompt, '--seed', '3');
    for (const line of typedPlain.stdout.trimEnd().split('\n')) expect(line.startsWith(prompt), line).toBe(true);
    const continued = lstmgen('generate', '--model', file, '--prompt', prompt, '--max-tokens', '5', '--seed', '3');
    expect(continued.code, continued.stderr).toBe(0);
    expect(continued.stdout.startsWith(prompt)).toBe(true);
    const alone = lstmgen('generate', '--model', file, '--only-novel', '--prompt', 'a');
    expect(alone.code).toBe(2);
    expect(alone.stderr).toMatch(/^lstmgen: --only-novel: needs records/);
  });
});

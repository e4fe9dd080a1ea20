// Needs the native addon. Fine-tuning (initFrom): a saved model's weights and tokenizer on a new corpus, the
// vocabulary grown by extendVocab, the architecture locked, and exact resume of such a run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, ModelFileError } from '../ts/errors';
import type { TrainWarningCode } from '../ts/events';
import { LstmModel, loadModel } from '../ts/model';
import { NativeHandle } from '../ts/native/handle';
import { extendTokenizer, fineTuneNative } from '../ts/train/init-from';
import { type TrainResult, train } from '../ts/train/loop';
import { defined, last, shakespeare, TINY, tensorBytes, tmpDir } from './helpers';

/** The text the base model learns, and a different English text to fine-tune on (the next part of the same source). */
const TEXT_A = shakespeare(20_000);
const TEXT_B = shakespeare(40_000).slice(20_000);
/** New symbols for text B: 'e' becomes 'Ω' and 't' becomes 'ß' (neither is in text A). */
const NEW = ['Ω', 'ß'];
const TEXT_B_NEW = TEXT_B.replaceAll('e', 'Ω').replaceAll('t', 'ß');

const SHAPE = { embeddingDim: 16, hiddenSize: 32, numLayers: 1 };
const RUN = { seqLen: 16, batchSize: 8, lr: 1e-2, seed: 7, device: 'cpu' as const };

const f32 = (b: Buffer) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('fine-tuning (initFrom)', () => {
  let dir: string;
  let baseFile: string;
  let base: LstmModel;

  beforeAll(async () => {
    expect(NEW.some((c) => TEXT_A.includes(c))).toBe(false);
    dir = tmpDir();
    baseFile = path.join(dir, 'base.lstm');
    const r = await train({ corpus: { text: TEXT_A }, ...SHAPE, ...RUN, maxSteps: 150, dropout: 0.1 });
    await r.model.save(baseFile);
    base = await loadModel(baseFile, { device: 'cpu' });
  }, 120_000);

  it('starts from the model: lower loss on a new corpus than training from scratch for the same steps', async () => {
    const corpus = { text: TEXT_B };
    const warnings: string[] = [];
    const onWarning = (m: string) => warnings.push(m);
    const fine = await train({ corpus, initFrom: baseFile, ...RUN, maxSteps: 30, onWarning });
    const scratch = await train({ corpus, ...SHAPE, ...RUN, maxSteps: 30, onWarning });
    const valLoss = (r: TrainResult) => defined(last(r.history.epochs).valLoss);
    // the base model reached about 2.4 nats here; 30 steps from scratch stay above 2.9
    expect(valLoss(fine)).toBeLessThan(valLoss(scratch) - 0.3);
    expect(fine.history.steps[0].loss).toBeLessThan(scratch.history.steps[0].loss - 1);
    // a fresh optimizer and step count; the model's architecture and tokenizer (no extendVocab)
    expect(fine.history.steps[0].step).toBe(1);
    expect(fine.model.steps).toBe(30);
    expect(fine.model.tokenizer.toJSON()).toEqual(base.tokenizer.toJSON());
    expect(fine.model.summary()).toMatchObject({ ...SHAPE, vocabSize: base.tokenizer.vocabSize });
    expect(fine.model.summary().dropout).toBeCloseTo(0.1, 6); // the model's dropout (f32 in the engine)
    expect(fine.model.config).toMatchObject({ initFrom: baseFile, extendVocab: false, dropout: 0.1 });
    // the base file is untouched
    expect(tensorBytes(fs.readFileSync(baseFile))).toEqual(tensorBytes(base.toBytes()));
  });

  it('without extendVocab, symbols the model lacks map to <unk> with one warning', async () => {
    const warnings: Array<[string, TrainWarningCode]> = [];
    const r = await train({
      corpus: { text: TEXT_B_NEW },
      initFrom: baseFile,
      ...RUN,
      maxSteps: 3,
      onWarning: (m, code) => warnings.push([m, code]),
    });
    const unknown = warnings.filter(([, code]) => code === 'LSTMGEN_UNKNOWN_SYMBOLS');
    expect(unknown).toHaveLength(1);
    for (const c of NEW) expect(unknown[0][0]).toContain(JSON.stringify(c));
    expect(unknown[0][0]).toContain('extendVocab');
    expect(r.model.tokenizer.vocabSize).toBe(base.tokenizer.vocabSize);
  });

  it('extendVocab adds the new symbols after the old ids, and the fine-tuned model generates them', async () => {
    const warnings: string[] = [];
    const r = await train({
      corpus: { text: TEXT_B_NEW },
      initFrom: baseFile,
      extendVocab: true,
      ...RUN,
      maxSteps: 60,
      onWarning: (m) => warnings.push(m),
    });
    expect(warnings.filter((m) => m.includes('not in the vocabulary'))).toEqual([]);
    const tokens = r.model.tokenizer.tokens;
    expect(tokens.slice(0, base.tokenizer.vocabSize)).toEqual(base.tokenizer.tokens);
    expect([...tokens.slice(base.tokenizer.vocabSize)].sort()).toEqual([...NEW].sort());
    expect(r.model.summary().vocabSize).toBe(base.tokenizer.vocabSize + NEW.length);
    const [text] = await r.model.generate({ prompt: 'the ', maxTokens: 300, temperature: 1, seed: 3 });
    for (const c of NEW) expect(text).toContain(c);
    // the saved model loads with its grown vocabulary
    const file = path.join(dir, 'extended.lstm');
    await r.model.save(file);
    expect((await loadModel(file, { device: 'cpu' })).tokenizer.tokens).toEqual(tokens);
  });

  it('a record corpus adds the boundary token to a vocabulary without one; the model file loads', async () => {
    expect(base.tokenizer.boundaryId).toBeUndefined();
    const r = await train({
      corpus: { text: TEXT_B },
      format: 'lines',
      initFrom: baseFile,
      extendVocab: true,
      ...RUN,
      maxSteps: 2,
    });
    const id = defined(r.model.tokenizer.boundaryId);
    expect(id).toBeGreaterThanOrEqual(base.tokenizer.vocabSize); // appended after the model's ids
    const file = path.join(dir, 'records.lstm');
    await r.model.save(file);
    expect((await loadModel(file, { device: 'cpu' })).tokenizer.boundaryId).toBe(id);
  });

  it('extendVocab reads the corpus twice but gives each warning about it once', async () => {
    const codes: TrainWarningCode[] = [];
    const text = '\x01'.repeat(300) + TEXT_B; // over 1% control characters
    await train({
      corpus: { text },
      initFrom: baseFile,
      extendVocab: true,
      ...RUN,
      maxSteps: 1,
      onWarning: (_, c) => codes.push(c),
    });
    expect(codes.filter((c) => c === 'LSTMGEN_BINARY_CORPUS')).toHaveLength(1);
  });

  it('right after extension: old rows equal, new rows as a fresh model of the seed, old logits unchanged', async () => {
    const ext = extendTokenizer(base.tokenizer, NEW);
    const grown = new LstmModel(fineTuneNative(base, ext, 0, 11), ext, base.config);
    const v = base.tokenizer.vocabSize;
    const { embeddingDim: e, hiddenSize: h } = SHAPE;
    const old = tensorBytes(base.toBytes());
    const now = tensorBytes(grown.toBytes());
    const fresh = tensorBytes(
      new LstmModel(
        NativeHandle.create({ ...SHAPE, vocabSize: v + NEW.length, dropout: 0 }, 11, 'cpu'),
        ext,
        base.config,
      ).toBytes(),
    );
    const rows: Record<string, number> = { 'embedding.weight': e, 'decoder.weight': h, 'decoder.bias': 1 };
    for (const [name, bytes] of Object.entries(old)) {
      const width = rows[name];
      if (width === undefined) {
        expect(now[name].equals(bytes), name).toBe(true);
        continue;
      }
      expect(now[name].length).toBe((v + NEW.length) * width * 4);
      expect(now[name].subarray(0, v * width * 4).equals(bytes), `${name}: old rows`).toBe(true);
      expect(now[name].subarray(v * width * 4).equals(fresh[name].subarray(v * width * 4)), `${name}: new rows`).toBe(
        true,
      );
    }
    // the new embedding rows are N(0, 1) draws, the new decoder rows within U(-1/sqrt(H), 1/sqrt(H))
    const bound = 1 / Math.sqrt(h);
    for (const x of f32(now['decoder.weight'].subarray(v * h * 4))) expect(Math.abs(x)).toBeLessThan(bound);
    expect(f32(now['embedding.weight'].subarray(v * e * 4)).some((x) => Math.abs(x) > bound)).toBe(true);

    const ids = base.tokenizer.encode(TEXT_A.slice(0, 32));
    const a = await base.logits(ids, 2, 16);
    const b = await grown.logits(ids, 2, 16);
    for (let p = 0; p < 32; p++) {
      expect(Array.from(b.subarray(p * (v + NEW.length), p * (v + NEW.length) + v))).toEqual(
        Array.from(a.subarray(p * v, (p + 1) * v)),
      );
    }
  });

  it('a fine-tuning run with extendVocab resumes exactly, without the base model file', async () => {
    const copy = path.join(dir, 'base-copy.lstm');
    fs.copyFileSync(baseFile, copy);
    const ckpt = path.join(dir, 'ckpt');
    const cfg = { corpus: { text: TEXT_B_NEW.slice(0, 4_000) }, ...RUN, dropout: 0.3, maxSteps: 40 };
    const full = await train({ ...cfg, initFrom: copy, extendVocab: true, checkpointDir: ckpt, checkpointEvery: 20 });
    expect(full.history.epochs.length).toBeGreaterThanOrEqual(2); // the resumed part crosses an epoch boundary
    fs.rmSync(copy);
    const resumed = await train({ ...cfg, resumeFrom: path.join(ckpt, 'step-00000020.lstm') });
    expect(resumed.history.steps.map((s) => s.loss)).toEqual(full.history.steps.slice(20).map((s) => s.loss));
    expect(resumed.model.tokenizer.toJSON()).toEqual(full.model.tokenizer.toJSON());
    // the corpus of a resumed run is the run's: more new symbols are refused
    const other = { ...cfg, corpus: { text: `${cfg.corpus.text}¥¥` } };
    const err = await rejection(train({ ...other, resumeFrom: path.join(ckpt, 'step-00000020.lstm') }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ field: 'corpus' });
    expect(err.message).toContain('"¥"');
  });

  it('a different architecture, both initFrom and resumeFrom, or a missing file are refused before training', async () => {
    const steps: number[] = [];
    const cfg = { corpus: { text: TEXT_B }, ...RUN, maxSteps: 2, initFrom: baseFile, onStep: () => steps.push(1) };
    const hidden = await rejection(train({ ...cfg, hiddenSize: 64 }));
    expect(hidden).toBeInstanceOf(ConfigError);
    expect(hidden).toMatchObject({ field: 'hiddenSize' });
    expect(hidden.message).toMatch(/has 32, got 64/);
    expect(await rejection(train({ ...cfg, numLayers: 2 }))).toMatchObject({ field: 'numLayers' });
    expect(await rejection(train({ ...cfg, embeddingDim: 8 }))).toMatchObject({ field: 'embeddingDim' });
    const kind = await rejection(train({ ...cfg, tokenizer: 'word' }));
    expect(kind).toMatchObject({ field: 'tokenizer' });
    expect(kind.message).toContain('has "char", got "word"');
    const both = await rejection(train({ ...cfg, resumeFrom: baseFile }));
    expect(both).toBeInstanceOf(ConfigError);
    expect(both).toMatchObject({ field: 'initFrom' });
    const { initFrom, ...noInit } = cfg;
    expect(await rejection(train({ ...noInit, extendVocab: true }))).toMatchObject({ field: 'extendVocab' });
    expect(await rejection(train({ ...cfg, initFrom: path.join(dir, 'missing.lstm') }))).toBeInstanceOf(ModelFileError);
    // the model's own values may be given
    await train({ ...cfg, ...SHAPE, tokenizer: 'char' });
    // an output of the run that is the model fine-tuned from
    const out = await rejection(train(cfg, [{ path: initFrom, field: 'out', what: 'the model file' }]));
    expect(out).toMatchObject({ field: 'out' });
    expect(out.message).toContain('the model to fine-tune');
    expect(steps).toHaveLength(2); // only the run with the model's own values trained
  });

  it('a word model keeps its vocabulary size and case settings', async () => {
    const words = await train({ ...TINY, corpus: { text: TEXT_A }, tokenizer: 'word', vocabSize: 300, maxSteps: 2 });
    const file = path.join(dir, 'words.lstm');
    await words.model.save(file);
    const cfg = { corpus: { text: TEXT_B }, ...RUN, maxSteps: 2, initFrom: file };
    expect(await rejection(train({ ...cfg, vocabSize: 400 }))).toMatchObject({ field: 'vocabSize' });
    expect(await rejection(train({ ...cfg, lowercase: false }))).toMatchObject({ field: 'lowercase' });
    const r = await train({ ...cfg, extendVocab: true, onWarning: () => {} });
    const added = r.model.tokenizer.tokens.slice(words.model.tokenizer.vocabSize);
    expect(added.length).toBeGreaterThan(0);
    expect(added.every((w) => words.model.tokenizer.idOf(w) === undefined && TEXT_B.toLowerCase().includes(w))).toBe(
      true,
    );
  });
});

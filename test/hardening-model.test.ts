// Needs the native addon (npm run build:native). A model used as callers use it: concurrent calls on one
// model, a model file edited by hand, the step count across save and load, and what sampling may emit.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type LstmModel, loadModel, ModelFileError, train } from '../ts/index';
import { shakespeare, TINY, tmpDir } from './helpers';

let dir: string;
let model: LstmModel;
let modelFile: string;

beforeAll(async () => {
  dir = tmpDir();
  ({ model } = await train({ ...TINY, maxSteps: 5 }));
  modelFile = path.join(dir, 'm.lstm');
  await model.save(modelFile);
}, 120_000);

describe('concurrent calls on one model', () => {
  it('evaluate, generate and save interleaved give the numbers of calls made one at a time', async () => {
    const text = { text: shakespeare(6_000) };
    const alone = await model.evaluate(text);
    const gen = { prompt: 'ROMEO:', maxTokens: 40, temperature: 1, seed: 11 };
    const [genAlone] = await model.generate(gen);
    const file = path.join(dir, 'concurrent.lstm');
    const [a, b, [g], , c] = await Promise.all([
      model.evaluate(text),
      model.evaluate(text),
      model.generate(gen),
      model.save(file),
      model.evaluate(text),
    ]);
    for (const r of [a, b, c]) expect(r.loss).toBe(alone.loss);
    expect(g).toBe(genAlone);
    const reloaded = await loadModel(file);
    expect((await reloaded.evaluate(text)).loss).toBeCloseTo(alone.loss, 10);
  });
});

describe('model files', () => {
  it('an edit of the vocabulary in the metadata is refused on load', async () => {
    const bytes = fs.readFileSync(modelFile);
    const headerLen = Number(bytes.readBigUInt64LE(0));
    const header = bytes.subarray(8, 8 + headerLen).toString('utf8');
    const meta = JSON.parse(header).__metadata__ as Record<string, string>;
    const tok = JSON.parse(meta.tokenizer) as { tokens: string[] };
    const vocab = tok.tokens;
    // Swap two one-character tokens: same length, so every offset in the file stays valid.
    const i = vocab.indexOf('a');
    const j = vocab.indexOf('e');
    expect(i).toBeGreaterThanOrEqual(0);
    expect(j).toBeGreaterThanOrEqual(0);
    const edited = Buffer.from(bytes);
    const needle = Buffer.from(JSON.stringify(meta.tokenizer).slice(1, -1));
    const at = edited.indexOf(needle);
    expect(at).toBeGreaterThan(0);
    const swapped = JSON.parse(meta.tokenizer);
    [swapped.tokens[i], swapped.tokens[j]] = [swapped.tokens[j], swapped.tokens[i]];
    const replacement = Buffer.from(JSON.stringify(JSON.stringify(swapped)).slice(1, -1));
    expect(replacement.length).toBe(needle.length);
    replacement.copy(edited, at);
    const file = path.join(dir, 'edited.lstm');
    fs.writeFileSync(file, edited);
    await expect(loadModel(file)).rejects.toBeInstanceOf(ModelFileError);
  });

  it('the step count survives save and load', async () => {
    expect(model.steps).toBe(5);
    expect((await loadModel(modelFile)).steps).toBe(5);
  });
});

describe('sampling', () => {
  it('never samples <unk> unless asked', async () => {
    const [text] = await model.generate({ maxTokens: 4_000, temperature: 1.5, seed: 5 });
    expect(text).not.toContain('\uFFFD');
  });

  it('sample 0 of numSamples 3 equals numSamples 1 with the same seed', async () => {
    const opts = { prompt: 'KING', maxTokens: 30, temperature: 1, seed: 21 };
    const [one] = await model.generate({ ...opts, numSamples: 1 });
    const three = await model.generate({ ...opts, numSamples: 3 });
    expect(three[0]).toBe(one);
  });
});

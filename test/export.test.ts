/**
 * TF.js and ONNX exports, each loaded by its own runtime (`@tensorflow/tfjs` on its pure-JS CPU backend, reading the
 * files from disk; `onnxruntime-node` on its CPU provider) and compared with lstmgen's logits on the same ids from a
 * zero state. Tolerance: max |logit difference| <= 1e-4 (float32 sums in another order).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, NumericError } from '../ts/errors';
import { assertOnnxFits } from '../ts/export/onnx';
import { TFJS_SHARD_BYTES } from '../ts/export/tfjs';
import { exportModel } from '../ts/export/write';
import { type LstmModel, loadModel } from '../ts/model';
import { mulberry32 } from '../ts/random';
import { tokenizerFromJSON } from '../ts/tokenizer';
import { train } from '../ts/train/loop';
import { jsonLines, lstmgen } from './cli-helpers';
import { shakespeare, TINY, tmpDir } from './helpers';

/** The tolerance of every comparison: max |logit difference| between a runtime and lstmgen. */
const TOLERANCE = 1e-4;

tf.setBackend('cpu');

/** `batch` rows of `seqLen` ids in [1, vocab), seeded. */
function randomIds(vocab: number, batch: number, seqLen: number, seed: number): Uint32Array {
  const next = mulberry32(seed);
  return Uint32Array.from({ length: batch * seqLen }, () => 1 + Math.floor(next() * (vocab - 1)));
}

/** Largest |a[i] - b[i]|; fails when the lengths differ or a value is not finite. */
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    expect(Number.isFinite(a[i]) && Number.isFinite(b[i])).toBe(true);
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
  }
  return worst;
}

/** A TF.js LayersModel read from an export directory on disk: model.json, then its shards in manifest order. */
async function loadTfjs(dir: string): Promise<tf.LayersModel> {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const groups = json.weightsManifest as Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
  const data = Buffer.concat(groups.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(dir, p)))));
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: groups.flatMap((g) => g.weights),
      weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
    }),
  );
}

/** TF.js logits `[batch, seqLen, V]` of an export directory for `ids`. */
async function tfjsLogits(dir: string, ids: Uint32Array, batch: number, seqLen: number): Promise<Float32Array> {
  const model = await loadTfjs(dir);
  const input = tf.tensor2d(Int32Array.from(ids), [batch, seqLen], 'int32');
  const out = model.predict(input) as tf.Tensor;
  expect(out.shape).toEqual([batch, seqLen, model.outputs[0].shape[2]]);
  const data = (await out.data()) as Float32Array;
  tf.dispose([input, out]);
  model.dispose();
  return data;
}

/** Runs an ONNX export on `ids` (and initial states, when the graph takes them). */
async function onnxRun(
  file: string,
  ids: Uint32Array,
  batch: number,
  seqLen: number,
  state?: { h0: ort.Tensor; c0: ort.Tensor },
): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(file);
  try {
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [batch, seqLen]),
      ...state,
    };
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

/** Zero initial states `[numLayers, batch, H]` for an ONNX export. */
function zeroStates(numLayers: number, batch: number, hidden: number) {
  const zeros = () =>
    new ort.Tensor('float32', new Float32Array(numLayers * batch * hidden), [numLayers, batch, hidden]);
  return { h0: zeros(), c0: zeros() };
}

/** Largest differences measured, printed at the end for the README. */
const measured: Record<string, number> = {};

interface Case {
  name: string;
  make: () => Promise<LstmModel>;
}

const CASES: Case[] = [
  { name: 'char, 1 layer', make: async () => (await train({ ...TINY })).model },
  {
    name: 'char, 3 layers, dropout 0.2',
    make: async () => (await train({ ...TINY, numLayers: 3, hiddenSize: 24, dropout: 0.2 })).model,
  },
  {
    name: 'word, 2 layers',
    make: async () =>
      (
        await train({
          ...TINY,
          corpus: { text: shakespeare(30_000) },
          tokenizer: 'word',
          vocabSize: 300,
          numLayers: 2,
          embeddingDim: 24,
        })
      ).model,
  },
  {
    name: 'char, bf16 precision',
    make: async () => {
      const { model } = await train({ ...TINY, precision: 'bf16' });
      model.setPrecision('f32'); // the reference: f32 products, as the runtimes compute
      return model;
    },
  },
];

describe('export', () => {
  const dir = tmpDir();
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    console.log(`export: max |logit difference| per runtime and model: ${JSON.stringify(measured)}`);
  });

  describe.each(CASES)('$name', ({ name, make }) => {
    let model: LstmModel;
    const B = 3;
    const T = 20;
    let ids: Uint32Array;
    let expected: Float32Array;
    beforeAll(async () => {
      model = await make();
      ids = randomIds(model.tokenizer.vocabSize, B, T, 11);
      expected = await model.logits(ids, B, T);
    });
    afterAll(() => model.dispose());

    it('TF.js: the Layers model loads in @tensorflow/tfjs and gives the same logits', async () => {
      const out = path.join(dir, `${name}-tfjs`);
      const result = await exportModel(model, { format: 'tfjs', out });
      expect(result.files.map((f) => path.basename(f))).toEqual([
        expect.stringMatching(/^weights-[0-9a-f]{12}-shard1of1\.bin$/),
        'tokenizer.json',
        'model.json',
      ]);
      const diff = maxAbsDiff(await tfjsLogits(out, ids, B, T), expected);
      measured[`tfjs ${name}`] = diff;
      expect(diff).toBeLessThanOrEqual(TOLERANCE);
      const tokenizer = tokenizerFromJSON(fs.readFileSync(path.join(out, 'tokenizer.json'), 'utf8'));
      expect(tokenizer.toJSON()).toEqual(model.tokenizer.toJSON());
    });

    it('ONNX: onnxruntime-node gives the same logits, and final states that continue the text', async () => {
      const file = path.join(dir, `${name}.onnx`);
      await exportModel(model, { format: 'onnx', out: file });
      const { numLayers, hiddenSize: H } = model.summary();
      const full = await onnxRun(file, ids, B, T, zeroStates(numLayers, B, H));
      expect(full.logits.dims).toEqual([B, T, model.tokenizer.vocabSize]);
      expect(full.h_n.dims).toEqual([numLayers, B, H]);
      const diff = maxAbsDiff(full.logits.data as Float32Array, expected);
      measured[`onnx ${name}`] = diff;
      expect(diff).toBeLessThanOrEqual(TOLERANCE);

      // the first 12 steps, then the last 8 from their final states: the same logits as one run
      const cut = 12;
      const rows = (from: number, to: number) =>
        Uint32Array.from(
          { length: B * (to - from) },
          (_, i) => ids[Math.floor(i / (to - from)) * T + from + (i % (to - from))],
        );
      const head = await onnxRun(file, rows(0, cut), B, cut, zeroStates(numLayers, B, H));
      const tail = await onnxRun(file, rows(cut, T), B, T - cut, { h0: head.h_n, c0: head.c_n });
      const V = model.tokenizer.vocabSize;
      const tailExpected = Float32Array.from({ length: B * (T - cut) * V }, (_, i) => {
        const row = Math.floor(i / ((T - cut) * V));
        return expected[row * T * V + cut * V + (i % ((T - cut) * V))];
      });
      expect(maxAbsDiff(tail.logits.data as Float32Array, tailExpected)).toBeLessThanOrEqual(TOLERANCE);

      const session = await ort.InferenceSession.create(file);
      expect(session.inputNames).toEqual(['input_ids', 'h0', 'c0']);
      expect(session.outputNames).toEqual(['logits', 'h_n', 'c_n']);
      await session.release();
      // metadata: the tokenizer, so that a runtime's user can encode and decode
      const proto = onnx.ModelProto.decode(fs.readFileSync(file));
      const meta = Object.fromEntries(proto.metadataProps.map((p) => [p.key, p.value]));
      expect(tokenizerFromJSON(meta['lstmgen.tokenizer']).toJSON()).toEqual(model.tokenizer.toJSON());
      expect(JSON.parse(meta['lstmgen.shape'])).toEqual({
        vocabSize: V,
        embeddingDim: model.summary().embeddingDim,
        hiddenSize: H,
        numLayers,
      });
      const elemType = (v: onnx.IValueInfoProto) => v.type?.tensorType?.elemType;
      expect(proto.graph?.input?.map(elemType)).toEqual([
        onnx.TensorProto.DataType.INT64,
        onnx.TensorProto.DataType.FLOAT,
        onnx.TensorProto.DataType.FLOAT,
      ]);
      expect(proto.opsetImport).toEqual([expect.objectContaining({ domain: '', version: expect.anything() })]);
    });

    it('ONNX without state inputs: input_ids only, zero initial states', async () => {
      const file = path.join(dir, `${name}-stateless.onnx`);
      await exportModel(model, { format: 'onnx', out: file, stateInputs: false });
      const session = await ort.InferenceSession.create(file);
      expect(session.inputNames).toEqual(['input_ids']);
      await session.release();
      const { logits } = await onnxRun(file, ids, B, T);
      expect(maxAbsDiff(logits.data as Float32Array, expected)).toBeLessThanOrEqual(TOLERANCE);
    });
  });

  it('splits weights over 4 MiB shards that TF.js joins (a weight spans two shards)', async () => {
    const { model } = await train({ ...TINY, hiddenSize: 512, maxSteps: 1 });
    const out = path.join(dir, 'big-tfjs');
    const { files, bytes } = await exportModel(model, { format: 'tfjs', out });
    const shards = files.filter((f) => f.endsWith('.bin'));
    const { parameters, hiddenSize, numLayers } = model.summary();
    const weightBytes = 4 * (parameters - 4 * hiddenSize * numLayers); // TF.js has one LSTM bias, PyTorch two
    expect(shards.length).toBe(Math.ceil(weightBytes / TFJS_SHARD_BYTES));
    expect(shards.length).toBeGreaterThan(1);
    expect(fs.statSync(shards[0]).size).toBe(TFJS_SHARD_BYTES);
    expect(shards.reduce((sum, f) => sum + fs.statSync(f).size, 0)).toBe(weightBytes);
    expect(bytes).toBe(files.reduce((sum, f) => sum + fs.statSync(f).size, 0));
    const ids = randomIds(model.tokenizer.vocabSize, 2, 6, 3);
    const diff = maxAbsDiff(await tfjsLogits(out, ids, 2, 6), await model.logits(ids, 2, 6));
    measured['tfjs char, H 512 (2 shards)'] = diff;
    expect(diff).toBeLessThanOrEqual(TOLERANCE);
    model.dispose();
  });

  describe('outputs and bad input', () => {
    let modelFile: string;
    beforeAll(async () => {
      const { model } = await train({ ...TINY, maxSteps: 2 });
      modelFile = path.join(dir, 'm.lstm');
      await model.save(modelFile);
      model.dispose();
    });

    it('refuses to write over the model file, or into a directory that holds it under an export name', async () => {
      await expect(exportModel(modelFile, { format: 'onnx', out: modelFile, force: true })).rejects.toThrow(
        /same file as the model file/,
      );
      await expect(exportModel(modelFile, { format: 'tfjs', out: modelFile, force: true })).rejects.toThrow(
        ConfigError,
      );
      const holder = path.join(dir, 'holder');
      fs.mkdirSync(holder);
      fs.copyFileSync(modelFile, path.join(holder, 'model.json'));
      await expect(
        exportModel(path.join(holder, 'model.json'), { format: 'tfjs', out: holder, force: true }),
      ).rejects.toThrow(/would destroy the input/);
      expect(fs.readFileSync(modelFile).equals(fs.readFileSync(path.join(holder, 'model.json')))).toBe(true);
    });

    it('needs force for a non-empty directory or an existing file; force removes only the old shards', async () => {
      const out = path.join(dir, 'again');
      const first = await exportModel(modelFile, { format: 'tfjs', out });
      fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
      await expect(exportModel(modelFile, { format: 'tfjs', out })).rejects.toThrow(/not empty.*force/);
      // another model into the same directory: new shard names, the old shard goes, notes.txt stays
      const { model } = await train({ ...TINY, maxSteps: 3, seed: 8 });
      const second = await exportModel(model, { format: 'tfjs', out, force: true });
      model.dispose();
      const names = fs.readdirSync(out).sort();
      const shard = (r: typeof first) => path.basename(r.files[0]);
      expect(shard(first)).not.toBe(shard(second));
      expect(names).toEqual([shard(second), 'model.json', 'notes.txt', 'tokenizer.json'].sort());

      const file = path.join(dir, 'm.onnx');
      await exportModel(modelFile, { format: 'onnx', out: file });
      await expect(exportModel(modelFile, { format: 'onnx', out: file })).rejects.toThrow(/exists.*force/);
      await exportModel(modelFile, { format: 'onnx', out: file, force: true });
    });

    it('says what is wrong with the options and paths', async () => {
      await expect(exportModel(modelFile, { format: 'keras' as 'tfjs', out: 'x' })).rejects.toThrow(
        /format: must be "tfjs" or "onnx"/,
      );
      await expect(exportModel(modelFile, { format: 'onnx' } as { format: 'onnx'; out: string })).rejects.toThrow(
        ConfigError,
      );
      await expect(exportModel(modelFile, { format: 'onnx', out: dir })).rejects.toThrow(/is a directory/);
      const fifo = path.join(dir, 'fifo');
      execFileSync('mkfifo', [fifo]);
      await expect(exportModel(modelFile, { format: 'onnx', out: fifo, force: true })).rejects.toThrow(
        /not a regular file/,
      );
      expect(fs.statSync(fifo).isFIFO()).toBe(true);
      const plain = path.join(dir, 'plain.txt');
      fs.writeFileSync(plain, 'text');
      await expect(exportModel(modelFile, { format: 'tfjs', out: plain, force: true })).rejects.toThrow(/is a file/);
      await expect(
        exportModel(path.join(dir, 'missing.lstm'), { format: 'onnx', out: path.join(dir, 'n.onnx') }),
      ).rejects.toThrow(/cannot read model file/);
      await expect(exportModel('', { format: 'onnx', out: 'x.onnx' })).rejects.toThrow(ConfigError);
      expect(() => assertOnnxFits(2 ** 31 - 2 ** 20)).toThrow(/2\.00 GiB .* export it as "tfjs"/);
      expect(() => assertOnnxFits(2 ** 31 - 2 ** 21)).not.toThrow();
      expect(fs.existsSync(path.join(dir, 'n.onnx'))).toBe(false);
    });

    it('never writes non-finite weights', async () => {
      const model = await loadModel(modelFile, { device: 'cpu' });
      const bad = model.toBytes.bind(model);
      model.toBytes = () => {
        throw new NumericError('model: tensor decoder.bias holds non-finite values (NaN); refusing to write it');
      };
      const out = path.join(dir, 'nan.onnx');
      await expect(exportModel(model, { format: 'onnx', out })).rejects.toThrow(NumericError);
      expect(fs.existsSync(out)).toBe(false);
      model.toBytes = bad;
      model.dispose();
    });

    it('lstmgen export writes both formats (--json) and exits 2 for a refused output', () => {
      const out = path.join(dir, 'cli-tfjs');
      const tfjsRun = lstmgen('export', '--model', modelFile, '--format', 'tfjs', out, '--json');
      expect(tfjsRun.stderr).toBe('');
      expect(tfjsRun.code).toBe(0);
      const [result] = jsonLines(tfjsRun.stdout);
      expect(result).toMatchObject({ format: 'tfjs', files: expect.arrayContaining([path.join(out, 'model.json')]) });
      const file = path.join(dir, 'cli.onnx');
      const onnxRun = lstmgen('export', '--model', modelFile, '--format', 'onnx', '--out', file);
      expect(onnxRun.code).toBe(0);
      expect(onnxRun.stdout).toMatch(/wrote onnx export/);
      expect(fs.statSync(file).size).toBeGreaterThan(4 * 16 * 32);
      const again = lstmgen('export', '--model', modelFile, '--format', 'tfjs', out);
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(/--out: directory .* is not empty; choose another, or pass --force/);
      const forced = lstmgen('export', '--model', modelFile, '--format', 'tfjs', out, '--force');
      expect(forced.code).toBe(0);
    });
  });
});

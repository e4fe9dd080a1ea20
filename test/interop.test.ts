// Needs the native addon. PyTorch interop; scripts/reference/torch-interop.py checks the logits
// against PyTorch itself (not run here: CI has no PyTorch).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, ModelFileError } from '../ts/errors';
import { importTorch } from '../ts/interop/torch';
import type { LstmModel } from '../ts/model';
import { train } from '../ts/train/loop';
import { TINY, tensorBytes, tmpDir } from './helpers';

/** A safetensors file as PyTorch's `save_file` writes it: the given tensors (F32), metadata `{format: 'pt'}` only. */
function torchSafetensors(tensors: Record<string, { shape: number[]; data: Buffer }>): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, Buffer.from(json), ...Object.values(tensors).map((t) => t.data)]);
}

/** The tensors of an lstmgen model with their shapes, in reverse name order (an order lstmgen does not write). */
function tensorsOf(model: LstmModel): Record<string, { shape: number[]; data: Buffer }> {
  const bytes = model.native.toSafetensors({});
  const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString()) as Record<
    string,
    { shape: number[] }
  >;
  const data = tensorBytes(bytes);
  return Object.fromEntries(
    Object.keys(data)
      .sort()
      .reverse()
      .map((name) => [name, { shape: header[name].shape, data: Buffer.from(data[name]) }]),
  );
}

describe('PyTorch interop', () => {
  let model: LstmModel;
  let dir: string;
  let modelFile: string;
  let torchFile: string;

  beforeAll(async () => {
    ({ model } = await train({ ...TINY, numLayers: 2, maxSteps: 10 }));
    dir = tmpDir();
    modelFile = path.join(dir, 'model.lstm');
    await model.save(modelFile);
    torchFile = path.join(dir, 'torch.safetensors');
    fs.writeFileSync(torchFile, torchSafetensors(tensorsOf(model)));
  }, 120_000);

  it('a model file is a PyTorch state dict of embedding, nn.LSTM and decoder', () => {
    const names = Object.keys(tensorBytes(fs.readFileSync(modelFile))).sort();
    const lstm = [0, 1].flatMap((k) => ['bias_hh', 'bias_ih', 'weight_hh', 'weight_ih'].map((w) => `lstm.${w}_l${k}`));
    expect(names).toEqual(['decoder.bias', 'decoder.weight', 'embedding.weight', ...lstm].sort());
    const shapes = tensorsOf(model);
    expect(shapes['lstm.weight_ih_l0'].shape).toEqual([4 * 32, 16]);
    expect(shapes['lstm.weight_ih_l1'].shape).toEqual([4 * 32, 32]);
    expect(shapes['decoder.weight'].shape).toEqual([model.tokenizer.vocabSize, 32]);
  });

  it('importTorch() loads a PyTorch-written state dict: identical logits and samples', async () => {
    const ids = model.tokenizer.encode(TINY.corpus.text.slice(0, 64));
    const expected = await model.logits(ids, 2, 32);
    for (const tokenizer of [modelFile, model.tokenizer, model.tokenizer.toJSON()]) {
      const imported = await importTorch(torchFile, { tokenizer, device: 'cpu' });
      const got = await imported.logits(ids, 2, 32);
      expect(
        Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(
          Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength),
        ),
      ).toBe(true);
      expect(imported.native.config()).toEqual(model.native.config());
      expect(imported.config).toMatchObject({ embeddingDim: 16, hiddenSize: 32, numLayers: 2, tokenizer: 'char' });
    }
    const jsonFile = path.join(dir, 'tokenizer.json');
    fs.writeFileSync(jsonFile, JSON.stringify(model.tokenizer.toJSON()));
    const imported = await importTorch(torchFile, { tokenizer: jsonFile, device: 'cpu' });
    const opts = { prompt: 'ROMEO:', maxTokens: 30, seed: 2 };
    expect(await imported.generate(opts)).toEqual(await model.generate(opts));
  });

  it('importTorch() reads nn.LSTM(proj_size=P): weight_hr_l{k}, identical logits', async () => {
    const { model: projected } = await train({ ...TINY, numLayers: 2, projSize: 8, maxSteps: 5 });
    const file = path.join(dir, 'projected.safetensors');
    fs.writeFileSync(file, torchSafetensors(tensorsOf(projected)));
    const imported = await importTorch(file, { tokenizer: projected.tokenizer, device: 'cpu' });
    expect(imported.native.config()).toMatchObject({ hiddenSize: 32, projSize: 8, numLayers: 2 });
    const ids = projected.tokenizer.encode(TINY.corpus.text.slice(0, 64));
    const [got, want] = [await imported.logits(ids, 2, 32), await projected.logits(ids, 2, 32)];
    expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength)).toEqual(
      Buffer.from(want.buffer, want.byteOffset, want.byteLength),
    );
  });

  it('rejects a vocabulary of another size, missing or mis-shaped tensors, unusable tokenizer files', async () => {
    const small = { type: 'char' as const, tokens: ['<unk>', 'a', 'b'] };
    await expect(importTorch(torchFile, { tokenizer: small })).rejects.toThrow(ConfigError);
    const tensors = tensorsOf(model);
    delete tensors['decoder.bias'];
    const missing = path.join(dir, 'missing.safetensors');
    fs.writeFileSync(missing, torchSafetensors(tensors));
    await expect(importTorch(missing, { tokenizer: modelFile })).rejects.toThrow(ModelFileError);
    const t2 = tensorsOf(model);
    t2['lstm.weight_hh_l1'] = { shape: [64, 64], data: t2['lstm.weight_hh_l1'].data };
    const misshaped = path.join(dir, 'misshaped.safetensors');
    fs.writeFileSync(misshaped, torchSafetensors(t2));
    await expect(importTorch(misshaped, { tokenizer: modelFile })).rejects.toThrow(ModelFileError);
    await expect(importTorch(torchFile, { tokenizer: torchFile })).rejects.toThrow(/no tokenizer metadata/);
    await expect(importTorch(path.join(dir, 'nope.safetensors'), { tokenizer: modelFile })).rejects.toThrow(
      /no such file/,
    );
  });
});

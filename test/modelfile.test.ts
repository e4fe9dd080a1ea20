// Needs the native addon (npm run build:native).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelFileError } from '../ts/errors';
import { LstmModel, loadModel } from '../ts/model';
import { train } from '../ts/train/loop';
import { TINY, tmpDir } from './helpers';

/** A well-formed safetensors file (one F32 tensor) with only foreign metadata. */
function foreignSafetensors(): Buffer {
  const header = JSON.stringify({
    __metadata__: { format: 'pt' },
    weight: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
  });
  const padded = header + ' '.repeat((8 - (header.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(padded.length));
  return Buffer.concat([len, Buffer.from(padded), Buffer.from(new Float32Array([1, 2, 3, 4]).buffer)]);
}

/** A safetensors header: tensors by name, and the metadata under `__metadata__`. */
type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> & {
  __metadata__: Record<string, string>;
};

/**
 * lstmgen.crc32 of format version 2 (crates/lstmgen-core/src/io.rs): CRC-32 over every metadata entry but the
 * checksum (key order), then every tensor (name order: name, dtype, rank, dims, data), strings and data
 * prefixed with their u64 LE byte length.
 */
function contentCrc(header: Header, body: Buffer): string {
  let c = 0;
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    return b;
  };
  const put = (b: Buffer) => {
    c = zlib.crc32(b, zlib.crc32(u64(b.length), c));
  };
  const meta = header.__metadata__;
  for (const k of Object.keys(meta)
    .filter((k) => k !== 'lstmgen.crc32')
    .sort()) {
    put(Buffer.from(k));
    put(Buffer.from(meta[k]));
  }
  for (const name of Object.keys(header)
    .filter((k) => k !== '__metadata__')
    .sort()) {
    const t = header[name];
    put(Buffer.from(name));
    put(Buffer.from(t.dtype));
    c = zlib.crc32(u64(t.shape.length), c);
    for (const d of t.shape) c = zlib.crc32(u64(d), c);
    put(body.subarray(t.data_offsets[0], t.data_offsets[1]));
  }
  return c.toString(16).padStart(8, '0');
}

/** `bytes` (an lstmgen file) with element 0 of `tensor` set to `value` and a checksum that matches. */
function withValue(bytes: Buffer, tensor: string, value: number): Buffer {
  const b = Buffer.from(bytes);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Header;
  const base = 8 + n;
  b.writeFloatLE(value, base + header[tensor].data_offsets[0]);
  const old = header.__metadata__['lstmgen.crc32'];
  const text = b
    .subarray(8, 8 + n)
    .toString('utf8')
    .replace(`"${old}"`, `"${contentCrc(header, b.subarray(base))}"`);
  b.write(text, 8, 'utf8');
  return b;
}

describe('model file', () => {
  let model: LstmModel;
  let dir: string;
  let file: string;

  beforeAll(async () => {
    ({ model } = await train({ ...TINY, numLayers: 2, maxSteps: 20 }));
    dir = tmpDir();
    file = path.join(dir, 'm.lstm');
    await model.save(file);
  }, 120_000);

  it('round-trips: identical logits, generated text, tokenizer and config', async () => {
    const loaded = await loadModel(file, { device: 'cpu' });
    const ids = model.tokenizer.encode('First Citizen:\nBefore we proceed');
    const B = 2;
    const T = Math.floor(ids.length / B);
    const input = ids.subarray(0, B * T);
    const [x, y] = [await model.logits(input, B, T), await loaded.logits(input, B, T)];
    expect(x.length).toBe(B * T * model.tokenizer.vocabSize);
    expect(
      Buffer.from(y.buffer, y.byteOffset, y.byteLength).equals(Buffer.from(x.buffer, x.byteOffset, x.byteLength)),
    ).toBe(true);
    const opts = { prompt: 'ROMEO:', maxTokens: 60, temperature: 0.8, seed: 11, numSamples: 2 };
    expect(await loaded.generate(opts)).toEqual(await model.generate(opts));
    expect(loaded.tokenizer.tokens).toEqual(model.tokenizer.tokens);
    expect(loaded.config).toEqual(model.config);
    expect(loaded.native.config()).toEqual(model.native.config());
    expect((await loaded.evaluate({ text: TINY.corpus.text.slice(0, 3000) })).loss).toBe(
      (await model.evaluate({ text: TINY.corpus.text.slice(0, 3000) })).loss,
    );
  });

  it('writes atomically: no temporary file is left, an existing file is replaced whole', async () => {
    await model.save(file); // overwrite
    expect(fs.readdirSync(dir)).toEqual(['m.lstm']);
    await expect(loadModel(file)).resolves.toBeInstanceOf(LstmModel);
  });

  it('fails with ModelFileError when the target directory does not exist, leaving nothing', async () => {
    const target = path.join(dir, 'missing-dir', 'm.lstm');
    await expect(model.save(target)).rejects.toThrow(ModelFileError);
    expect(fs.readdirSync(dir)).toEqual(['m.lstm']);
    // the message names the target and its missing directory, never the temporary file
    const err = (await model.save(target).catch((e: unknown) => e)) as ModelFileError;
    expect(err.message).toBe(
      `cannot write model file ${JSON.stringify(target)}: ` +
        `directory ${JSON.stringify(path.dirname(target))} does not exist`,
    );
    expect(err.message).not.toMatch(/\.tmp-/);
    const asDir = (await model.save(dir).catch((e: unknown) => e)) as ModelFileError;
    expect(asDir).toBeInstanceOf(ModelFileError);
    expect(asDir.message).toContain(JSON.stringify(dir));
    expect(asDir.message).not.toMatch(/\.tmp-/);
  });

  it('rejects missing, truncated, corrupt and foreign files with ModelFileError; the process lives', async () => {
    const bytes = fs.readFileSync(file);
    const cases: Record<string, Buffer | null> = {
      missing: null,
      empty: Buffer.alloc(0),
      truncated: bytes.subarray(0, Math.floor(bytes.length / 2)),
      'header only': bytes.subarray(0, 8 + Number(bytes.readBigUInt64LE(0))),
      'random bytes': Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) & 0xff)),
      'foreign safetensors': foreignSafetensors(),
      'no lstmgen metadata': model.native.toSafetensors({}),
      'flipped weight byte': (() => {
        const b = Buffer.from(bytes);
        b[b.length - 5] ^= 0x40;
        return b;
      })(),
    };
    for (const [name, content] of Object.entries(cases)) {
      const f = path.join(dir, `${name.replace(/ /g, '-')}.lstm`);
      if (content) fs.writeFileSync(f, content);
      const err = await loadModel(f).then(
        () => new Error(`${name}: loaded without error`),
        (e: unknown) => e,
      );
      expect(err, name).toBeInstanceOf(ModelFileError);
    }
    expect((await model.generate({ prompt: 'a', maxTokens: 3, seed: 1 })).length).toBe(1);
  });

  it('refuses a weight that is NaN or infinite even under a valid checksum, naming the tensor', async () => {
    const bytes = fs.readFileSync(file);
    const intact = path.join(dir, 'intact.lstm');
    fs.writeFileSync(intact, withValue(bytes, 'decoder.weight', 0.25));
    await expect(loadModel(intact)).resolves.toBeInstanceOf(LstmModel); // the rewrite itself is sound
    for (const value of [NaN, Infinity]) {
      const f = path.join(dir, `bad-${value}.lstm`);
      fs.writeFileSync(f, withValue(bytes, 'decoder.weight', value));
      const err = (await loadModel(f).catch((e: unknown) => e)) as ModelFileError;
      expect(err).toBeInstanceOf(ModelFileError);
      expect(err.message).toMatch(/tensor decoder\.weight holds a non-finite value/);
    }
  });
});

// Needs the native addon. A model whose weights are finite but so large that its outputs overflow (NaN or
// infinite logits) is refused by every way of sampling with a NumericError that says what to do; it never
// yields blank or arbitrary text.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { NumericError } from '../ts/errors';
import { importTorch } from '../ts/interop/torch';
import type { LstmModel } from '../ts/model';
import { train } from '../ts/train/loop';
import { TINY, tmpDir } from './helpers';

/** A PyTorch state dict (safetensors, no lstmgen metadata) of `bytes`' tensors with every value times `factor`. */
function scaledStateDict(bytes: Buffer, factor: number): Buffer {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  delete header.__metadata__;
  const body = Buffer.from(bytes.subarray(8 + n));
  for (const t of Object.values(header)) {
    expect(t.dtype).toBe('F32');
    for (let o = t.data_offsets[0]; o < t.data_offsets[1]; o += 4) body.writeFloatLE(body.readFloatLE(o) * factor, o);
  }
  const text = JSON.stringify(header);
  const padded = text + ' '.repeat((8 - (text.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(padded.length));
  return Buffer.concat([len, Buffer.from(padded), body]);
}

const NOT_FINITE =
  /outputs \(its next-token logits\) are not finite.*retrain it with a lower learning rate \(lr\) and gradient clipping \(clipNorm\)/;

/** The error `run` rejects with, checked to be the NumericError of non-finite outputs. */
async function refused(run: () => Promise<unknown>): Promise<void> {
  const err = await run().then(
    (v) => new Error(`resolved with ${JSON.stringify(v)}`),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(NumericError);
  expect((err as Error).message).toMatch(NOT_FINITE);
}

describe('a model whose outputs overflow', () => {
  let blown: LstmModel;

  beforeAll(async () => {
    const { model } = await train({ ...TINY, maxSteps: 4 });
    const file = path.join(tmpDir(), 'blown.safetensors');
    // finite weights (about 1e29): the products of weights and inputs overflow f32
    fs.writeFileSync(file, scaledStateDict(model.toBytes(), 1e30));
    blown = await importTorch(file, { tokenizer: model.tokenizer, device: 'cpu' });
    model.dispose();
  }, 120_000);

  it('generate, greedy or sampled, with filters or several samples: a NumericError', async () => {
    for (const options of [
      { temperature: 0 },
      { temperature: 0.8, seed: 1 },
      { temperature: 1, topK: 5, topP: 0.9, seed: 2 },
      { numSamples: 3, seed: 3 },
    ]) {
      await refused(() => blown.generate({ prompt: 'The ', maxTokens: 5, ...options }));
    }
  });

  it('stream: a NumericError before any text', async () => {
    const pieces: string[] = [];
    await refused(async () => {
      for await (const piece of blown.stream({ prompt: 'The ', maxTokens: 5 })) pieces.push(piece);
    });
    expect(pieces).toEqual([]);
  });

  it("sessions: sample and the next tokens' probabilities are a NumericError", async () => {
    const s = blown.session({ seed: 1 });
    await s.feed('The ');
    await refused(() => s.sample({ maxTokens: 3 }));
    await refused(() => s.next({ topN: 3 }));
    s.dispose();
  });
});

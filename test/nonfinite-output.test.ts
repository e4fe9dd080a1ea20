// Needs the native addon. A model whose weights are finite but so large that its outputs overflow (NaN or
// infinite logits) is refused by every way of sampling with a NumericError that says what to do; it never
// yields blank or arbitrary text.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { NumericError } from '../ts/errors';
import { importTorch } from '../ts/interop/torch';
import type { LstmModel } from '../ts/model';
import { type Server, serve } from '../ts/serve/server';
import { train } from '../ts/train/loop';
import { TINY, tmpDir } from './helpers';

/**
 * A PyTorch state dict (safetensors, no lstmgen metadata) of `bytes`' tensors, each value replaced by
 * `edit(name, row, value)` (`row`: the index along the tensor's first dimension).
 */
function editedStateDict(bytes: Buffer, edit: (name: string, row: number, value: number) => number): Buffer {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  delete header.__metadata__;
  const body = Buffer.from(bytes.subarray(8 + n));
  for (const [name, t] of Object.entries(header)) {
    expect(t.dtype).toBe('F32');
    const rowBytes = 4 * t.shape.slice(1).reduce((a, b) => a * b, 1);
    for (let o = t.data_offsets[0]; o < t.data_offsets[1]; o += 4) {
      const row = Math.floor((o - t.data_offsets[0]) / rowBytes);
      body.writeFloatLE(edit(name, row, body.readFloatLE(o)), o);
    }
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
    fs.writeFileSync(
      file,
      editedStateDict(model.toBytes(), (_name, _row, v) => v * 1e30),
    );
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

/**
 * A one-layer model with finite weights whose next-token logits are all 0 (so it samples uniformly) until it
 * samples `trigger`, and all -inf from then on: the trigger's embedding drives every gate open and the cell to
 * about 1 (every other embedding is 0, so without it the state stays 0), and decoder weights of -3e38 overflow
 * on that hidden state.
 */
async function overflowingAfter(trigger: string): Promise<LstmModel> {
  const { model } = await train({ ...TINY, maxSteps: 1 });
  const [x] = model.tokenizer.encode(trigger);
  const edit = (name: string, row: number): number => {
    if (name === 'embedding.weight') return row === x ? 10 : 0;
    if (name.startsWith('lstm.weight_ih')) return 1;
    if (name === 'decoder.weight') return -3e38;
    return 0; // weight_hh, the biases
  };
  const file = path.join(tmpDir(), 'overflowing.safetensors');
  fs.writeFileSync(file, editedStateDict(model.toBytes(), edit));
  const crafted = await importTorch(file, { tokenizer: model.tokenizer, device: 'cpu' });
  model.dispose();
  return crafted;
}

/** The parts of a completions answer (or its error) the test reads. */
interface Answer {
  choices: Array<{ text: string; finish_reason: string }>;
  error: { message: string };
}

describe('a model whose outputs overflow only after some tokens were sampled', () => {
  let model: LstmModel;
  // 'e' samples with probability 1/vocabSize per token (its rivals tie, so a top-k filter would keep the lowest
  // ids only), so 2000 tokens reach it but for a chance of about 1e-15
  const long = { prompt: 'ab', maxTokens: 2000 };

  beforeAll(async () => {
    model = await overflowingAfter('e');
  }, 120_000);

  it('generate and stream: a NumericError once the logits overflow, after the first text', async () => {
    for (const options of [{ seed: 1 }, { seed: 2, temperature: 0.7 }, { seed: 3, numSamples: 2 }]) {
      await refused(() => model.generate({ ...long, ...options }));
    }
    const pieces: string[] = [];
    await refused(async () => {
      for await (const piece of model.stream({ ...long, seed: 5 })) pieces.push(piece);
    });
    expect(pieces.join('')).toMatch(/^[^e]*e?$/);
    expect(pieces.join('').length).toBeGreaterThan(0);
    // without the trigger the same model generates to the end
    const [text] = await model.generate({ ...long, seed: 1, bannedTokens: ['e'] });
    expect(text).not.toContain('e');
    expect(text.length).toBe(2000);
  });

  it('sessions: sampling fails at the step whose logits overflow', async () => {
    const s = model.session({ seed: 1 });
    await s.feed('ab');
    await refused(() => s.sample({ maxTokens: 2000 }));
    s.dispose();
  });

  it("serve: the request whose sequence diverges fails alone (500, the engine's message); the others in the same ticks and the server go on", async () => {
    const file = path.join(tmpDir(), 'overflowing.lstm');
    await model.save(file);
    const server: Server = await serve({ model: file, port: 0, device: 'cpu', maxTokens: 100_000 });
    try {
      const post = (body: object) =>
        fetch(`${server.url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as Answer }));
      const before = { ...server.scheduler.stats };
      const safe = { prompt: 'ab', max_tokens: 2000, seed: 1, banned_tokens: ['e'] };
      const [ok, diverged, ok2, streamed] = await Promise.all([
        post(safe),
        post({ prompt: 'ab', max_tokens: 2000, seed: 2 }),
        post({ ...safe, n: 2, seed: 3 }),
        fetch(`${server.url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ prompt: 'ab', max_tokens: 2000, seed: 4, stream: true }),
        }).then((r) => r.text()),
      ]);
      expect(diverged.status).toBe(500);
      expect(diverged.body.error.message).toMatch(NOT_FINITE);
      expect(streamed).toMatch(/"error":\{[^}]*not finite/);
      expect(streamed.trimEnd().endsWith('data: [DONE]')).toBe(true);
      for (const r of [ok, ok2]) {
        expect(r.status).toBe(200);
        for (const c of r.body.choices) {
          expect(c.text).toHaveLength(2000);
          expect(c.finish_reason).toBe('length');
        }
      }
      // the rows were stepped together (more row-steps than steps), and the server still answers
      const stats = server.scheduler.stats;
      expect(stats.rowSteps - before.rowSteps).toBeGreaterThan(stats.steps - before.steps);
      expect((await post({ ...safe, max_tokens: 5 })).status).toBe(200);
      expect(server.scheduler.rows).toBe(0);
    } finally {
      await server.close();
    }
  });
});

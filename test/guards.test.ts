// Needs the native addon. Guards against non-finite losses, gradients and weights. lr = 1e39 overflows float32: the
// engine refuses
// the first update (it would make the weights non-finite) and leaves the parameters as they were.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NumericError } from '../ts/errors';
import { assertFiniteTensors } from '../ts/io/safetensors';
import { NativeHandle } from '../ts/native/handle';
import { train } from '../ts/train/loop';
import { readRunLog } from '../ts/train/runlog';
import { TINY, tensorBytes, tmpDir } from './helpers';

const HUGE = { ...TINY, lr: 1e39 };

describe('non-finite guard', () => {
  it("onNonFinite 'stop' (default) throws a NumericError naming the step", async () => {
    const err = await train(HUGE).then(
      () => new Error('resolved'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NumericError);
    expect((err as NumericError).step).toBe(1);
    expect((err as Error).message).toMatch(
      /^step 1 \(epoch 1\): .*non-finite.*; parameters were not updated; lower lr/,
    );
  });

  it("onNonFinite 'skip' skips the steps, leaves the weights as they were, and logs them", async () => {
    const dir = tmpDir();
    const log = path.join(dir, 'run.jsonl');
    const { model, history } = await train({ ...HUGE, onNonFinite: 'skip', logFile: log });
    expect(history.skippedSteps).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(history.steps).toEqual([]);
    const skips = readRunLog(log).filter((r) => r.type === 'skip');
    expect(skips.map((r) => r.step)).toEqual(history.skippedSteps);
    // skipped steps changed nothing: the weights are the initial ones (a run of one skipped step)
    const one = await train({ ...HUGE, maxSteps: 1, onNonFinite: 'skip' });
    expect(tensorBytes(model.native.toSafetensors({}))).toEqual(tensorBytes(one.model.native.toSafetensors({})));
  });

  it('never writes or loads non-finite weights: loading and saving refuse them, checkpoints stay finite', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'model.lstm');
    const good = await train({ ...TINY, maxSteps: 3 });
    await good.model.save(file);
    const before = fs.readFileSync(file);

    // Neither training nor loading can produce non-finite weights, so craft the bytes: a NaN in the
    // decoder bias. Loading refuses them; the check save() runs on the bytes it is about to write refuses them.
    const bytes = Buffer.from(good.model.native.toSafetensors({}));
    tensorBytes(bytes)['decoder.bias'].writeFloatLE(NaN, 0);
    expect(() => NativeHandle.fromTorchStateDict(bytes, 'cpu')).toThrow(
      /tensor decoder\.bias holds a non-finite value/,
    );
    const err = (() => {
      try {
        assertFiniteTensors(bytes, 'model');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(NumericError);
    expect((err as Error).message).toMatch(/non-finite values .*refusing to write/);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(fs.readdirSync(dir)).toEqual(['model.lstm']); // no temporary file left

    const ckptDir = path.join(dir, 'ckpt');
    await train({ ...HUGE, maxSteps: 10, onNonFinite: 'skip', checkpointDir: ckptDir, checkpointEvery: 5 });
    for (const f of fs.readdirSync(ckptDir)) {
      for (const data of Object.values(tensorBytes(fs.readFileSync(path.join(ckptDir, f))))) {
        expect(
          new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length)).every(Number.isFinite),
        ).toBe(true);
      }
    }
  });
});

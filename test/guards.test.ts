// Needs the native addon. Non-finite guards (issue 5, point 3). lr = 1e39 overflows float32: the first update
// makes the weights non-finite, and the loss of step 2 is NaN.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { train } from '../ts/train';
import { NumericError } from '../ts/errors';
import { readRunLog } from '../ts/runlog';
import { tensorBytes, TINY, tmpDir } from './helpers';

const HUGE = { ...TINY, lr: 1e39 };

describe('non-finite guard', () => {
  it("onNonFinite 'stop' (default) throws a NumericError naming the step", async () => {
    const err = await train(HUGE).then(() => new Error('resolved'), (e: unknown) => e);
    expect(err).toBeInstanceOf(NumericError);
    expect((err as NumericError).step).toBe(2);
    expect((err as Error).message).toMatch(/^step 2 \(epoch 1\): loss is NaN; parameters were not updated; lower lr/);
  });

  it("onNonFinite 'skip' skips the steps, leaves the weights as they were, and logs them", async () => {
    const dir = tmpDir();
    const log = path.join(dir, 'run.jsonl');
    const { model, history } = await train({ ...HUGE, onNonFinite: 'skip', logFile: log });
    expect(history.skippedSteps).toEqual(Array.from({ length: 11 }, (_, i) => i + 2));
    expect(history.steps.map((s) => s.step)).toEqual([1]);
    const skips = readRunLog(log).filter((r) => r.type === 'skip');
    expect(skips.map((r) => r.step)).toEqual(history.skippedSteps);
    // skipped steps changed nothing: the weights are those after step 1
    const one = await train({ ...HUGE, maxSteps: 1 });
    expect(tensorBytes(model.native.toSafetensors({}))).toEqual(tensorBytes(one.model.native.toSafetensors({})));
  });

  it('never writes non-finite weights: save() and checkpoints refuse, the previous file stays intact', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'model.lstm');
    const good = await train({ ...TINY, maxSteps: 3 });
    await good.model.save(file);
    const before = fs.readFileSync(file);

    const broken = await train({ ...HUGE, maxSteps: 4, onNonFinite: 'skip' });
    const err = await broken.model.save(file).then(() => new Error('saved'), (e: unknown) => e);
    expect(err).toBeInstanceOf(NumericError);
    expect((err as Error).message).toMatch(/non-finite values .*refusing to write/);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(fs.readdirSync(dir)).toEqual(['model.lstm']); // no temporary file left

    const ckptDir = path.join(dir, 'ckpt');
    await expect(train({ ...HUGE, maxSteps: 10, onNonFinite: 'skip', checkpointDir: ckptDir, checkpointEvery: 5 })).rejects.toThrow(NumericError);
    expect(fs.existsSync(ckptDir) ? fs.readdirSync(ckptDir) : []).toEqual([]);
  });
});

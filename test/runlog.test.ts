// Metrics log and plots. The train() test needs the native addon.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataError } from '../ts/errors';
import { train } from '../ts/train/loop';
import { plotRun } from '../ts/train/plot';
import { type RunRecord, readRunLog } from '../ts/train/runlog';
import { TINY, tmpDir } from './helpers';

describe('metrics log', () => {
  it('has start, one record per step (step, epoch, loss, lr, tokens/s, gradNorm), evals, epochs, end', async () => {
    const file = path.join(tmpDir(), 'run.jsonl');
    const { history } = await train({
      ...TINY,
      evalEvery: 5,
      logFile: file,
      lrSchedule: { type: 'step', stepSize: 4, gamma: 0.5 },
    });
    const records = readRunLog(file);
    expect(records[0].type).toBe('start');
    expect(records.at(-1)).toMatchObject({ type: 'end', step: 12, aborted: false, stoppedEarly: false, bestStep: 10 });
    const steps = records.filter((r): r is Extract<RunRecord, { type: 'step' }> => r.type === 'step');
    expect(steps).toHaveLength(12);
    expect(Object.keys(steps[0]).sort()).toEqual(['epoch', 'gradNorm', 'loss', 'lr', 'step', 'tokensPerSec', 'type']);
    expect(steps.map((s) => s.loss)).toEqual(history.steps.map((s) => s.loss));
    expect(steps.map((s) => s.lr)).toEqual([...Array(4).fill(0.01), ...Array(4).fill(0.005), ...Array(4).fill(0.0025)]);
    expect(steps.every((s) => s.tokensPerSec > 0 && s.gradNorm > 0)).toBe(true);
    expect(records.filter((r) => r.type === 'eval').map((r) => r.step)).toEqual([5, 10]);
    expect(records.filter((r) => r.type === 'epoch')).toEqual([{ type: 'epoch', step: 12, ...history.epochs[0] }]);
  });

  it('reading: a torn last line is dropped; other bad lines and missing files are DataErrors', () => {
    const dir = tmpDir();
    const ok = path.join(dir, 'torn.jsonl');
    fs.writeFileSync(
      ok,
      '{"type":"step","step":1,"epoch":1,"loss":2,"lr":0.1,"tokensPerSec":1,"gradNorm":1}\n\n{"type":"st',
    );
    expect(readRunLog(ok)).toHaveLength(1);
    const bad = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(bad, 'nope\n{"type":"end"}\n');
    expect(() => readRunLog(bad)).toThrow(/bad.jsonl:1: not a JSON line/);
    fs.writeFileSync(bad, '[1]\n');
    expect(() => readRunLog(bad)).toThrow(DataError);
    fs.writeFileSync(bad, '{"type":"step","step":"a","loss":"NaN"}\n{"type":"end"}\n');
    expect(() => readRunLog(bad)).toThrow(
      /bad.jsonl:1: a step record needs an integer "step" and a finite "loss", got "a" and "NaN"/,
    );
    expect(() => readRunLog(path.join(dir, 'missing.jsonl'))).toThrow(/no such file/);
  });
});

describe('plotRun', () => {
  const records: RunRecord[] = [];
  for (let step = 1; step <= 300; step++) {
    records.push({
      type: 'step',
      step,
      epoch: 1,
      loss: 4 / Math.sqrt(step),
      lr: step < 100 ? 0.01 : 0.005,
      tokensPerSec: 1000,
      gradNorm: 1,
    });
    if (step % 50 === 0)
      records.push({
        type: 'eval',
        step,
        epoch: 1,
        valLoss: 4.2 / Math.sqrt(step),
        valPerplexity: 1,
        valAccuracy: 0.5,
      });
  }

  it('draws training and validation loss and the learning rate as SVG (headless vega)', async () => {
    const svg = await plotRun(records, { title: 'tiny run' });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    for (const text of ['tiny run', 'train loss', 'validation loss', 'learning rate', 'loss (nats/token)', 'step'])
      expect(svg).toContain(`>${text}<`);
    // three lines: train loss, validation loss, learning rate
    expect(svg.match(/aria-roledescription="line mark"/g)).toHaveLength(3);
  });

  it('reads a log file; a resumed step logged twice counts once; no steps is a DataError', async () => {
    const file = path.join(tmpDir(), 'run.jsonl');
    fs.writeFileSync(file, `${[...records, ...records.slice(0, 20)].map((r) => JSON.stringify(r)).join('\n')}\n`);
    const a = await plotRun(file);
    const b = await plotRun(records, { title: 'run.jsonl' });
    expect(a).toBe(b);
    await expect(
      plotRun([
        { type: 'end', time: '', step: 0, aborted: false, stoppedEarly: false, bestValLoss: null, bestStep: null },
      ]),
    ).rejects.toThrow(DataError);
  });
});

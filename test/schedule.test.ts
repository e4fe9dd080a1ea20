// LR schedules and early stopping. The train() tests need the native addon.
import { describe, expect, it } from 'vitest';
import { type LrScheduleConfig, parseTrainConfig } from '../ts/config';
import { splitText } from '../ts/data';
import { ConfigError } from '../ts/errors';
import { train } from '../ts/train/loop';
import { PlateauTracker } from '../ts/train/plateau';
import { LrSchedule } from '../ts/train/schedule';
import { defined, last, shakespeare, TINY } from './helpers';

/** A validated schedule config. */
const sched = (s: object) => parseTrainConfig({ corpus: 'x', lr: 1, lrSchedule: s as LrScheduleConfig }).lrSchedule;

describe('LrSchedule', () => {
  it('constant and step decay', () => {
    const c = new LrSchedule(sched({ type: 'constant' }), 0.1, 100);
    expect([0, 50, 99].map((s) => c.lrAt(s))).toEqual([0.1, 0.1, 0.1]);
    const s = new LrSchedule(sched({ type: 'step', stepSize: 10, gamma: 0.5 }), 0.1, 100);
    expect([0, 9, 10, 19, 20, 35].map((k) => s.lrAt(k))).toEqual([0.1, 0.1, 0.05, 0.05, 0.025, 0.0125]);
  });

  it('cosine with warmup: linear ramp, then a half cosine down to minLr at totalSteps', () => {
    const s = new LrSchedule(sched({ type: 'cosine', warmupSteps: 4, minLr: 0.01 }), 0.1, 104);
    for (const [k, lr] of [0.025, 0.05, 0.075, 0.1].entries()) expect(s.lrAt(k)).toBeCloseTo(lr, 12);
    expect(s.lrAt(4)).toBeCloseTo(0.1, 12);
    expect(s.lrAt(54)).toBeCloseTo(0.01 + 0.09 * 0.5, 12); // half way
    expect(s.lrAt(104)).toBeCloseTo(0.01, 12);
    expect(s.lrAt(500)).toBeCloseTo(0.01, 12); // stays at minLr
    const explicit = new LrSchedule(sched({ type: 'cosine', totalSteps: 10 }), 1, 1000);
    expect(explicit.lrAt(5)).toBeCloseTo(0.5, 12);
  });

  it('reduce on plateau: after `patience` validations without an improvement > minDelta; state round-trips', () => {
    const s = new LrSchedule(
      sched({ type: 'plateau', factor: 0.5, patience: 2, minDelta: 0.01, minLr: 0.02 }),
      0.1,
      100,
    );
    const lrs: number[] = [];
    for (const v of [3, 2.5, 2.495, 2.6, 2.4, 2.45, 2.41, 2.5, 2.5, 2.5, 2.5]) {
      s.onValidation(v);
      lrs.push(s.lrAt(0));
    }
    // reductions at the 4th, 7th, 9th and 11th validation; floor at minLr
    for (const [i, lr] of [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02, 0.02].entries()) {
      expect(lrs[i], `validation ${i + 1}`).toBeCloseTo(lr, 12);
    }
    const copy = new LrSchedule(
      sched({ type: 'plateau', factor: 0.5, patience: 2, minDelta: 0.01, minLr: 0 }),
      0.1,
      100,
      s.toJSON(),
    );
    expect(copy.lrAt(0)).toBeCloseTo(0.1 * 0.5 ** 4, 12);
    const otherType = new LrSchedule(sched({ type: 'constant' }), 0.1, 100, s.toJSON());
    expect(otherType.lrAt(0)).toBe(0.1);
  });

  it('PlateauTracker counts non-improving updates; NaN never improves', () => {
    const t = new PlateauTracker(0.1);
    expect([t.update(1), t.update(0.95), t.update(NaN), t.update(0.85)]).toEqual([true, false, false, true]);
    expect(t.toJSON()).toEqual({ best: 0.85, bad: 0 });
    t.update(0.9);
    expect(new PlateauTracker(0.1, t.toJSON()).bad).toBe(1);
  });

  it('invalid schedules and early-stopping options are ConfigErrors naming the field', () => {
    const bad = (s: unknown, field: string) => {
      const e = (() => {
        try {
          parseTrainConfig({ corpus: 'x', ...(s as object) });
        } catch (err) {
          return err;
        }
      })();
      expect(e, field).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).field).toBe(field);
    };
    bad({ lrSchedule: { type: 'linear' } }, 'lrSchedule.type');
    bad({ lrSchedule: { type: 'step' } }, 'lrSchedule.stepSize');
    bad({ lrSchedule: { type: 'cosine', warmupSteps: -1 } }, 'lrSchedule.warmupSteps');
    bad({ lrSchedule: { type: 'plateau', factor: 1 } }, 'lrSchedule.factor');
    bad({ lrSchedule: { type: 'constant', gamma: 1 } }, 'lrSchedule.gamma');
    bad({ earlyStopping: { patience: 0 } }, 'earlyStopping.patience');
    bad({ onNonFinite: 'ignore' }, 'onNonFinite');
  });
});

describe('train() with schedules and early stopping', () => {
  it('steps use the scheduled rate', async () => {
    const { history } = await train({ ...TINY, maxSteps: 12, lrSchedule: { type: 'cosine', warmupSteps: 3 } });
    const expected = new LrSchedule(sched({ type: 'cosine', warmupSteps: 3 }), TINY.lr, 12);
    expect(history.steps.map((s) => s.lr)).toEqual(history.steps.map((s) => expected.lrAt(s.step - 1)));
  });

  it('stops after `patience` validations without improvement and returns the best weights', async () => {
    // A high rate on a small text overfits quickly, so the validation loss turns up.
    const text = shakespeare(6_000);
    const cfg = {
      ...TINY,
      corpus: { text },
      hiddenSize: 64,
      lr: 0.03,
      maxSteps: 400,
      evalEvery: 5,
      earlyStopping: { patience: 3 },
    };
    const { model, history } = await train(cfg);
    expect(history.stoppedEarly).toBe(true);
    const best = defined(history.best);
    const lastStep = last(history.steps).step;
    expect(lastStep).toBe(last(history.evals).step);
    expect(lastStep).toBeLessThan(400);
    // the last `patience` validations did not improve on the best one, which came just before them
    const evals = history.evals.map((e) => e.valLoss);
    expect(Math.min(...evals)).toBe(best.valLoss);
    expect(defined(history.evals.at(-4)).step).toBe(best.step);
    expect(best.step).toBe(lastStep - 3 * 5);
    // the returned model has the best weights: it evaluates to the best validation loss exactly
    const v = await model.evaluate(
      { text: splitText(text, 0.1).val },
      { batchSize: cfg.batchSize, seqLen: cfg.seqLen },
    );
    expect(v.loss).toBe(best.valLoss);
    expect(v.loss).toBeLessThan(last(history.evals).valLoss);

    const kept = await train({ ...cfg, earlyStopping: { patience: 3, restoreBest: false } });
    const v2 = await kept.model.evaluate(
      { text: splitText(text, 0.1).val },
      { batchSize: cfg.batchSize, seqLen: cfg.seqLen },
    );
    expect(v2.loss).toBe(last(kept.history.evals).valLoss);
  });
});

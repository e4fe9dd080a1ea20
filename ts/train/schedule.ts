/** Learning-rate schedules (pure TypeScript: the engine takes the rate of each step in `opt.lr`). */
import type { LrScheduleConfig } from '../config';
import { type PlateauState, PlateauTracker } from './plateau';

/** Serializable state of an {@link LrSchedule}; only `plateau` schedules have any. */
export interface ScheduleState {
  /** Schedule type the state belongs to; a checkpoint's state is ignored when the type changed. */
  type: LrScheduleConfig['type'];
  /** Factor applied to the base rate so far (plateau reductions); 1 for other types. */
  scale: number;
  /** Plateau tracking of the validation loss (plateau schedules only). */
  plateau?: PlateauState;
}

/** The learning rate of every step for one schedule config; see {@link LrScheduleSchema} for the formulas. */
export class LrSchedule {
  private scale: number;
  private readonly tracker?: PlateauTracker;

  /**
   * @param config the validated schedule.
   * @param baseLr the configured `lr` (> 0).
   * @param totalSteps the run's planned total number of steps (cosine horizon unless `config.totalSteps` is set).
   * @param state a checkpoint's {@link ScheduleState}; used only when its type is `config.type`.
   */
  constructor(
    private readonly config: LrScheduleConfig,
    private readonly baseLr: number,
    private readonly totalSteps: number,
    state?: ScheduleState,
  ) {
    const same = state?.type === config.type;
    this.scale = same ? state.scale : 1;
    if (config.type === 'plateau') this.tracker = new PlateauTracker(config.minDelta, same ? state.plateau : undefined);
  }

  /** Learning rate of the step with 0-based index `step` (the `step`-th step of the run, resumed runs included). */
  lrAt(step: number): number {
    const c = this.config;
    const lr = this.baseLr;
    switch (c.type) {
      case 'constant':
        return lr;
      case 'step':
        return lr * c.gamma ** Math.floor(step / c.stepSize);
      case 'cosine': {
        if (step < c.warmupSteps) return (lr * (step + 1)) / c.warmupSteps;
        const span = Math.max(1, (c.totalSteps ?? this.totalSteps) - c.warmupSteps);
        const progress = Math.min(1, (step - c.warmupSteps) / span);
        return c.minLr + (lr - c.minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
      }
      case 'plateau':
        return Math.max(c.minLr, lr * this.scale);
    }
  }

  /**
   * Feed a monitored validation loss (nats/token). Plateau schedules multiply the rate by `factor` after
   * `patience` validations in a row without improvement, then count again from zero; others ignore it.
   */
  onValidation(valLoss: number): void {
    const c = this.config;
    if (c.type !== 'plateau' || !this.tracker) return;
    this.tracker.update(valLoss);
    if (this.tracker.bad >= c.patience) {
      this.scale *= c.factor;
      this.tracker.resetBad();
    }
  }

  /** A copy of the state, for checkpoints. */
  toJSON(): ScheduleState {
    return { type: this.config.type, scale: this.scale, ...(this.tracker ? { plateau: this.tracker.toJSON() } : {}) };
  }
}

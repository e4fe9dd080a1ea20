/** Tracking of the best value of a monitored loss, shared by reduce-on-plateau, early stopping and best checkpoints. */

/** Serializable state of a {@link PlateauTracker} (stored in checkpoints). */
export interface PlateauState {
  /** Best value seen, or null before the first one. */
  best: number | null;
  /** Updates in a row that did not improve on `best` by more than `minDelta`. */
  bad: number;
}

/** Counts how many updates in a row failed to improve a loss (lower is better) by more than `minDelta`. */
export class PlateauTracker {
  private state: PlateauState;

  /** @param minDelta an improvement must lower the best value by more than this (>= 0, same unit as the loss). */
  constructor(
    private readonly minDelta = 0,
    state: PlateauState = { best: null, bad: 0 },
  ) {
    this.state = { ...state };
  }

  /** Record `value`; returns true when it is a new best (then `bad` is 0). A non-finite value never improves. */
  update(value: number): boolean {
    const { best } = this.state;
    if (Number.isFinite(value) && (best === null || value < best - this.minDelta)) {
      this.state = { best: value, bad: 0 };
      return true;
    }
    this.state = { best, bad: this.state.bad + 1 };
    return false;
  }

  /** Updates in a row without improvement. */
  get bad(): number {
    return this.state.bad;
  }

  /** Best value so far, or null. */
  get best(): number | null {
    return this.state.best;
  }

  /** Start counting non-improving updates from zero again (after a learning-rate reduction). */
  resetBad(): void {
    this.state = { ...this.state, bad: 0 };
  }

  /** A copy of the state, for checkpoints. */
  toJSON(): PlateauState {
    return { ...this.state };
  }
}

/** The engine's view of the train options that regularize (see the fields of the same names in config.ts). */
import type { TrainConfig } from '../config';
import type { NativeRegularizers } from '../native/handle';

/** The regularizers of `cfg` as the engine takes them (`NativeModel.setRegularizers`). */
export function regularizersOf(cfg: TrainConfig): NativeRegularizers {
  return {
    dropoutEmbedding: cfg.dropoutEmbedding,
    dropoutHidden: cfg.dropoutHidden,
    dropoutOutput: cfg.dropoutOutput,
    dropoutWords: cfg.dropoutWords,
    weightDrop: cfg.weightDrop,
    tieWeights: cfg.tieWeights,
    ar: cfg.ar,
    tar: cfg.tar,
  };
}

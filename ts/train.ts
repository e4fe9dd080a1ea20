/** The training loop: one awaited native truncated-BPTT step per minibatch, validation at each epoch end. */
import { parseTrainConfig, type TrainConfigInput } from './config';
import { batchLayout, loadCorpus, makeBatches, splitText } from './data';
import type { EvalInfo, StepInfo, TrainHistory } from './events';
import { LstmModel, toModelConfig } from './model';
import { NativeHandle } from './native';
import { buildTokenizer } from './tokenizer';

/** Result of {@link train}. */
export interface TrainResult {
  model: LstmModel;
  history: TrainHistory;
}

/** Dropout seed of global step `step` (0-based): a 32-bit mix of the run seed and the step, so runs are reproducible. */
export function dropoutSeed(seed: number, step: number): number {
  return (seed ^ Math.imul(step + 1, 0x9e3779b1)) >>> 0;
}

const ignore = () => {};

/**
 * Train a new model.
 *
 * Steps: validate the config; load the corpus; hold out validation text (`valCorpus`, or the last
 * `valFraction`); build the tokenizer on the training text; create the native model from `seed`; then for
 * each epoch reset the carried state and run one awaited native step per full `[batchSize, seqLen]` batch
 * (the native work runs on the libuv pool, so the event loop stays responsive). After each epoch, and
 * when `maxSteps` ends training, evaluate on the validation text. Out-of-vocabulary symbols in the training
 * or validation text (words beyond `vocabSize`, characters only in the validation text) become `<unk>`
 * silently. When `signal` aborts, training stops before the next step and the model trained so far is
 * returned with `history.aborted = true` (no validation of the unfinished epoch).
 *
 * @throws ConfigError for invalid options; DataError for an unreadable/empty corpus or one too short for
 *   one batch (training) or one sequence (validation); DeviceError if the addon cannot load or the device
 *   is unavailable; NumericError if the loss becomes non-finite. Errors thrown by callbacks propagate.
 */
export async function train(input: TrainConfigInput): Promise<TrainResult> {
  const cfg = parseTrainConfig(input);
  const text = loadCorpus(cfg.corpus);
  const split = cfg.valCorpus ? { train: text, val: loadCorpus(cfg.valCorpus) } : splitText(text, cfg.valFraction);
  const tokenizer = buildTokenizer(split.train, { kind: cfg.tokenizer, vocabSize: cfg.vocabSize, lowercase: cfg.lowercase });
  const trainIds = tokenizer.encode(split.train, { onWarning: ignore });
  const valIds = tokenizer.encode(split.val, { onWarning: ignore });
  const { fullBatches: stepsPerEpoch } = batchLayout(trainIds.length, cfg.batchSize, cfg.seqLen, 'the training text');
  batchLayout(valIds.length, 1, cfg.seqLen, 'the validation text');
  const epochs = cfg.epochs ?? (cfg.maxSteps ? Math.ceil(cfg.maxSteps / stepsPerEpoch) : 1);
  const totalSteps = Math.min(cfg.maxSteps ?? Infinity, epochs * stepsPerEpoch);

  const native = NativeHandle.create(
    { vocabSize: tokenizer.vocabSize, embeddingDim: cfg.embeddingDim, hiddenSize: cfg.hiddenSize, numLayers: cfg.numLayers, dropout: cfg.dropout },
    cfg.seed,
    cfg.device,
  );
  const model = new LstmModel(native, tokenizer, toModelConfig(cfg));
  cfg.onStart?.({ totalSteps, stepsPerEpoch, trainTokens: trainIds.length, valTokens: valIds.length, vocabSize: tokenizer.vocabSize, device: model.device });

  const opt = { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weightDecay: cfg.weightDecay, clipNorm: cfg.clipNorm };
  const history: TrainHistory = { steps: [], epochs: [], evals: [], tokensPerSec: 0, aborted: false };
  const validate = () => model.evaluate(valIds, { batchSize: cfg.batchSize, seqLen: cfg.seqLen });
  let step = 0;
  let seconds = 0;
  let tokens = 0;

  for (let epoch = 1; epoch <= epochs && step < totalSteps && !history.aborted; epoch++) {
    native.resetTrainState();
    let lossSum = 0;
    let epochSteps = 0;
    for (const b of makeBatches(trainIds, cfg.batchSize, cfg.seqLen, true)) {
      if (step >= totalSteps) break;
      if (cfg.signal?.aborted) {
        history.aborted = true;
        break;
      }
      const t0 = performance.now();
      const r = await native.trainStep(b.inputs, b.targets, b.batchSize, b.seqLen, opt, dropoutSeed(cfg.seed, step));
      const dt = (performance.now() - t0) / 1000;
      step++;
      epochSteps++;
      lossSum += r.loss;
      seconds += dt;
      tokens += b.inputs.length;
      const info: StepInfo = { step, epoch, loss: r.loss, tokensPerSec: b.inputs.length / dt, gradNorm: r.gradNorm };
      history.steps.push(info);
      cfg.onStep?.(info);
      if (cfg.evalEvery && step % cfg.evalEvery === 0) {
        const v = await validate();
        const e: EvalInfo = { step, epoch, valLoss: v.loss, valPerplexity: v.perplexity, valAccuracy: v.accuracy };
        history.evals.push(e);
        cfg.onEval?.(e);
      }
    }
    if (history.aborted || epochSteps === 0) break;
    const v = await validate();
    const e = { epoch, trainLoss: lossSum / epochSteps, valLoss: v.loss, valPerplexity: v.perplexity, valAccuracy: v.accuracy };
    history.epochs.push(e);
    cfg.onEpoch?.(e);
  }
  history.tokensPerSec = seconds > 0 ? tokens / seconds : 0;
  return { model, history };
}

/**
 * TensorFlow.js Layers export: the files of a `layers-model` directory, as `tf.loadLayersModel` reads it
 * (https://www.tensorflow.org/js/guide/save_load, the format that tfjs-layers' `model.save` and the tensorflowjs
 * converter write). A Sequential model Embedding(V, E) -> numLayers x LSTM(H, return_sequences, stateful false,
 * recurrent activation sigmoid) -> Dense(V, linear) whose output is the logits `[batch, seqLen, V]`, the weights in
 * float32 shards of at most 4 MiB (the converter's default size), and `tokenizer.json`.
 */
import { createHash } from 'node:crypto';
import { packageVersion } from '../version';
import { add, type ModelWeights, transpose } from './weights';

/** Largest weight shard in bytes: 4 MiB, as the tensorflowjs converter writes them. */
export const TFJS_SHARD_BYTES = 4 * 1024 * 1024;

/** The names `tfjsFiles` gives its files; a shard's name holds a hash of all the weights and its place. */
export const TFJS_FILE_NAMES = /^(model\.json|tokenizer\.json|weights-[0-9a-f]{12}-shard\d+of\d+\.bin)$/;

/** The name of a weight shard of {@link TFJS_FILE_NAMES} (what a later export may replace). */
export const TFJS_SHARD_NAME = /^weights-[0-9a-f]{12}-shard\d+of\d+\.bin$/;

/** One file of an export: its name in the output directory and its bytes. */
export interface ExportFile {
  name: string;
  bytes: Uint8Array;
}

/** One weight as `model.json` lists it. */
interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32';
}

/**
 * The files of the TF.js export of `w`, in the order to write them: the weight shards, `tokenizer.json` (the
 * tokenizer's JSON: `type` is the kind, `char` or `word`; `tokens` the vocabulary in id order; `lowercase` for word
 * tokenizers; readable by `tokenizerFromJSON` and `importTorch`), then `model.json`, so that a `model.json` never
 * names a shard that is not yet written.
 */
export function tfjsFiles(w: ModelWeights): ExportFile[] {
  const { vocabSize: v, embeddingDim: e, hiddenSize: h } = w.shape;
  const weights: Array<[WeightSpec, Float32Array]> = [
    [{ name: 'embedding/embeddings', shape: [v, e], dtype: 'float32' }, w.embedding],
    ...w.layers.flatMap(
      (l, k): Array<[WeightSpec, Float32Array]> => [
        [
          { name: `lstm_${k}/kernel`, shape: [l.inputSize, 4 * h], dtype: 'float32' },
          transpose(l.weightIh, 4 * h, l.inputSize),
        ],
        [{ name: `lstm_${k}/recurrent_kernel`, shape: [h, 4 * h], dtype: 'float32' }, transpose(l.weightHh, 4 * h, h)],
        [{ name: `lstm_${k}/bias`, shape: [4 * h], dtype: 'float32' }, add(l.biasIh, l.biasHh)],
      ],
    ),
    [{ name: 'decoder/kernel', shape: [h, v], dtype: 'float32' }, transpose(w.decoderWeight, v, h)],
    [{ name: 'decoder/bias', shape: [v], dtype: 'float32' }, w.decoderBias],
  ];
  const data = Buffer.concat(weights.map(([, a]) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)));
  const hash = createHash('sha256').update(data).digest('hex').slice(0, 12);
  const count = Math.max(1, Math.ceil(data.length / TFJS_SHARD_BYTES));
  const shards = Array.from({ length: count }, (_, i) => ({
    name: `weights-${hash}-shard${i + 1}of${count}.bin`,
    bytes: data.subarray(i * TFJS_SHARD_BYTES, (i + 1) * TFJS_SHARD_BYTES),
  }));
  const model = {
    format: 'layers-model',
    generatedBy: `lstmgen ${packageVersion()}`,
    convertedBy: null,
    modelTopology: topology(w),
    weightsManifest: [{ paths: shards.map((s) => s.name), weights: weights.map(([spec]) => spec) }],
  };
  return [
    ...shards,
    { name: 'tokenizer.json', bytes: Buffer.from(`${JSON.stringify(w.tokenizer)}\n`) },
    { name: 'model.json', bytes: Buffer.from(`${JSON.stringify(model)}\n`) },
  ];
}

/** The Keras topology (`modelTopology`) of `w`'s network: the layer configs tfjs-layers 4 writes for it. */
function topology(w: ModelWeights) {
  const { vocabSize: v, embeddingDim: e, hiddenSize: h } = w.shape;
  const lstm = (k: number) => ({
    class_name: 'LSTM',
    config: {
      name: `lstm_${k}`,
      trainable: true,
      units: h,
      activation: 'tanh',
      recurrent_activation: 'sigmoid',
      use_bias: true,
      unit_forget_bias: false,
      dropout: 0,
      recurrent_dropout: 0,
      return_sequences: true,
      return_state: false,
      go_backwards: false,
      stateful: false,
      unroll: false,
    },
  });
  return {
    class_name: 'Sequential',
    config: {
      name: 'lstmgen',
      layers: [
        {
          class_name: 'Embedding',
          config: {
            name: 'embedding',
            trainable: true,
            input_dim: v,
            output_dim: e,
            mask_zero: false,
            batch_input_shape: [null, null],
            dtype: 'float32',
          },
        },
        ...w.layers.map((_, k) => lstm(k)),
        {
          class_name: 'Dense',
          config: { name: 'decoder', trainable: true, units: v, activation: 'linear', use_bias: true },
        },
      ],
    },
    keras_version: 'tfjs-layers 4.22.0',
    backend: 'tensor_flow.js',
  };
}

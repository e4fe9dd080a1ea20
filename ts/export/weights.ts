/**
 * The weights of a model as the exporters read them: float32 arrays in the engine's (PyTorch's) layout, and the
 * layout changes the other runtimes need. PyTorch's `nn.LSTM` stacks its gate blocks as i, f, g, o
 * (`weight_ih_l{k}` `[4H, in]`, `weight_hh_l{k}` `[4H, H]`, `bias_ih_l{k}` and `bias_hh_l{k}` `[4H]`); Keras /
 * TF.js store `kernel` `[in, 4H]`, `recurrent_kernel` `[H, 4H]` and one `bias` `[4H]` in the same order i, f, c, o
 * (c is PyTorch's g); ONNX's LSTM takes W `[1, 4H, in]`, R `[1, 4H, H]` and B `[1, 8H]` (W's biases, then R's)
 * in the order i, o, f, c.
 */
import { ConfigError, ModelFileError } from '../errors';
import { readSafetensorsHeader } from '../io/safetensors';
import { type LstmModel, weightTensors } from '../model';
import type { NativeModelConfig } from '../native/handle';
import type { TokenizerJSON } from '../tokenizer';

/** The weights of one LSTM layer, PyTorch layout, float32 row-major. */
export interface LayerWeights {
  /** `weight_ih_l{k}`: `[4H, in]`, in = embeddingDim for layer 0, hiddenSize above it. */
  weightIh: Float32Array;
  /** `weight_hh_l{k}`: `[4H, H]`. */
  weightHh: Float32Array;
  /** `bias_ih_l{k}`: `[4H]`. */
  biasIh: Float32Array;
  /** `bias_hh_l{k}`: `[4H]`. */
  biasHh: Float32Array;
  /** Input width of the layer: embeddingDim for layer 0, hiddenSize above it. */
  inputSize: number;
}

/** A model's weights, shape and tokenizer, read once for an export. */
export interface ModelWeights {
  /** V, E, H, numLayers (and the training dropout, which inference ignores). */
  shape: NativeModelConfig;
  /** `embedding.weight`: `[V, E]`. */
  embedding: Float32Array;
  /** One entry per layer, bottom first. */
  layers: LayerWeights[];
  /** `decoder.weight`: `[V, H]` (logits = h W^T + b). */
  decoderWeight: Float32Array;
  /** `decoder.bias`: `[V]`. */
  decoderBias: Float32Array;
  /** The tokenizer's JSON ({@link Tokenizer.toJSON}): `type` (the kind), `tokens` (id order), `lowercase` (word). */
  tokenizer: TokenizerJSON;
}

/**
 * Read the weights of `model` (its safetensors bytes, taken in its turn as `save()` takes them). Weights are f32
 * whatever the model's precision (bf16 only rounds the inputs of products).
 * @throws ConfigError (field `model`) for a model with a projection (`projSize`): neither the Keras LSTM layer
 *   of TF.js nor the ONNX LSTM operator has one; NumericError if a weight is NaN or infinite; ModelFileError if a
 *   tensor is missing or mis-shaped (a broken engine build).
 */
export async function readWeights(model: LstmModel): Promise<ModelWeights> {
  const shape = model.native.config();
  const proj = shape.projSize ?? 0;
  if (proj > 0)
    throw new ConfigError(
      'model',
      `has a projection (projSize ${proj}, PyTorch proj_size), which neither the TF.js (Keras) LSTM layer nor ` +
        'the ONNX LSTM operator has, so it cannot be exported; train without projSize to export',
    );
  const bytes = await model.native.exclusive(() => model.toBytes());
  const { tensors, dataStart } = readSafetensorsHeader(bytes, 'model');
  const read = new Map<string, Float32Array>();
  for (const { name, shape: dims, parameters } of weightTensors(shape)) {
    const t = tensors[name];
    if (
      t?.dtype !== 'F32' ||
      t.shape.join() !== dims.join() ||
      t.data_offsets[1] - t.data_offsets[0] !== 4 * parameters
    )
      throw new ModelFileError(`model: tensor ${name} is missing or not float32 of shape [${dims.join(', ')}]`);
    const from = dataStart + t.data_offsets[0];
    read.set(
      name,
      new Float32Array(bytes.buffer.slice(bytes.byteOffset + from, bytes.byteOffset + from + 4 * parameters)),
    );
  }
  const get = (name: string) => read.get(name) as Float32Array; // every name was checked above
  return {
    shape,
    embedding: get('embedding.weight'),
    layers: Array.from({ length: shape.numLayers }, (_, k) => ({
      weightIh: get(`lstm.weight_ih_l${k}`),
      weightHh: get(`lstm.weight_hh_l${k}`),
      biasIh: get(`lstm.bias_ih_l${k}`),
      biasHh: get(`lstm.bias_hh_l${k}`),
      inputSize: k === 0 ? shape.embeddingDim : shape.hiddenSize,
    })),
    decoderWeight: get('decoder.weight'),
    decoderBias: get('decoder.bias'),
    tokenizer: model.tokenizer.toJSON(),
  };
}

/** The transpose `[cols, rows]` of row-major `a` `[rows, cols]`. */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/**
 * Row-major `a` `[4H, cols]` (four gate blocks of H rows, PyTorch order i, f, g, o) with its blocks reordered:
 * block j of the result is block `order[j]` of `a`. ONNX's i, o, f, c is `order` [0, 3, 1, 2]. A bias is `cols` 1.
 */
export function reorderGates(a: Float32Array, hidden: number, cols: number, order: readonly number[]): Float32Array {
  const out = new Float32Array(a.length);
  const block = hidden * cols;
  order.forEach((from, j) => {
    out.set(a.subarray(from * block, (from + 1) * block), j * block);
  });
  return out;
}

/** The element-wise sum of `a` and `b` (same length). */
export function add(a: Float32Array, b: Float32Array): Float32Array {
  return a.map((v, i) => v + b[i]);
}

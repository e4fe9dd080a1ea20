/**
 * ONNX export: one ModelProto (IR version 7, default-domain opset 13; https://onnx.ai/onnx/intro/concepts.html),
 * encoded by protobufjs from the `onnx-proto` package's generated onnx.proto types.
 *
 * Graph, time-major inside as ONNX's LSTM wants it (its `layout` 0; `B` batch, `T` sequence, `V` vocabulary):
 * ```
 * input_ids int64 [B, T] -> Gather(embedding [V, E]) [B, T, E] -> Transpose [T, B, E]
 *   -> per layer k: LSTM(W_k [1, 4H, in], R_k [1, 4H, H], B_k [1, 8H], initial_h/c = h0[k], c0[k]) -> Y [T, 1, B, H]
 *      -> Squeeze(axis 1) [T, B, H]
 *   -> Transpose [B, T, H] -> MatMul(decoder^T [H, V]) -> Add(decoder bias [V]) -> logits float32 [B, T, V]
 * h_n, c_n float32 [numLayers, B, H]: the layers' final states (Concat of each LSTM's Y_h / Y_c).
 * ```
 * With `stateInputs` the graph also takes `h0` and `c0` float32 `[numLayers, B, H]`; without, the LSTMs start from
 * zeros. Gates are reordered from PyTorch's i, f, g, o to ONNX's i, o, f, c (see `weights.ts`). Metadata:
 * `lstmgen.tokenizer` (the tokenizer's JSON) and `lstmgen.shape` (vocabSize, embeddingDim, hiddenSize, numLayers).
 */
import type { onnx } from 'onnx-proto';
import { ConfigError } from '../errors';
import { packageVersion } from '../version';
import { type ModelWeights, reorderGates, transpose } from './weights';

/** The ONNX IR version of the file (7: ONNX 1.7+ readers). */
export const ONNX_IR_VERSION = 7;
/** The default-domain operator set the graph uses. */
export const ONNX_OPSET = 13;

/** Largest message protobuf encodes, so the largest ONNX file without external data: 2 GiB - 1 byte. */
export const ONNX_MAX_BYTES = 2 ** 31 - 1;

/**
 * Check that float32 weights of `weightBytes` bytes fit one ONNX file (with 1 MiB to spare for the graph).
 * @throws ConfigError (field `format`) when they do not, pointing to the tfjs format.
 */
export function assertOnnxFits(weightBytes: number): void {
  if (weightBytes + 2 ** 20 > ONNX_MAX_BYTES)
    throw new ConfigError(
      'format',
      `"onnx" cannot hold this model: its weights take ${(weightBytes / 2 ** 30).toFixed(2)} GiB and one ONNX ` +
        'file at most 2 GiB; export it as "tfjs" (sharded weights)',
    );
}

/** PyTorch's gate blocks i, f, g, o in ONNX's order i, o, f, c. */
const ONNX_GATE_ORDER = [0, 3, 1, 2] as const;

// Enum values of onnx.proto (TensorProto.DataType, AttributeProto.AttributeType), fixed by the ONNX spec. They are
// written out so that the generated protobuf code (~150 ms to load) is loaded only when a model is exported.
const FLOAT = 1;
const INT64 = 7;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_INTS = 7;

/** A float32 initializer. */
function floats(name: string, dims: number[], data: Float32Array): onnx.ITensorProto {
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** An int64 initializer. */
function int64s(name: string, values: number[]): onnx.ITensorProto {
  return { name, dims: [values.length], dataType: INT64, int64Data: values };
}

/** A graph input or output of element type `elemType` and shape `dims` (strings are symbolic dimensions). */
function valueInfo(
  name: string,
  elemType: number,
  dims: Array<number | string>,
  docString: string,
): onnx.IValueInfoProto {
  const dim = dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d }));
  return { name, docString, type: { tensorType: { elemType, shape: { dim } } } };
}

/** A node; `attribute` holds ints and strings. */
function node(
  opType: string,
  name: string,
  input: string[],
  output: string[],
  attrs: Record<string, number | number[] | string> = {},
): onnx.INodeProto {
  const attribute = Object.entries(attrs).map(([key, v]): onnx.IAttributeProto => {
    if (typeof v === 'string') return { name: key, type: ATTR_STRING, s: Buffer.from(v) };
    if (Array.isArray(v)) return { name: key, type: ATTR_INTS, ints: v };
    return { name: key, type: ATTR_INT, i: v };
  });
  return { opType, name, input, output, attribute };
}

/**
 * The bytes of the ONNX model of `w` (see the module comment for its graph, inputs and outputs).
 * @param stateInputs whether the graph takes `h0` and `c0` as inputs (else it starts from zero states).
 * @throws ConfigError (field `format`) for weights too large for one ONNX file (see {@link assertOnnxFits}).
 */
export async function onnxBytes(w: ModelWeights, stateInputs: boolean): Promise<Uint8Array> {
  const { vocabSize: v, embeddingDim: e, hiddenSize: h, numLayers } = w.shape;
  const layerArrays = w.layers.flatMap((l) => [l.weightIh, l.weightHh, l.biasIh, l.biasHh]);
  const arrays = [w.embedding, w.decoderWeight, w.decoderBias, ...layerArrays];
  assertOnnxFits(arrays.reduce((sum, a) => sum + a.byteLength, 0));
  const initializer: onnx.ITensorProto[] = [
    floats('embedding.weight', [v, e], w.embedding),
    floats('decoder.weight_t', [h, v], transpose(w.decoderWeight, v, h)),
    floats('decoder.bias', [v], w.decoderBias),
    int64s('axis_1', [1]),
    ...(stateInputs ? [int64s('axis_0', [0])] : []),
  ];
  const nodes: onnx.INodeProto[] = [
    node('Gather', 'embedding', ['embedding.weight', 'input_ids'], ['embedded'], { axis: 0 }),
    node('Transpose', 'to_time_major', ['embedded'], ['x_0'], { perm: [1, 0, 2] }),
  ];
  w.layers.forEach((l, k) => {
    const gates = (a: Float32Array, cols: number) => reorderGates(a, h, cols, ONNX_GATE_ORDER);
    const bias = new Float32Array(8 * h);
    bias.set(gates(l.biasIh, 1), 0);
    bias.set(gates(l.biasHh, 1), 4 * h);
    initializer.push(
      floats(`lstm.W_${k}`, [1, 4 * h, l.inputSize], gates(l.weightIh, l.inputSize)),
      floats(`lstm.R_${k}`, [1, 4 * h, h], gates(l.weightHh, h)),
      floats(`lstm.B_${k}`, [1, 8 * h], bias),
    );
    const inputs = [`x_${k}`, `lstm.W_${k}`, `lstm.R_${k}`, `lstm.B_${k}`];
    if (stateInputs) {
      initializer.push(int64s(`layer_${k}`, [k]), int64s(`layer_${k}_end`, [k + 1]));
      for (const s of ['h', 'c'])
        nodes.push(node('Slice', `${s}0_${k}`, [`${s}0`, `layer_${k}`, `layer_${k}_end`, 'axis_0'], [`${s}0_${k}`]));
      inputs.push('', `h0_${k}`, `c0_${k}`); // '' skips the optional sequence_lens input
    }
    nodes.push(
      node('LSTM', `lstm_${k}`, inputs, [`y_${k}`, `h_n_${k}`, `c_n_${k}`], { hidden_size: h, direction: 'forward' }),
      node('Squeeze', `squeeze_${k}`, [`y_${k}`, 'axis_1'], [`x_${k + 1}`]),
    );
  });
  const layers = Array.from({ length: numLayers }, (_, k) => k);
  nodes.push(
    node('Transpose', 'to_batch_major', [`x_${numLayers}`], ['hidden'], { perm: [1, 0, 2] }),
    node('MatMul', 'decoder', ['hidden', 'decoder.weight_t'], ['decoded']),
    node('Add', 'decoder_bias', ['decoded', 'decoder.bias'], ['logits']),
    node(
      'Concat',
      'h_n',
      layers.map((k) => `h_n_${k}`),
      ['h_n'],
      { axis: 0 },
    ),
    node(
      'Concat',
      'c_n',
      layers.map((k) => `c_n_${k}`),
      ['c_n'],
      { axis: 0 },
    ),
  );
  const state = [numLayers, 'batch', h];
  const graph: onnx.IGraphProto = {
    name: 'lstmgen',
    docString: 'Embedding -> LSTM layers -> Linear decoder, from an lstmgen model; logits are unnormalized.',
    node: nodes,
    initializer,
    input: [
      valueInfo('input_ids', INT64, ['batch', 'sequence'], 'token ids [batch, sequence], int64, in [0, vocabSize)'),
      ...(stateInputs
        ? [
            valueInfo('h0', FLOAT, state, 'initial hidden state [numLayers, batch, hiddenSize] (zeros: a fresh start)'),
            valueInfo('c0', FLOAT, state, 'initial cell state [numLayers, batch, hiddenSize] (zeros: a fresh start)'),
          ]
        : []),
    ],
    output: [
      valueInfo('logits', FLOAT, ['batch', 'sequence', v], 'next-token logits [batch, sequence, vocabSize]'),
      valueInfo('h_n', FLOAT, state, 'final hidden state of each layer [numLayers, batch, hiddenSize]'),
      valueInfo('c_n', FLOAT, state, 'final cell state of each layer [numLayers, batch, hiddenSize]'),
    ],
  };
  const { onnx: proto } = await import('onnx-proto');
  const model = proto.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'lstmgen',
    producerVersion: packageVersion(),
    docString: 'LSTM language model exported by lstmgen',
    graph,
    metadataProps: [
      { key: 'lstmgen.tokenizer', value: JSON.stringify(w.tokenizer) },
      { key: 'lstmgen.shape', value: JSON.stringify({ vocabSize: v, embeddingDim: e, hiddenSize: h, numLayers }) },
    ],
  });
  return proto.ModelProto.encode(model).finish();
}

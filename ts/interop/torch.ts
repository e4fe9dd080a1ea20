/**
 * PyTorch interop. Export: an lstmgen model file *is* a PyTorch state dict in safetensors (`embedding.weight`,
 * `lstm.weight_ih_l{k}`, `lstm.weight_hh_l{k}`, `lstm.bias_ih_l{k}`, `lstm.bias_hh_l{k}`, `decoder.weight`,
 * `decoder.bias`; PyTorch ignores the metadata), loadable with `safetensors.torch.load_file` into a module of
 * `nn.Embedding`, `nn.LSTM(batch_first=True)` and `nn.Linear` (see scripts/reference/torch-interop.py). Import: the
 * same state dict written by PyTorch, plus a tokenizer, becomes an {@link LstmModel}.
 */
import { parseTrainConfig } from '../config';
import { ConfigError, ModelFileError } from '../errors';
import { assertPath } from '../io/paths';
import { readSafetensorsHeader } from '../io/safetensors';
import { LstmModel, loadNative, METADATA_KEYS, readBytes, toModelConfig, withFileName } from '../model';
import { NativeHandle } from '../native/handle';
import type { Device } from '../native/loader';
import { type Tokenizer, type TokenizerJSON, tokenizerFromJSON } from '../tokenizer';

/** Options of {@link importTorch}. */
export interface ImportTorchOptions {
  /**
   * The vocabulary: a Tokenizer, its JSON (object), or a file path: a tokenizer JSON file (`tokenizer.toJSON()`
   * written with JSON.stringify) or an lstmgen model file whose tokenizer to use.
   */
  tokenizer: Tokenizer | TokenizerJSON | string;
  /** Device for the weights (default `auto`). */
  device?: Device;
  /** Evaluation defaults stored in the model's config (default those of `train()`). */
  seqLen?: number;
  batchSize?: number;
}

/**
 * Load a PyTorch state dict (float32 safetensors: `embedding.weight`, `lstm.*_l{k}`, `decoder.weight`/`bias`)
 * as an lstmgen model with the given tokenizer. Shapes are inferred from the tensors; dropout is 0.
 * @throws ModelFileError if the file cannot be read, tensors are missing or mis-shaped, or the tokenizer file is
 *   unusable; ConfigError (field `tokenizer`) if the tokenizer's size differs from the embedding's rows.
 */
export async function importTorch(file: string, options: ImportTorchOptions): Promise<LstmModel> {
  assertPath(file, 'file');
  if (typeof options !== 'object' || options === null || options.tokenizer === undefined) {
    throw new ConfigError(
      'tokenizer',
      'is required: a Tokenizer, its JSON, or the path of a tokenizer JSON file or lstmgen model file',
    );
  }
  const tokenizer = resolveTokenizer(options.tokenizer);
  const native = loadNative(file, 'PyTorch state dict', (bytes) =>
    NativeHandle.fromTorchStateDict(bytes, options.device ?? 'auto'),
  );
  const shape = native.config();
  if (shape.vocabSize !== tokenizer.vocabSize) {
    throw new ConfigError(
      'tokenizer',
      `has ${tokenizer.vocabSize} tokens but ${file} has an embedding of ${shape.vocabSize} rows`,
    );
  }
  const json = tokenizer.toJSON();
  const cfg = parseTrainConfig({
    corpus: file,
    tokenizer: json.type,
    ...(json.type === 'word' ? { vocabSize: tokenizer.vocabSize, lowercase: json.lowercase } : {}),
    embeddingDim: shape.embeddingDim,
    hiddenSize: shape.hiddenSize,
    numLayers: shape.numLayers,
    projSize: shape.projSize ?? 0,
    dropout: shape.dropout,
    ...(options.seqLen ? { seqLen: options.seqLen } : {}),
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
  });
  return new LstmModel(native, tokenizer, { ...toModelConfig(cfg), corpus: `<imported from ${file}>` });
}

/** The tokenizer of {@link ImportTorchOptions.tokenizer}. @throws ModelFileError for an unusable file. */
function resolveTokenizer(t: ImportTorchOptions['tokenizer']): Tokenizer {
  if (typeof t !== 'string') return 'encode' in t ? t : tokenizerFromJSON(t);
  const bytes = readBytes(t, 'tokenizer file');
  const text = bytes.subarray(0, 1).toString() === '{' ? bytes.toString('utf8') : undefined;
  if (text !== undefined) return withFileName(t, () => tokenizerFromJSON(text));
  const json = readSafetensorsHeader(bytes, t).metadata[METADATA_KEYS.tokenizer];
  if (typeof json !== 'string')
    throw new ModelFileError(`${t}: neither a tokenizer JSON file nor an lstmgen model file (no tokenizer metadata)`);
  return withFileName(t, () => tokenizerFromJSON(json));
}

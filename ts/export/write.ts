/**
 * `exportModel()`: checks the options and the output path, reads the model's weights once, and writes the files of
 * the chosen format atomically (see {@link writeFileAtomic}). The exports are for inference: no dropout, weights in
 * float32 whatever the model's precision.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ExportFormat, type ExportOptions, parseExportOptions } from '../config';
import { ConfigError } from '../errors';
import { assertWritable, writeFileAtomic } from '../io/atomic';
import { assertOutputsSpareInputs, assertPath } from '../io/paths';
import { LstmModel, loadModel } from '../model';
import { onnxBytes } from './onnx';
import { TFJS_FILE_NAMES, TFJS_SHARD_NAME, tfjsFiles } from './tfjs';
import { readWeights } from './weights';

/** What {@link exportModel} wrote. */
export interface ExportResult {
  /** The format written. */
  format: ExportFormat;
  /** The files written, as `out` joined with their names (`tfjs`: shards, `tokenizer.json`, `model.json`). */
  files: string[];
  /** Bytes written, all files together. */
  bytes: number;
}

const q = JSON.stringify;
const statOf = (p: string) => fs.statSync(p, { throwIfNoEntry: false });

/**
 * Export a model for another runtime: `format: 'tfjs'` writes a TensorFlow.js Layers model into directory `out`
 * (`model.json`, weight shards `weights-<hash>-shard<i>of<n>.bin`, `tokenizer.json`; load it with
 * `tf.loadLayersModel`); `format: 'onnx'` writes one ONNX file `out` (inputs `input_ids` int64 `[batch, sequence]`
 * and, with `stateInputs`, `h0` / `c0` float32 `[numLayers, batch, hiddenSize]`; outputs `logits` float32
 * `[batch, sequence, vocabSize]`, `h_n`, `c_n`). Both give lstmgen's logits from the same ids (zero initial state)
 * within float32 rounding.
 *
 * `out` must not be the model file, nor (`tfjs`) a directory holding it under a name the export writes. A `tfjs`
 * directory that exists and is not empty, or an `onnx` file that exists, needs `force`; with `force` the files of
 * an earlier `tfjs` export there that the new one does not use (old weight shards) are removed, other files are
 * left alone. `model.json` is written last, so a reader sees the old export or the new one whole.
 * @param model a loaded model, or the path of a model file (loaded on the CPU).
 * @throws ConfigError naming the field for invalid options, for an `out` that is the model file, that exists
 *   without `force`, that is a file where a directory is wanted (or a directory where a file is), that is a device
 *   or FIFO, or that cannot be written; ModelFileError if the model file cannot be read or a file cannot be written; NumericError if a weight
 *   is NaN or infinite (nothing is written).
 */
export async function exportModel(model: LstmModel | string, options: ExportOptions): Promise<ExportResult> {
  const opts = parseExportOptions(options);
  if (!(model instanceof LstmModel)) assertPath(model, 'model');
  const dir = opts.format === 'tfjs';
  const out = { path: opts.out, field: 'out', what: 'the export', ...(dir ? { names: TFJS_FILE_NAMES } : {}) };
  if (typeof model === 'string') assertOutputsSpareInputs([out], [{ path: model, what: 'the model file' }]);
  assertFreeOutput(opts.out, dir, opts.force);
  const loaded = typeof model === 'string' ? await loadModel(model, { device: 'cpu' }) : model;
  try {
    const weights = await readWeights(loaded);
    if (opts.format === 'onnx') {
      const bytes = await onnxBytes(weights, opts.stateInputs);
      await writeFileAtomic(opts.out, bytes, 'ONNX model');
      return { format: 'onnx', files: [opts.out], bytes: bytes.length };
    }
    const files = tfjsFiles(weights);
    assertWritable(opts.out, 'out', true);
    for (const f of files) await writeFileAtomic(path.join(opts.out, f.name), f.bytes, `TF.js ${f.name}`);
    removeStaleShards(
      opts.out,
      files.map((f) => f.name),
    );
    return {
      format: 'tfjs',
      files: files.map((f) => path.join(opts.out, f.name)),
      bytes: files.reduce((sum, f) => sum + f.bytes.length, 0),
    };
  } finally {
    if (loaded !== model) loaded.dispose();
  }
}

/**
 * Refuse an `out` of the wrong kind, or one in use without `force`; for a file, also check that it can be written
 * (a directory is checked when it is created, after the weights are read).
 * @throws ConfigError (field `out`).
 */
function assertFreeOutput(out: string, dir: boolean, force: boolean): void {
  const stat = statOf(out);
  if (dir) {
    if (stat && !stat.isDirectory())
      throw new ConfigError('out', `${q(out)} is a file; the tfjs export writes a directory, give a directory path`);
    if (stat && !force && fs.readdirSync(out).length > 0)
      throw new ConfigError('out', `directory ${q(out)} is not empty; choose another, or pass force to write into it`);
    return;
  }
  if (stat?.isDirectory())
    throw new ConfigError('out', `${q(out)} is a directory; the onnx export writes one file, give a file path`);
  if (stat && !stat.isFile())
    // a device or FIFO: replacing it would remove it, not write to it
    throw new ConfigError('out', `${q(out)} is not a regular file; give the path of a file to write`);
  if (stat && !force)
    throw new ConfigError('out', `${q(out)} exists; choose another path, or pass force to replace it`);
  assertWritable(out, 'out');
}

/** Remove the weight shards in `dir` that an earlier export wrote and `keep` does not name. */
function removeStaleShards(dir: string, keep: string[]): void {
  for (const name of fs.readdirSync(dir)) {
    if (TFJS_SHARD_NAME.test(name) && !keep.includes(name)) fs.rmSync(path.join(dir, name), { force: true });
  }
}

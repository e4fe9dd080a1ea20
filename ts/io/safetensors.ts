/**
 * Read-only view of safetensors bytes (https://github.com/huggingface/safetensors: an 8-byte little-endian
 * header length, a JSON header, then the tensor data): the header, and a scan for non-finite floats.
 * Parsing of weights stays in the engine; this is for metadata and the finite-weights guard.
 */
import { ModelFileError, NumericError } from '../errors';

/** One tensor entry of a safetensors header: `data_offsets` are byte offsets relative to the data section. */
export interface TensorInfo {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** A parsed safetensors header. */
export interface SafetensorsHeader {
  /** `__metadata__` (string -> string), `{}` when absent. */
  metadata: Record<string, string>;
  /** Tensors by name. */
  tensors: Record<string, TensorInfo>;
  /** Byte offset of the data section in the file (8 + header length). */
  dataStart: number;
}

/**
 * Parse the header of safetensors `bytes` (the data section is not read).
 * @throws ModelFileError when the bytes are too short or the header is not valid JSON.
 */
export function readSafetensorsHeader(bytes: Uint8Array, what = 'file'): SafetensorsHeader {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 8) throw new ModelFileError(`${what}: not a safetensors file (${buf.length} bytes)`);
  const len = Number(buf.readBigUInt64LE(0));
  if (len > buf.length - 8)
    throw new ModelFileError(`${what}: not a safetensors file (header of ${len} bytes in a ${buf.length}-byte file)`);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new ModelFileError(`${what}: not a safetensors file (header is not JSON)`, { cause: err });
  }
  const { __metadata__, ...tensors } = json;
  return {
    metadata: (__metadata__ ?? {}) as Record<string, string>,
    tensors: tensors as Record<string, TensorInfo>,
    dataStart: 8 + len,
  };
}

/**
 * Check that every F32 tensor of safetensors `bytes` holds only finite values (weights and, in a
 * checkpoint, Adam's moments). Cost: one pass over the data, about 1 ms per 4 MB.
 * @throws NumericError naming the first tensor with a NaN or infinity, with `what` (e.g. the file name) in the message.
 */
export function assertFiniteTensors(bytes: Uint8Array, what: string): void {
  const { tensors, dataStart } = readSafetensorsHeader(bytes, what);
  for (const [name, t] of Object.entries(tensors)) {
    if (t.dtype !== 'F32') continue;
    const [from, to] = t.data_offsets;
    const start = bytes.byteOffset + dataStart + from;
    const n = (to - from) / 4;
    // Data offsets are 4-byte aligned in files the engine writes; copy when a caller's buffer is not.
    const values =
      start % 4 === 0
        ? new Float32Array(bytes.buffer, start, n)
        : new Float32Array(bytes.slice(dataStart + from, dataStart + to).buffer);
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v - v !== 0)
        throw new NumericError(`${what}: tensor ${name} holds non-finite values (${v}); refusing to write it`);
    }
  }
}

/**
 * Token streams, the train/validation cut of a text, and the standard language-model batch layout
 * (Zaremba et al. 2014; PyTorch word_language_model `batchify`/`get_batch`).
 * Reading corpora lives in corpus/.
 */
import { DataError } from './errors';
import type { TokenIds } from './tokenizer';

/**
 * A sequence of token ids that batches read from without it being one array: a typed array, a part of one,
 * or records in some order (see {@link recordStream}).
 */
export interface TokenStream {
  /** Number of ids. */
  readonly length: number;
  /** Copy ids `[pos, pos + n)` (within `[0, length)`) into `into` from index `at`. */
  read(pos: number, n: number, into: Uint32Array, at: number): void;
  /** Id of the boundary token that joins and frames the records of this stream, or null when it has none. */
  readonly boundaryId: number | null;
}

/** A stream over `ids` (not copied). */
export function idStream(ids: TokenIds, boundaryId: number | null = null): TokenStream {
  return {
    length: ids.length,
    boundaryId,
    read: (pos, n, into, at) => into.set(ids.subarray(pos, pos + n), at),
  };
}

/** Ids `[from, to)` of `stream`, as a stream. */
export function sliceStream(stream: TokenStream, from: number, to: number): TokenStream {
  return {
    length: to - from,
    boundaryId: stream.boundaryId,
    read: (pos, n, into, at) => stream.read(from + pos, n, into, at),
  };
}

/**
 * The records `order` (indices into `starts`) of `ids` in that order, after one boundary: record `r` is
 * `ids[starts[r], starts[r + 1])` and ends with the boundary, so every record is framed by boundaries on
 * both sides. Holds one prefix sum per record (8 bytes each), never a copy of the ids.
 */
export function recordStream(ids: TokenIds, starts: Float64Array, order: Uint32Array, boundaryId: number): TokenStream {
  const ends = new Float64Array(order.length + 1); // ends[k]: stream position after the k-th record
  ends[0] = 1;
  for (let k = 0; k < order.length; k++) ends[k + 1] = ends[k] + starts[order[k] + 1] - starts[order[k]];
  return {
    length: ends[order.length],
    boundaryId,
    read(pos, n, into, at) {
      let p = pos;
      let out = at;
      let left = n;
      if (p === 0 && left > 0) {
        into[out++] = boundaryId;
        p++;
        left--;
      }
      // the record holding position p: the last k with ends[k] <= p
      let lo = 0;
      let hi = order.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (ends[mid] <= p) lo = mid;
        else hi = mid - 1;
      }
      for (let k = lo; left > 0; k++) {
        const r = order[k];
        const from = starts[r] + (p - ends[k]);
        const take = Math.min(left, ends[k + 1] - p);
        into.set(ids.subarray(from, from + take), out);
        [p, out, left] = [p + take, out + take, left - take];
      }
    },
  };
}

/**
 * The number of ids of a text of `length` ids that the last `valFraction` of it holds out for validation:
 * `length - floor(length * (1 - valFraction))`.
 */
export function heldOut(length: number, valFraction: number): number {
  return length - Math.floor(length * (1 - valFraction));
}

/**
 * Split `text` into training text and the last `valFraction` of its code points as validation text (the
 * split `train()` makes of one text with the char tokenizer: the cut falls between any two code points).
 */
export function splitText(text: string, valFraction: number): { train: string; val: string } {
  const points = [...text];
  const cut = points.length - heldOut(points.length, valFraction);
  return { train: points.slice(0, cut).join(''), val: points.slice(cut).join('') };
}

/** One minibatch: `inputs` and `targets` are `[batchSize, seqLen]` row-major token ids; `targets` is `inputs` shifted by one token. */
export interface Batch {
  inputs: Uint32Array;
  targets: Uint32Array;
  batchSize: number;
  seqLen: number;
  /**
   * The record-boundary id of the stream, or null. The engine resets a row's hidden and cell state to zero (the
   * state generation starts from) entering each step whose input is this id, in every layer, with no gradient
   * through the reset, so each record is modeled from the same fresh state whatever precedes it.
   */
  boundaryId: number | null;
}

/** The layout of a stream of `length` tokens: `streamLen` input positions per stream, batches per pass. */
export interface BatchLayout {
  /** Input positions in each of the `batchSize` streams: floor((length - 1) / batchSize). */
  streamLen: number;
  /** Full batches of `seqLen` steps. */
  fullBatches: number;
  /** Batches including a last shorter one (seqLen = streamLen mod seqLen) when the streams do not divide evenly. */
  allBatches: number;
}

/**
 * Layout of `length` tokens cut into `batchSize` streams read `seqLen` at a time; `what` names the text in
 * messages and `advice` (default: use a longer corpus or smaller sizes) says what to change.
 * @throws DataError if `length < seqLen + 1` (no input/target pair of one full sequence) or
 *   `length < batchSize * seqLen + 1` (not one full batch); the message says both numbers and what to change.
 */
export function batchLayout(
  length: number,
  batchSize: number,
  seqLen: number,
  what = 'the text',
  advice?: string,
): BatchLayout {
  if (length < seqLen + 1) {
    throw new DataError(
      `${what} has ${length} tokens, shorter than seqLen + 1 = ${seqLen + 1}; ${advice ?? 'use a longer corpus or a smaller seqLen'}`,
    );
  }
  if (length < batchSize * seqLen + 1) {
    throw new DataError(
      `${what} has ${length} tokens but one batch needs batchSize * seqLen + 1 = ${batchSize * seqLen + 1}; ` +
        (advice ?? 'use a longer corpus or a smaller batchSize or seqLen'),
    );
  }
  const streamLen = Math.floor((length - 1) / batchSize);
  const fullBatches = Math.floor(streamLen / seqLen);
  return { streamLen, fullBatches, allBatches: Math.ceil(streamLen / seqLen) };
}

/**
 * Minibatches of `ids` in the standard LM layout. Inputs are `ids[0 .. B*L)` and targets `ids[1 .. B*L]`
 * (B = batchSize, L = streamLen), both viewed as B contiguous streams of L tokens; batch k holds stream
 * positions [k*seqLen, (k+1)*seqLen) of every stream, so batch k+1 continues batch k row by row (the
 * engine carries the hidden state). Validation happens at call time; batches are built lazily.
 * @param dropLast omit the last shorter batch (training), or keep it (evaluation covers all B*L targets).
 * @throws DataError as {@link batchLayout}.
 */
export function makeBatches(
  ids: TokenIds | TokenStream,
  batchSize: number,
  seqLen: number,
  dropLast = false,
): Iterable<Batch> {
  const stream = ArrayBuffer.isView(ids) ? idStream(ids) : ids;
  const layout = batchLayout(stream.length, batchSize, seqLen);
  const count = dropLast ? layout.fullBatches : layout.allBatches;
  return {
    *[Symbol.iterator]() {
      for (let k = 0; k < count; k++) yield batchAt(stream, layout, batchSize, seqLen, k);
    },
  };
}

/**
 * Batch `k` (0-based, `k < layout.allBatches`) of {@link makeBatches}, built directly: resuming training in
 * the middle of an epoch starts at its batch without building the ones before.
 * @param layout `batchLayout(stream.length, batchSize, seqLen)`.
 */
export function batchAt(stream: TokenStream, layout: BatchLayout, batchSize: number, seqLen: number, k: number): Batch {
  const start = k * seqLen;
  const T = Math.min(seqLen, layout.streamLen - start);
  const inputs = new Uint32Array(batchSize * T);
  const targets = new Uint32Array(batchSize * T);
  const row = new Uint32Array(T + 1);
  for (let b = 0; b < batchSize; b++) {
    stream.read(b * layout.streamLen + start, T + 1, row, 0);
    inputs.set(row.subarray(0, T), b * T);
    targets.set(row.subarray(1), b * T);
  }
  return { inputs, targets, batchSize, seqLen: T, boundaryId: stream.boundaryId };
}

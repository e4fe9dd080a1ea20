/**
 * The set of a training corpus's records that a model file carries, so that a generated record can say whether
 * it occurs verbatim in the training data (`novel`).
 *
 * Each record (its token ids, without the boundary token) is kept as one 64-bit hash: two 32-bit MurmurHash3
 * (x86_32, Austin Appleby, public domain) lanes with different seeds over the ids as 32-bit words, high lane
 * first. The set is sorted and stored in the model file's metadata as base64 (8 bytes per record, about 10.7 in
 * base64): 100,000 records add about 1.07 MB. Lookups compare hashes, so a record the set lacks is reported as
 * known only when its hash equals one of the N stored: about N / 2^64 for each record checked (5e-14 for a
 * million records), taking the two lanes as independent random functions. A record the set holds is always
 * reported as known. Corpora of more than {@link MAX_RECORD_HASHES} records keep no set (the header would pass
 * safetensors' 100 MB limit); their records' novelty is unknown (`null`).
 */
import type { TokenIds } from '../tokenizer';
import { recordCount, type TokenizedCorpus } from './dataset';

/** Most records whose hashes a model file keeps: 2^20 (about 11.2 MB of metadata). */
export const MAX_RECORD_HASHES = 1 << 20;

/** What the metadata of a model file holds under `records`. */
interface StoredRecords {
  /** Records of the training corpus. */
  count: number;
  /** The hash function, so that another one is never compared with it. */
  hash: typeof HASH_NAME;
  /** Sorted 64-bit hashes, little-endian, base64; null when none are kept (see `why`). */
  hashes: string | null;
  /** Why no hashes are kept, when `hashes` is null. */
  why?: string;
  /** Present (true) when the model was trained on one plain text: it never saw a record boundary. */
  plainText?: true;
}

const HASH_NAME = 'murmur3-x86_32x2-u32';
const SEEDS = [0x00000000, 0x9747b28c] as const;

/** MurmurHash3 x86_32 of the 32-bit words `ids[from, to)` with `seed` (Appleby's reference algorithm). */
function murmur3(ids: ArrayLike<number>, from: number, to: number, seed: number): number {
  let h = seed | 0;
  for (let i = from; i < to; i++) {
    let k = Math.imul(ids[i], 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= (to - from) * 4;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The 64-bit hash of the record `ids[from, to)` (see the module docs). */
export function recordHash(ids: ArrayLike<number>, from = 0, to = ids.length): bigint {
  return (BigInt(murmur3(ids, from, to, SEEDS[0])) << 32n) | BigInt(murmur3(ids, from, to, SEEDS[1]));
}

/**
 * The records a model was trained on, as a set of hashes (see the module docs), or the reason they are unknown.
 */
export class TrainingRecords {
  private constructor(
    /** Records of the training corpus (0 when unknown). */
    readonly count: number,
    /** Sorted hashes, or null when the records are unknown. */
    private readonly hashes: BigUint64Array | null,
    /** Why the records are unknown (null when they are known). */
    readonly why: string | null,
    /**
     * Whether the model was trained on one plain text (no records, so it never saw a record boundary, whatever its
     * vocabulary holds: a BPE vocabulary always has the boundary token). False when trained on records, or unknown.
     */
    readonly plainText = false,
  ) {}

  /** Unknown records, with the reason. */
  static unknown(why: string): TrainingRecords {
    return new TrainingRecords(0, null, why);
  }

  /** The records of a model trained on one plain text: none ({@link plainText}). */
  static ofPlainText(): TrainingRecords {
    return new TrainingRecords(0, null, 'the model was trained on one plain text, which has no records', true);
  }

  /**
   * The records of `corpus` (all of them: the share held out for validation too), each without its boundary
   * token; unknown for a corpus of more than {@link MAX_RECORD_HASHES} records.
   */
  static of(corpus: TokenizedCorpus): TrainingRecords {
    const count = recordCount(corpus);
    if (count > MAX_RECORD_HASHES) {
      return new TrainingRecords(
        count,
        null,
        `the training corpus has ${count} records, more than the ${MAX_RECORD_HASHES} whose hashes a model file keeps`,
      );
    }
    const hashes = new BigUint64Array(count);
    const tail = corpus.framed ? 1 : 0;
    for (let r = 0; r < count; r++) hashes[r] = recordHash(corpus.ids, corpus.starts[r], corpus.starts[r + 1] - tail);
    hashes.sort();
    return new TrainingRecords(count, hashes, null);
  }

  /**
   * Read the `records` metadata of a model file; absent, or written with another hash: unknown records, with
   * the reason. Malformed text is treated as absent (the file's checksum has already vouched for it).
   */
  static fromMetadata(text: string | undefined): TrainingRecords {
    const missing = 'the model file holds no training-record hashes (written by an older lstmgen, or imported)';
    if (text === undefined) return TrainingRecords.unknown(missing);
    let stored: StoredRecords;
    try {
      stored = JSON.parse(text) as StoredRecords;
    } catch {
      return TrainingRecords.unknown(missing);
    }
    if (stored.plainText === true) return TrainingRecords.ofPlainText();
    if (stored.hash !== HASH_NAME) return TrainingRecords.unknown(missing);
    if (stored.hashes === null) return new TrainingRecords(stored.count, null, stored.why ?? missing);
    const bytes = Buffer.from(stored.hashes, 'base64');
    if (bytes.length % 8 !== 0) return TrainingRecords.unknown(missing);
    const hashes = new BigUint64Array(bytes.length / 8);
    for (let i = 0; i < hashes.length; i++) hashes[i] = bytes.readBigUInt64LE(8 * i);
    return new TrainingRecords(stored.count, hashes, null);
  }

  /** The `records` metadata text of a model file (see {@link fromMetadata}). */
  toMetadata(): string {
    let hashes: string | null = null;
    if (this.hashes) {
      const bytes = Buffer.alloc(8 * this.hashes.length);
      for (let i = 0; i < this.hashes.length; i++) bytes.writeBigUInt64LE(this.hashes[i], 8 * i);
      hashes = bytes.toString('base64');
    }
    const stored: StoredRecords = {
      count: this.count,
      hash: HASH_NAME,
      hashes,
      ...(this.why ? { why: this.why } : {}),
      ...(this.plainText ? { plainText: true as const } : {}),
    };
    return JSON.stringify(stored);
  }

  /** Whether the records are known (hashes kept). */
  get known(): boolean {
    return this.hashes !== null;
  }

  /**
   * Whether the record `ids` (token ids, no boundary token) is one of the training records: true or false (false
   * positives as the module docs say), or null when the records are unknown ({@link why}).
   */
  has(ids: TokenIds | readonly number[]): boolean | null {
    const hashes = this.hashes;
    if (!hashes) return null;
    const h = recordHash(ids);
    let lo = 0;
    let hi = hashes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid] < h) lo = mid + 1;
      else hi = mid;
    }
    return lo < hashes.length && hashes[lo] === h;
  }
}

/**
 * A corpus turned into token ids, and its train/validation split.
 *
 * Tokenizing takes two streaming passes over the documents: the first counts tokens (per record) and gathers
 * the vocabulary, the second encodes into one id array of exactly the right length in the smallest type that
 * holds the vocabulary ({@link idArray}). A BPE trained on the corpus encodes it once: the first pass counts
 * pre-tokens, which give the number of tokens once the merges are trained, and the records' lengths come out
 * of the second. Memory is the ids, 8 bytes per record and a constant (a chunk, the
 * vocabulary), never the text. The records (or, in the `text` format, the documents) are stored one after
 * another; when the corpus has several, or is in a record format, each ends with the tokenizer's boundary
 * token and a stream of them starts with one, so every record is framed by boundaries. A corpus of one text
 * document has no boundary token: its ids are the text's.
 */

import { heldOut, idStream, recordStream, sliceStream, type TokenStream } from '../data';
import { DataError } from '../errors';
import type { DataWarningCode } from '../events';
import { assertWritable } from '../io/atomic';
import { mulberry32 } from '../random';
import {
  type EncodeOptions,
  idArray,
  type TokenIds,
  type Tokenizer,
  type TokenizerOptions,
  tokenCounter,
  vocabBuilder,
} from '../tokenizer';
import { cacheEntry, readCache, writeCache } from './cache';
import { type CorpusEncoding, controlShare, readDocument } from './read';
import { type CorpusFormat, type RecordSink, readRecords } from './records';
import { type CorpusDocument, type CorpusSource, describeCorpus, ResolvedCorpus, resolveCorpus } from './sources';

/** Progress of reading a corpus: `bytes` of `totalBytes` done in `phase`. */
export interface DataProgress {
  /**
   * `scan`: first pass (counting, vocabulary); `merges`: training a BPE's merges on the pre-tokens the scan
   * counted (bpe only; reported once, as it starts, with `bytes` = `totalBytes`); `encode`: the last pass
   * (ids); `cache`: loading cached ids.
   */
  phase: 'scan' | 'merges' | 'encode' | 'cache';
  bytes: number;
  totalBytes: number;
}

/** How documents are read and turned into records; the fields of the train options of the same names. */
export interface CorpusOptions {
  /** Record format (default `text`); see corpus/records. */
  format?: CorpusFormat;
  /** JSONL field or CSV column (name or 0-based index); default `text`. */
  field?: string | number;
  /** Extension filter for files found in directories and by globs (e.g. `['.txt']`). */
  extensions?: readonly string[];
  /** Encoding of files without a byte-order mark; default `utf-8`. */
  encoding?: CorpusEncoding;
  /** Directory for cached ids (created if missing); unset: no cache. */
  cacheDir?: string;
  /** Checked between chunks; when aborted, reading stops with the signal's reason. */
  signal?: AbortSignal;
  /** Called (and awaited) after each chunk read. */
  onProgress?: (progress: DataProgress) => void | Promise<void>;
  /** Receives the warnings of reading (see {@link DataWarningCode}); default `process.emitWarning` with the code. */
  onWarning?: (message: string, code: DataWarningCode) => void;
}

/** Where data warnings go without `onWarning`. */
const emitWarning = (message: string, code: DataWarningCode) => process.emitWarning(message, { code });

/** A tokenized corpus. */
export interface TokenizedCorpus {
  tokenizer: Tokenizer;
  /** The ids of all records, one after another (each ending with the boundary when `framed`). */
  ids: TokenIds;
  /** Record `r` is `ids[starts[r], starts[r + 1])`; `starts.length` is the number of records + 1. */
  starts: Float64Array;
  /** Whether records end with (and streams start with) the boundary token. */
  framed: boolean;
  format: CorpusFormat;
  documents: CorpusDocument[];
  /** The source as named in messages. */
  name: string;
  /** `hit`: loaded from `cacheDir`; `written`: tokenized and stored there; undefined without a cache. */
  cache?: 'hit' | 'written';
}

/** Number of records (documents in the `text` format) of a tokenized corpus. */
export const recordCount = (corpus: TokenizedCorpus) => corpus.starts.length - 1;

type Warn = (message: string, code: DataWarningCode) => void;

/** A growable list of numbers. */
class NumberList {
  private data = new Float64Array(1024);
  length = 0;
  push(x: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(2 * this.length);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = x;
  }
  get(i: number): number {
    return this.data[i];
  }
}

/** Warn (`LSTMGEN_BINARY_CORPUS`) about documents whose text starts with over 1% control characters. */
function warnIfBinary(suspects: Array<{ name: string; share: number; sample: number }>, warn: Warn): void {
  if (suspects.length === 0) return;
  const [first] = suspects;
  const more = suspects.length > 1 ? ` (and ${suspects.length - 1} more documents)` : '';
  warn(
    `corpus ${JSON.stringify(first.name)} does not look like text: ${(100 * first.share).toFixed(1)}% of its first ${first.sample} characters are control characters${more}`,
    'LSTMGEN_BINARY_CORPUS',
  );
}

/**
 * Read every record of `docs` into `sink` (one pass), reporting progress as `phase`.
 * @returns the documents whose first piece looks binary.
 */
async function pass(
  docs: readonly CorpusDocument[],
  options: CorpusOptions,
  phase: 'scan' | 'encode',
  sink: RecordSink,
): Promise<Array<{ name: string; share: number; sample: number }>> {
  const totalBytes = docs.reduce((n, d) => n + d.size, 0);
  let bytes = 0;
  const suspects: Array<{ name: string; share: number; sample: number }> = [];
  for (const doc of docs) {
    const pieces = readDocument(doc, {
      encoding: options.encoding,
      signal: options.signal,
      onBytes: (n) => {
        bytes += n;
        return options.onProgress?.({ phase, bytes, totalBytes });
      },
    });
    let first = true;
    const sampled = async function* () {
      for await (const piece of pieces) {
        if (first && phase === 'scan') {
          first = false;
          const share = controlShare(piece);
          if (share > 0.01) suspects.push({ name: doc.name, share, sample: Math.min(piece.length, 65_536) });
        }
        yield piece;
      }
    };
    await readRecords(doc, sampled(), options.format ?? 'text', options.field, sink);
  }
  return suspects;
}

/**
 * A rule that turns the vocabulary built from a corpus into the one it is encoded with, so that both come from
 * the same reading (e.g. a model's vocabulary grown by the corpus's new symbols): `key` names the rule and its
 * inputs in the cache key. The derived vocabulary must give each record as many tokens as the built one (char and
 * word vocabularies do: one token per symbol or word, known or `<unk>`).
 */
export interface DeriveVocabulary {
  key: string;
  from: (built: Tokenizer) => Tokenizer;
}

/**
 * Tokenize a corpus (a source, or one already looked up: {@link ResolvedCorpus}): with `tokenizer` options, build the vocabulary from it (with a boundary token when it has
 * several documents or is in a record format); with a {@link Tokenizer}, encode with that one (records are
 * framed only when it has a boundary token), reporting unknown symbols through `encode` (`prefix` starts the
 * message).
 * @throws DataError for unreadable or invalid sources and records (see resolveCorpus, readDocument,
 *   readRecords), an empty corpus, or a file that changed between the two passes; ConfigError (field
 *   `cacheDir`) when the cache directory cannot be created or written; the signal's reason when aborted.
 */
export async function tokenizeCorpus(
  source: CorpusSource | ResolvedCorpus,
  tokenizer: TokenizerOptions | Tokenizer,
  options: CorpusOptions = {},
  encode: EncodeOptions & { prefix?: string; derive?: DeriveVocabulary } = {},
): Promise<TokenizedCorpus> {
  const format = options.format ?? 'text';
  const warn = options.onWarning ?? emitWarning;
  if (options.cacheDir) assertWritable(options.cacheDir, 'cacheDir', true);
  const resolved = source instanceof ResolvedCorpus ? source : new ResolvedCorpus(source, options);
  const documents = resolved.documents();
  const name = describeCorpus(resolved.source);
  const fixed = 'encoder' in tokenizer ? tokenizer : undefined;
  const settings = {
    format,
    field: options.field ?? null,
    encoding: options.encoding ?? 'utf-8',
    tokenizer: fixed ? { vocabulary: JSON.stringify(fixed.toJSON()) } : tokenizer,
    ...(encode.derive && !fixed ? { derive: encode.derive.key } : {}),
  };
  const entry = options.cacheDir ? cacheEntry(options.cacheDir, documents, settings) : undefined;
  if (entry) {
    const cached = await readCache(
      entry.file,
      entry.key,
      (m) => warn(m, 'LSTMGEN_CACHE'),
      (bytes, totalBytes) => options.onProgress?.({ phase: 'cache', bytes, totalBytes }),
    );
    if (cached) return { ...cached, format, documents, name, cache: 'hit' };
  }

  // Pass 1: count the tokens of every record; gather the vocabulary.
  const builder = fixed ? undefined : vocabBuilder(tokenizer as TokenizerOptions);
  const counter = builder?.counter ?? tokenCounter(fixed!);
  const lengths = new NumberList();
  let before = 0;
  const suspects = await pass(documents, options, 'scan', {
    text: (piece) => counter.write(piece),
    end: () => {
      counter.end();
      lengths.push(counter.tokens - before);
      before = counter.tokens;
    },
  });
  warnIfBinary(suspects, warn);
  if (counter.tokens === 0) {
    throw new DataError(
      `corpus ${JSON.stringify(name)} is empty${format === 'text' ? '' : ` (no ${format} records)`}; give a non-empty text`,
    );
  }
  const records = lengths.length;
  // BPE trained here: the scan counted pre-tokens, so the records' lengths in tokens come from encoding them
  const perRecord = !builder || builder.countsTokens;
  if (!perRecord) {
    const totalBytes = documents.reduce((n, d) => n + d.size, 0);
    await options.onProgress?.({ phase: 'merges', bytes: totalBytes, totalBytes });
  }
  const built = fixed ?? (await builder!.build(format !== 'text' || records > 1, (m) => warn(m, 'LSTMGEN_NO_SPACES')));
  const tok = encode.derive && !fixed ? encode.derive.from(built) : built;
  // the token that ends each record, when the records are framed
  const boundary = format !== 'text' || records > 1 ? tok.boundaryId : undefined;
  const framed = boundary !== undefined;

  // Pass 2: encode into one array of exactly the counted length.
  const starts = new Float64Array(records + 1);
  if (perRecord) for (let r = 0; r < records; r++) starts[r + 1] = starts[r] + lengths.get(r) + (framed ? 1 : 0);
  const total = perRecord ? starts[records] : counter.tokens + (framed ? records : 0);
  const ids = idArray(tok.vocabSize, total);
  const changed = (what: string) =>
    new DataError(`corpus ${JSON.stringify(name)} changed while it was being read${what}; try again`);
  const encoder = tok.encoder();
  let pos = 0;
  let r = 0;
  await pass(documents, options, 'encode', {
    text: (piece) => {
      pos = encoder.write(piece, ids, pos);
    },
    end: () => {
      pos = encoder.end(ids, pos);
      if (boundary !== undefined) {
        if (pos >= total) throw changed(' (more tokens than counted)');
        ids[pos++] = boundary;
      }
      r++;
      if (r > records) throw changed(' (more records than counted)');
      if (!perRecord) starts[r] = pos;
      else if (pos !== starts[r]) throw changed(` (record ${r} has a different length in the second pass)`);
    },
  });
  if (r !== records || pos !== total) throw changed('');
  encoder.unknown.report({ onWarning: () => {}, ...encode }, encode.prefix);

  const corpus: TokenizedCorpus = { tokenizer: tok, ids, starts, framed, format, documents, name };
  if (entry) {
    await writeCache(entry.file, entry.key, corpus, (m) => warn(m, 'LSTMGEN_CACHE'));
    corpus.cache = 'written';
  }
  return corpus;
}

/**
 * The records (in the `text` format: the documents) of a corpus as strings, for corpora that fit in memory.
 * @throws DataError as {@link tokenizeCorpus}, and when a record is too long for one JavaScript string.
 */
export async function loadCorpus(source: CorpusSource, options: CorpusOptions = {}): Promise<string[]> {
  const documents = resolveCorpus(source, { extensions: options.extensions });
  const records: string[] = [];
  let current = '';
  for (const doc of documents) {
    const pieces = readDocument(doc, { encoding: options.encoding, signal: options.signal });
    try {
      await readRecords(doc, pieces, options.format ?? 'text', options.field, {
        text: (piece) => {
          current += piece;
        },
        end: () => {
          records.push(current);
          current = '';
        },
      });
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      throw new DataError(
        `corpus ${JSON.stringify(doc.name)} is too large to load as one string; train() and evaluate() read corpora of any size`,
        { cause: err },
      );
    }
  }
  if (records.length === 0) throw new DataError(`corpus ${JSON.stringify(describeCorpus(source))} is empty`);
  return records;
}

/** The identity order 0, 1, ..., n - 1. */
const identity = (n: number) => Uint32Array.from({ length: n }, (_, i) => i);

/** The whole corpus as one stream, records in corpus order (or in `order`). */
export function corpusStream(corpus: TokenizedCorpus, order?: Uint32Array): TokenStream {
  const boundary = corpus.tokenizer.boundaryId; // a framed corpus's tokenizer has one
  if (!corpus.framed || boundary === undefined) return idStream(corpus.ids);
  return recordStream(corpus.ids, corpus.starts, order ?? identity(recordCount(corpus)), boundary);
}

/** `items` in a random order drawn from `seed` (Fisher-Yates; a new array). */
export function shuffled(items: Uint32Array, seed: number): Uint32Array {
  const out = items.slice();
  const next = mulberry32(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Seed of the record order of `epoch` (1-based) in a run seeded with `seed`. */
export const epochSeed = (seed: number, epoch: number) => (seed ^ Math.imul(epoch, 0x85ebca6b)) >>> 0;
/** Seed of the choice of validation records. */
const valSeed = (seed: number) => (seed ^ 0x5bd1e995) >>> 0;

/** A corpus cut into the stream trained on (per epoch) and the one validated on. */
export interface CorpusSplit {
  /** The training stream of `epoch` (1-based); the same length every epoch. */
  train(epoch: number): TokenStream;
  /** The validation stream, or null without validation. */
  val: TokenStream | null;
  /** The training part and the validation part as messages name them, e.g. `the training part (...)`. */
  trainWhat: string;
  valWhat: string;
}

/**
 * Split `corpus` for training. Without `val`: in the `text` format the last `valFraction` of the token stream
 * is held out (the cut falls between two tokens, so at a code point for the char tokenizer and at a word
 * boundary for the word tokenizer); in a record format a seeded random `valFraction` of the records
 * (`round(valFraction * records)`, at least one) is held out, the rest shuffled anew every epoch from
 * `seed`. `valFraction` 0 holds nothing out (no validation). With `val` (a separate validation corpus), all of
 * `corpus` trains and `val` validates in its own order.
 * @throws DataError when holding out leaves no training record.
 */
export function splitCorpus(
  corpus: TokenizedCorpus,
  valFraction: number,
  seed: number,
  val?: TokenizedCorpus,
): CorpusSplit {
  const records = recordCount(corpus);
  const held = `the last valFraction = ${valFraction} held out for validation`;
  if (corpus.format === 'text' || val) {
    const full = corpusStream(corpus);
    const shuffle = corpus.format !== 'text' && corpus.framed;
    const train = shuffle
      ? (epoch: number) => corpusStream(corpus, shuffled(identity(records), epochSeed(seed, epoch)))
      : () => full;
    if (val) {
      return {
        train,
        val: corpusStream(val),
        trainWhat: 'the training corpus',
        valWhat: `the validation corpus (${val.name})`,
      };
    }
    const cut = full.length - (valFraction > 0 ? heldOut(full.length, valFraction) : 0);
    return {
      train: () => sliceStream(full, 0, cut),
      val: cut < full.length ? sliceStream(full, cut, full.length) : null,
      trainWhat: valFraction > 0 ? `the training part (the corpus minus ${held})` : 'the corpus',
      valWhat: `the validation part (${held}; ${full.length} tokens in all)`,
    };
  }
  const nVal = valFraction > 0 ? Math.max(1, Math.round(valFraction * records)) : 0;
  if (nVal >= records) {
    throw new DataError(
      `holding out valFraction = ${valFraction} of the ${records} records of ${JSON.stringify(corpus.name)} for validation leaves no training record; use more records, a smaller valFraction, or valCorpus`,
    );
  }
  const order = shuffled(identity(records), valSeed(seed));
  const valRecords = order.subarray(0, nVal).slice().sort();
  const trainRecords = order.subarray(nVal).slice().sort();
  return {
    train: (epoch) => corpusStream(corpus, shuffled(trainRecords, epochSeed(seed, epoch))),
    val: nVal > 0 ? corpusStream(corpus, valRecords) : null,
    trainWhat: nVal > 0 ? `the ${records - nVal} training records` : `the ${records} records`,
    valWhat: `the ${nVal} validation records (a seeded random valFraction = ${valFraction} of the ${records} records)`,
  };
}

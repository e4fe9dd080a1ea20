/**
 * Reading documents as text pieces: files in chunks of {@link CHUNK_BYTES} through an incremental, strict
 * `TextDecoder` (so a code point is never split and memory does not grow with the file), in-memory texts in
 * slices. A byte-order mark picks UTF-8, UTF-16LE or UTF-16BE and is dropped; otherwise the `encoding` option
 * decides (default UTF-8). Bytes that are not valid in that encoding, and NUL characters, are a DataError that
 * says which encoding to try: a file is never silently read as garbage.
 */
import * as fs from 'node:fs';
import { TextDecoder } from 'node:util';
import { DataError, fileErrorReason } from '../errors';
import { assertRegularFile, type CorpusDocument } from './sources';

/** Text encodings of corpus files; `latin1` is read as Windows-1252 (its superset, as browsers do). */
export const CORPUS_ENCODINGS = ['utf-8', 'utf-16le', 'utf-16be', 'latin1'] as const;
/** A text encoding of corpus files. */
export type CorpusEncoding = (typeof CORPUS_ENCODINGS)[number];

/** Bytes read per chunk (1 MiB); in-memory texts are cut into pieces of as many UTF-16 units. */
export const CHUNK_BYTES = 1 << 20;

/** Options of {@link readDocument}. */
export interface ReadOptions {
  /** Encoding of files without a byte-order mark; default `utf-8`. */
  encoding?: CorpusEncoding;
  /** Checked before every chunk: when aborted, reading stops with the signal's reason (an `AbortError`). */
  signal?: AbortSignal;
  /** Called (and awaited) after each chunk with its size in bytes (in-memory text: its UTF-8 size). */
  onBytes?: (bytes: number) => void | Promise<void>;
}

const BOMS: ReadonlyArray<[CorpusEncoding, number[]]> = [
  ['utf-8', [0xef, 0xbb, 0xbf]],
  ['utf-16le', [0xff, 0xfe]],
  ['utf-16be', [0xfe, 0xff]],
];

/** The encoding and length of the byte-order mark `bytes` start with, if any. */
function sniffBom(bytes: Uint8Array): { encoding: CorpusEncoding; length: number } | undefined {
  for (const [encoding, mark] of BOMS) {
    if (mark.every((b, i) => bytes[i] === b)) return { encoding, length: mark.length };
  }
  return undefined;
}

/** `utf-16le` or `utf-16be` when the NUL bytes of `bytes` sit at odd or even offsets as in UTF-16 Latin text, else undefined. */
function utf16Guess(bytes: Uint8Array): CorpusEncoding | undefined {
  const n = Math.min(bytes.length, 4096) & ~1;
  let even = 0;
  let odd = 0;
  for (let i = 0; i < n; i++) if (bytes[i] === 0) i % 2 === 0 ? even++ : odd++;
  if (odd > n / 4 && even < odd / 8) return 'utf-16le';
  if (even > n / 4 && odd < even / 8) return 'utf-16be';
  return undefined;
}

const hint = (doc: CorpusDocument) =>
  doc.kind === 'file' && doc.foundBy
    ? ` (found by ${doc.foundBy}: pick the text files with extensions, e.g. --ext .txt)`
    : '';

/** What to try when bytes are not valid `encoding` text. */
const encodingAdvice = (encoding: CorpusEncoding) =>
  encoding === 'utf-8'
    ? "; if it is Latin-1 or Windows-1252 text give encoding: 'latin1' (--encoding latin1), if it is UTF-16 without a byte-order mark give encoding: 'utf-16le' or 'utf-16be'"
    : `; give the file's encoding (one of ${CORPUS_ENCODINGS.join(', ')})`;

/**
 * The DataError of decoded text holding a NUL character (`bytes`: the chunk it came from, at byte `start`), or
 * undefined: binary data, or (with `guess`) UTF-16 read as UTF-8, when the message names the encoding to give.
 */
function nulError(what: string, text: string, bytes: Uint8Array, start: number, encoding: CorpusEncoding, tail = '') {
  if (!text.includes('\0')) return undefined;
  const guess = encoding === 'utf-8' && start === 0 && tail !== NO_ENCODING_OPTION ? utf16Guess(bytes) : undefined;
  const advice = guess
    ? `: it looks like ${guess.toUpperCase()} without a byte-order mark; give encoding: '${guess}' (--encoding ${guess})`
    : ': it is binary data, not text';
  return new DataError(`${what} contains NUL characters (in the chunk at byte ${start})${advice}${tail}`);
}

/** What a reader without an encoding option says about text it cannot decode. */
const NO_ENCODING_OPTION =
  ' (only UTF-8, or UTF-16 with a byte-order mark, is read here: convert other text first, e.g. with iconv)';

/**
 * `bytes` as UTF-8 text (UTF-16 with a byte-order mark; the mark is dropped), checked as a corpus file's chunks
 * are, for readers without an encoding option; `what` names the source in the errors (e.g. "standard input").
 * @throws DataError when the bytes are not valid text or hold NUL characters.
 */
export function decodeText(bytes: Uint8Array, what: string): string {
  const bom = sniffBom(bytes);
  const used = bom?.encoding ?? 'utf-8';
  const body = bytes.subarray(bom?.length ?? 0);
  let text: string;
  try {
    text = new TextDecoder(used, { fatal: true, ignoreBOM: true }).decode(body);
  } catch (err) {
    throw new DataError(`${what} is not valid ${used} text${NO_ENCODING_OPTION}`, { cause: err });
  }
  const nul = nulError(what, text, body, 0, used, NO_ENCODING_OPTION);
  if (nul) throw nul;
  return text;
}

/**
 * The text of `doc` as pieces, in order. Files are checked again when opened (a regular file: devices and
 * FIFOs are refused, never read) and opened non-blocking, so nothing waits on a pipe; each chunk is awaited,
 * so the event loop (and Ctrl-C) stays responsive.
 * @throws DataError when the file cannot be read, is not a regular file, is not valid text in its encoding
 *   (the message names the byte offset and the encoding to try) or holds NUL characters; the signal's reason
 *   when `signal` aborts.
 */
export async function* readDocument(doc: CorpusDocument, options: ReadOptions = {}): AsyncGenerator<string> {
  if (doc.kind === 'text') {
    for (let i = 0; i < doc.text.length; i += CHUNK_BYTES) {
      options.signal?.throwIfAborted();
      const piece = doc.text.slice(i, i + CHUNK_BYTES);
      await options.onBytes?.(Buffer.byteLength(piece));
      yield piece;
    }
    return;
  }
  const name = JSON.stringify(doc.name);
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(doc.path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw new DataError(`cannot read corpus ${name}: ${fileErrorReason(err)}`, {
      cause: err,
      unreadablePath: doc.path,
    });
  }
  try {
    assertRegularFile(await handle.stat(), doc.name);
    const given = options.encoding ?? 'utf-8';
    const buf = Buffer.allocUnsafe(CHUNK_BYTES);
    let decoder: TextDecoder | undefined;
    let encoding = given;
    let offset = 0;
    const decode = (d: TextDecoder, bytes?: Uint8Array) => {
      try {
        return bytes ? d.decode(bytes, { stream: true }) : d.decode();
      } catch (err) {
        throw new DataError(
          `corpus ${name} is not valid ${encoding} text (in the ${bytes ? 'chunk' : 'end'} at byte ${offset})${encodingAdvice(encoding)}${hint(doc)}`,
          { cause: err },
        );
      }
    };
    for (;;) {
      options.signal?.throwIfAborted();
      let bytes: Uint8Array;
      try {
        const { bytesRead } = await handle.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        bytes = buf.subarray(0, bytesRead);
      } catch (err) {
        throw new DataError(`cannot read corpus ${name}: ${fileErrorReason(err)}`, {
          cause: err,
          unreadablePath: doc.path,
        });
      }
      const start = offset;
      if (!decoder) {
        const bom = sniffBom(bytes);
        encoding = bom?.encoding ?? given;
        decoder = new TextDecoder(encoding, { fatal: true, ignoreBOM: true });
        bytes = bytes.subarray(bom?.length ?? 0);
        offset += bom?.length ?? 0;
      }
      const text = decode(decoder, bytes);
      const nul = nulError(`corpus ${name}`, text, bytes, start, encoding, hint(doc));
      if (nul) throw nul;
      offset += bytes.length;
      await options.onBytes?.(offset - start);
      if (text) yield text;
    }
    if (decoder) {
      const rest = decode(decoder);
      if (rest) yield rest;
    }
  } finally {
    await handle.close();
  }
}

/** Code units looked at by {@link controlShare}. */
export const CONTROL_SAMPLE = 65_536;

/**
 * The share of control characters other than tab, line feed and carriage return (and of U+FFFD) in the first
 * {@link CONTROL_SAMPLE} units of `text`: above 1% the data is probably not text.
 */
export function controlShare(text: string): number {
  const n = Math.min(text.length, CONTROL_SAMPLE);
  let odd = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 9 && c !== 10 && c !== 13) || c === 0x7f || c === 0xfffd) odd++;
  }
  return n > 0 ? odd / n : 0;
}

/**
 * The on-disk cache of tokenized corpora (`cacheDir`), so that a second run on unchanged inputs skips reading
 * and tokenizing. One file per corpus and settings, named by a hash of the documents' paths (or texts) and
 * the settings; its header holds the full key, which adds each file's size and modification time. A file
 * whose key differs (the corpus changed: stale), whose size is not what its header says (truncated) or whose
 * checksum fails (corrupt) is rebuilt.
 *
 * Layout: 8 bytes magic `LSTMIDS1`, u32 LE header length, 4 zero bytes, the header (JSON, padded with spaces
 * to a multiple of 8 bytes), the record starts (float64 LE, records + 1), the ids (u8/u16/u32 LE).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic';
import { idArray, type TokenIds, type Tokenizer, type TokenizerJSON, tokenizerFromJSON } from '../tokenizer';
import type { CorpusDocument } from './sources';

const MAGIC = Buffer.from('LSTMIDS1');
const PREFIX = 16;
/** Bytes read per call when loading a cache file. */
const READ_BYTES = 1 << 26;

/** What a cached tokenization holds. */
export interface CachedIds {
  tokenizer: Tokenizer;
  ids: TokenIds;
  starts: Float64Array;
  framed: boolean;
}

interface Header {
  key: unknown;
  tokenizer: TokenizerJSON;
  framed: boolean;
  units: number;
  idCount: number;
  idBytes: number;
  sha1: string;
}

const sha = (algorithm: string, data: string | Uint8Array) => createHash(algorithm).update(data).digest('hex');

/** The identity of a document in a cache key: a file's path, size and mtime, or a hash of an in-memory text. */
function identity(doc: CorpusDocument, withVersion: boolean) {
  if (doc.kind === 'text') return { name: doc.name, sha1: sha('sha1', doc.text) };
  return withVersion ? { path: doc.path, size: doc.size, mtimeMs: doc.mtimeMs } : { path: doc.path };
}

/** The cache file for `docs` under `settings` in `dir`, and the key its header must hold. */
export function cacheEntry(
  dir: string,
  docs: readonly CorpusDocument[],
  settings: object,
): { file: string; key: string } {
  const name = sha('sha256', JSON.stringify({ docs: docs.map((d) => identity(d, false)), settings })).slice(0, 32);
  return {
    file: path.join(dir, `${name}.ids`),
    key: JSON.stringify({ version: 1, docs: docs.map((d) => identity(d, true)), settings }),
  };
}

/**
 * The cached tokenization in `file` if it holds `key` whole; undefined when it is missing or stale, and (with a
 * call of `warn`) when it is truncated or corrupt, so that the caller rebuilds it.
 * @param onBytes called after each read with the bytes read.
 */
export async function readCache(
  file: string,
  key: string,
  warn: (message: string) => void,
  onBytes?: (bytes: number, total: number) => void | Promise<void>,
): Promise<CachedIds | undefined> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const size = (await handle.stat()).size;
    const prefix = Buffer.alloc(PREFIX);
    await handle.read(prefix, 0, PREFIX, 0);
    const headerLength = prefix.readUInt32LE(8);
    if (!prefix.subarray(0, 8).equals(MAGIC) || PREFIX + headerLength > size) {
      warn(`cache file ${file} is truncated or not a cache file; rebuilding it`);
      return undefined;
    }
    const headerBytes = Buffer.alloc(headerLength);
    await handle.read(headerBytes, 0, headerLength, PREFIX);
    const header = JSON.parse(headerBytes.toString('utf8')) as Header;
    if (JSON.stringify(header.key) !== key) return undefined; // stale: the corpus or the settings changed
    const startBytes = 8 * (header.units + 1);
    const expected = PREFIX + headerLength + startBytes + header.idBytes * header.idCount;
    if (size !== expected) {
      warn(`cache file ${file} is truncated (${size} of ${expected} bytes); rebuilding it`);
      return undefined;
    }
    const tokenizer = tokenizerFromJSON(header.tokenizer);
    const starts = new Float64Array(header.units + 1);
    const ids = idArray(tokenizer.vocabSize, header.idCount);
    if (ids.BYTES_PER_ELEMENT !== header.idBytes) return undefined;
    const hash = createHash('sha1');
    let at = PREFIX + headerLength;
    for (const target of [starts, ids]) {
      const bytes = new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
      for (let done = 0; done < bytes.length; ) {
        const { bytesRead } = await handle.read(bytes, done, Math.min(READ_BYTES, bytes.length - done), at);
        if (bytesRead === 0) return undefined;
        hash.update(bytes.subarray(done, done + bytesRead));
        [done, at] = [done + bytesRead, at + bytesRead];
        await onBytes?.(bytesRead, size);
      }
    }
    if (hash.digest('hex') !== header.sha1) {
      warn(`cache file ${file} is corrupt (checksum mismatch); rebuilding it`);
      return undefined;
    }
    return { tokenizer, ids, starts, framed: header.framed };
  } catch (err) {
    warn(`cache file ${file} cannot be read (${(err as Error).message}); rebuilding it`);
    return undefined;
  } finally {
    await handle.close();
  }
}

/**
 * Write `value` under `key` to `file` atomically. A failure (a full disk) is a call of `warn`, not an error: the
 * tokenization is done and training goes on without the cache.
 */
export async function writeCache(
  file: string,
  key: string,
  value: CachedIds,
  warn: (message: string) => void,
): Promise<void> {
  const { tokenizer, ids, starts, framed } = value;
  const bytes = [starts, ids].map((a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  const hash = createHash('sha1');
  for (const b of bytes) hash.update(b);
  const header: Header = {
    key: JSON.parse(key),
    tokenizer: tokenizer.toJSON(),
    framed,
    units: starts.length - 1,
    idCount: ids.length,
    idBytes: ids.BYTES_PER_ELEMENT,
    sha1: hash.digest('hex'),
  };
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const prefix = Buffer.alloc(PREFIX);
  MAGIC.copy(prefix);
  prefix.writeUInt32LE(json.length, 8);
  try {
    await writeFileAtomic(file, [prefix, json, ...bytes], 'cache file');
  } catch (err) {
    warn(`${(err as Error).message}; training goes on without the cache`);
  }
}

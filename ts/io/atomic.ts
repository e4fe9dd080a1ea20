/**
 * Atomic file writes: the only place lstmgen writes model files, checkpoints and plots. A write goes to a
 * temporary file beside the target (`<file>.tmp-<pid>-<hex>`), which is fsynced and renamed over the target.
 */

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, ModelFileError } from '../errors';
import { assertPath } from './paths';

/** A fresh temporary name beside `file`; the pid lets a later write tell whether its writer still runs. */
function tempPath(file: string): string {
  return `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** The suffix of {@link tempPath} after the target's name, with the writer's pid as group 1. */
const TEMP_SUFFIX = /^\.tmp-(\d+)-[0-9a-f]+$/;

/** Whether process `pid` exists (one of another user, which cannot be signalled, counts as existing). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Remove the temporary files of `file` whose writer no longer runs (a process killed during a write leaves
 * its temporary file behind). Those of this process and of running processes are kept: they may be writes in
 * progress. A pid from another PID namespace sharing the directory looks dead here; such setups should not
 * write one target from two namespaces at once.
 */
async function removeDeadTemps(file: string): Promise<void> {
  const dir = path.dirname(file);
  const base = path.basename(file);
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return; // the write itself reports an unusable directory
  }
  for (const name of names) {
    if (!name.startsWith(`${base}.tmp-`)) continue;
    const pid = Number(TEMP_SUFFIX.exec(name.slice(base.length))?.[1]);
    if (!Number.isInteger(pid) || pid === process.pid || isRunning(pid)) continue;
    await fs.promises.rm(path.join(dir, name), { force: true });
  }
}

/**
 * Why creating or replacing `file` failed, in words that name `file` and its directory, never the temporary file
 * `tmp` it was written through: a missing directory, one that takes no new files (e.g. `/proc`), permissions, a
 * read-only or full disk.
 */
export function writeFailure(err: unknown, file: string, tmp = file): string {
  const e = err as NodeJS.ErrnoException;
  const dirPath = path.dirname(file);
  const dir = JSON.stringify(dirPath);
  switch (e.code) {
    case 'ENOENT':
      return isDirectory(dirPath) ? `directory ${dir} does not accept new files` : `directory ${dir} does not exist`;
    case 'ENOTDIR':
      return `${dir} is not a directory`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied (directory ${dir})`;
    case 'EISDIR':
      return 'it is a directory';
    case 'EROFS':
      return `directory ${dir} is on a read-only file system`;
    case 'ENOSPC':
      return 'no space left on device';
    case 'EDQUOT':
      return 'disk quota exceeded';
    default:
      return String(e?.message ?? err)
        .split(tmp)
        .join(file);
  }
}

const isDirectory = (p: string) => fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() === true;

/**
 * Create directory `dir` and its missing parents, one level at a time. (Node's `mkdir({ recursive: true })`
 * loops forever under a directory that refuses new entries, such as `/proc`.)
 * @throws Error from `mkdir` for the first level that cannot be created.
 */
export function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let at = path.resolve(dir); !fs.existsSync(at); at = path.dirname(at)) {
    missing.unshift(at);
    if (path.dirname(at) === at) break;
  }
  for (const level of missing) {
    try {
      fs.mkdirSync(level);
    } catch (err) {
      if (!((err as NodeJS.ErrnoException).code === 'EEXIST' && isDirectory(level))) throw err; // made meanwhile
    }
  }
}

/**
 * Write `bytes` (one array, or several written one after another) to `file` atomically: they go to
 * `file.tmp-<pid>-<rand>`, are fsynced, then renamed over `file`, so readers see either the old file whole or
 * the new one whole, never a torn write. Temporary files of `file` left by writers that were killed are removed
 * first.
 * @param what names the file in the error message (e.g. `"model file"`, `"checkpoint"`).
 * @throws ConfigError (field `file`) if `file` is empty or not a string; ModelFileError if the file cannot be
 *   written (the message names `file`, not the temporary file); the temporary file is removed and `file` is
 *   untouched.
 */
export async function writeFileAtomic(
  file: string,
  bytes: Uint8Array | readonly Uint8Array[],
  what = 'model file',
): Promise<void> {
  assertPath(file, 'file');
  await removeDeadTemps(file);
  const tmp = tempPath(file);
  try {
    const handle = await fs.promises.open(tmp, 'w');
    try {
      for (const part of bytes instanceof Uint8Array ? [bytes] : bytes) await handle.writeFile(part);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw new ModelFileError(`cannot write ${what} ${JSON.stringify(file)}: ${writeFailure(err, file, tmp)}`, {
      cause: err,
    });
  }
}

/**
 * Check, before any long work, that {@link writeFileAtomic} can write `file` by creating (and removing) a
 * temporary file where it would: in `file`'s directory, or, with `createDir`, in `file` itself as a directory
 * (created with its missing parents). So a directory that exists but takes no files (`/proc`, a read-only mount) fails here,
 * not after training.
 * @param field the option that named the path (e.g. `"out"`, `"checkpointDir"`): the ConfigError's field.
 * @throws ConfigError naming `field` and saying what is wrong (an empty path, a missing or unwritable directory,
 *   a file in the way of the directory, `file` being a directory).
 */
export function assertWritable(file: string, field: string, createDir = false): void {
  assertPath(file, field);
  const fail: (why: string) => never = (why) => {
    throw new ConfigError(field, `cannot write ${JSON.stringify(file)}: ${why}`);
  };
  if (createDir) {
    const cannot = (why: string) => fail(`cannot create directory ${JSON.stringify(file)} (${why})`);
    try {
      makeDirs(file);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EEXIST' || e.code === 'ENOTDIR') cannot('a file is in the way');
      if (e.code === 'EACCES' || e.code === 'EPERM') cannot('permission denied');
      if (e.code === 'ENOENT')
        cannot(`${JSON.stringify(path.dirname(e.path ?? file))} does not accept new directories`);
      if (e.code === 'EROFS') cannot('read-only file system');
      cannot(e.message);
    }
    if (!isDirectory(file)) cannot('a file is in the way');
  } else if (isDirectory(file)) {
    fail('it is a directory');
  }
  const target = createDir ? path.join(file, '.lstmgen-write-check') : file;
  const probe = tempPath(target);
  try {
    fs.closeSync(fs.openSync(probe, 'wx'));
  } catch (err) {
    fail(writeFailure(err, target, probe));
  }
  fs.rmSync(probe, { force: true });
}

/** Atomic file writes: the only place lstmgen writes model files and checkpoints. */

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, ModelFileError } from '../errors';

/** Why writing `file` failed, in words that name `file` (and its directory), never the temporary file. */
function writeFailure(err: unknown, file: string, tmp: string): string {
  const e = err as NodeJS.ErrnoException;
  const dir = JSON.stringify(path.dirname(file));
  switch (e.code) {
    case 'ENOENT':
      return `directory ${dir} does not exist`;
    case 'ENOTDIR':
      return `${dir} is not a directory`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied (directory ${dir})`;
    case 'EISDIR':
      return 'it is a directory';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOSPC':
      return 'no space left on device';
    default:
      return String(e?.message ?? err)
        .split(tmp)
        .join(file);
  }
}

/**
 * Write `bytes` to `file` atomically: they go to `file.tmp-<pid>-<rand>`, are fsynced, then renamed over
 * `file`, so readers see either the old file whole or the new one whole, never a torn write.
 * @param what names the file in the error message (e.g. `"model file"`, `"checkpoint"`).
 * @throws ModelFileError if the file cannot be written (the message names `file`, not the temporary file);
 *   the temporary file is removed and `file` is untouched.
 */
export async function writeFileAtomic(file: string, bytes: Uint8Array, what = 'model file'): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const handle = await fs.promises.open(tmp, 'w');
    try {
      await handle.writeFile(bytes);
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
 * Check, before any long work, that {@link writeFileAtomic} can write `file`: its directory exists (or, with
 * `createDir`, `file` is itself a directory that is created if missing) and is writable, and `file` is not a directory.
 * @param field the option that named the path (e.g. `"out"`, `"checkpointDir"`): the ConfigError's field.
 * @throws ConfigError naming `field` and saying what is wrong.
 */
export function assertWritable(file: string, field: string, createDir = false): void {
  const dir = createDir ? file : path.dirname(path.resolve(file));
  const fail: (why: string) => never = (why) => {
    throw new ConfigError(field, `cannot write ${JSON.stringify(file)}: ${why}`);
  };
  if (createDir) {
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const inTheWay = e.code === 'EEXIST' || e.code === 'ENOTDIR';
      const why = inTheWay
        ? 'a file is in the way'
        : e.code === 'EACCES' || e.code === 'EPERM'
          ? 'permission denied'
          : e.message;
      fail(`cannot create directory ${JSON.stringify(dir)} (${why})`);
    }
  }
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(dir);
  } catch {
    stat = undefined;
  }
  if (!stat) fail(`directory ${JSON.stringify(dir)} does not exist`);
  if (!stat.isDirectory()) fail(`${JSON.stringify(dir)} is not a directory`);
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    fail(
      e.code === 'EROFS'
        ? `directory ${JSON.stringify(dir)} is on a read-only file system`
        : `directory ${JSON.stringify(dir)} is not writable`,
    );
  }
  if (!createDir && fs.statSync(file, { throwIfNoEntry: false })?.isDirectory()) fail('it is a directory');
}

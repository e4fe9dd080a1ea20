/**
 * Reading a whole file that lstmgen is handed by path (a model, a tokenizer.json, a run log): only a regular file
 * is read, since a FIFO blocks a read forever (the event loop with it) and a device such as `/dev/zero` never ends.
 */
import * as fs from 'node:fs';
import { fileErrorReason } from '../errors';

/** What kind of non-regular file `stat` describes, for messages: `a FIFO (named pipe)`, `a character device`, ... */
export function fileKind(stat: fs.Stats): string {
  if (stat.isFIFO()) return 'a FIFO (named pipe)';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * The bytes of `file`, a regular file (a symbolic link to one is followed). Nothing is opened unless `file` is a
 * regular file.
 * @param fail makes the error to throw from the reason (`no such file`, `it is a directory`, `it is a FIFO (named
 *   pipe), not a regular file`, a permission message) and the error that caused it, if any; the caller's error
 *   names the file and the option.
 * @throws what `fail` returns, when `file` is missing, cannot be read, or is a directory, a FIFO, a device or a
 *   socket.
 */
export function readRegularFile(file: string, fail: (reason: string, cause?: unknown) => Error): Buffer {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    throw fail(fileErrorReason(err), err);
  }
  if (stat.isDirectory()) throw fail('it is a directory');
  if (!stat.isFile()) throw fail(`it is ${fileKind(stat)}, not a regular file`);
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw fail(fileErrorReason(err), err);
  }
}

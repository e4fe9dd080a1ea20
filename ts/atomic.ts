/** Atomic file writes: the only place lstmgen writes model files and checkpoints. */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ModelFileError } from './errors';

/**
 * Write `bytes` to `file` atomically: they go to `file.tmp-<pid>-<rand>`, are fsynced, then renamed over
 * `file`, so readers see either the old file whole or the new one whole, never a torn write.
 * @param what names the file in the error message (e.g. `"model file"`, `"checkpoint"`).
 * @throws ModelFileError if the file cannot be written; the temporary file is removed and `file` is untouched.
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
    throw new ModelFileError(`cannot write ${what} ${JSON.stringify(file)}: ${(err as Error).message}`, { cause: err });
  }
}

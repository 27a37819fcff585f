import fs from 'node:fs/promises';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { EnvironmentError } from '../errors.js';

/**
 * Every file the tool writes goes through here: a temp file in the same directory, fsync, rename
 * (write-file-atomic does exactly that), so an interrupted run leaves the old file or the new one,
 * never half of one. The mode is set on the temp file before the rename: a secret is never readable
 * by others, not even for an instant.
 */
export interface WriteOptions {
  mode: number;
  /** chown the file (root only: used to hand tls.key to the container user). */
  owner?: { uid: number; gid: number };
}

export async function writeFileSafely(file: string, data: string | Buffer, options: WriteOptions): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  try {
    await writeFileAtomic(file, data, {
      mode: options.mode,
      fsync: true,
      chown: options.owner,
    });
    // write-file-atomic keeps the mode of an existing file; the mode we were asked for wins.
    await fs.chmod(file, options.mode);
  } catch (err) {
    throw new EnvironmentError(
      `cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      'check that the deployment directory is writable by you (or pass --dir to another directory)',
      err,
    );
  }
}

export async function readTextIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new EnvironmentError(
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      'check the file permissions',
      err,
    );
  }
}

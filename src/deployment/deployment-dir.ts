import fs from 'node:fs/promises';
import path from 'node:path';
import { ValidationError } from '../errors.js';
import { asEnvironmentError } from './fs-errors.js';

/**
 * The deployment directory a command works on must exist: a missing one is a typo (exit 2, one line with
 * the caller's hint); a path that cannot even be examined (under a regular file, permission denied) is
 * the environment (exit 3).
 */
export async function requireDeploymentDir(dir: string, hint: string): Promise<string> {
  const root = path.resolve(dir);
  let st;
  try {
    st = await fs.stat(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ValidationError(`deployment directory ${root} does not exist`, hint, 'DIR_NOT_FOUND');
    throw asEnvironmentError(err, { action: 'use --dir', file: root });
  }
  if (!st.isDirectory()) throw new ValidationError(`deployment directory ${root} does not exist`, hint, 'DIR_NOT_FOUND');
  return root;
}

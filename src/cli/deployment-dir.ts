import fs from 'node:fs/promises';
import { asEnvironmentError } from '../deployment/fs-errors.js';
import { ValidationError } from '../errors.js';

/**
 * The stack commands (up, down, status, logs) need little from the deployment directory, some of them not
 * even its files, but a directory that does not exist is always a typo: say so instead of reporting an
 * absent stack.
 */
export async function requireDeploymentDir(dir: string): Promise<void> {
  let stat;
  try {
    stat = await fs.stat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw asEnvironmentError(err, { action: 'use --dir', file: dir });
    throw new ValidationError(`deployment directory ${dir} does not exist`, 'pass --dir to the directory mcp-tunnel init wrote (or set MCP_TUNNEL_DIR)', 'DIR_NOT_FOUND');
  }
  if (!stat.isDirectory()) throw new ValidationError(`--dir ${dir} is not a directory`, 'pass --dir to the directory mcp-tunnel init wrote', 'DIR_NOT_A_DIRECTORY');
}

import fs from 'node:fs/promises';
import { ensureDir } from './atomic-file.js';
import { asEnvironmentError } from './fs-errors.js';
import { writeFilesTogether, type TransactionHooks } from './transaction.js';

/**
 * A deployment write is planned first and applied second, so that init can show what it will do, ask
 * before replacing anything, and write nothing at all when the user says no or the input is bad.
 */
export interface PlannedFile {
  path: string;
  /** Path relative to the deployment directory, for messages. */
  label: string;
  content: string;
  mode: number;
  owner?: { uid: number; gid: number };
}

export type FileStatus = 'create' | 'replace' | 'unchanged' | 'repair';

export interface FileChange extends PlannedFile {
  /** create: absent; replace: content differs; repair: same content, wrong mode or owner; unchanged. */
  status: FileStatus;
}

export async function classifyFiles(files: PlannedFile[]): Promise<FileChange[]> {
  return Promise.all(
    files.map(async (file): Promise<FileChange> => {
      let current: string;
      let stat;
      try {
        [current, stat] = await Promise.all([fs.readFile(file.path, 'utf8'), fs.stat(file.path)]);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ...file, status: 'create' };
        throw asEnvironmentError(err, { action: 'read', file: file.path });
      }
      if (current !== file.content) return { ...file, status: 'replace' };
      const modeOk = (stat.mode & 0o777) === file.mode;
      const ownerOk = !file.owner || (stat.uid === file.owner.uid && stat.gid === file.owner.gid);
      return { ...file, status: modeOk && ownerOk ? 'unchanged' : 'repair' };
    }),
  );
}

/** Directories the plan needs, with their modes (data/ is private: see ownership.ts). */
export interface PlannedDir {
  path: string;
  mode: number;
  /** Created with `mode` when missing; an existing one keeps its mode (a directory init did not create). */
  keepExisting?: boolean;
}

/**
 * Applies the changes as ONE transaction (transaction.ts): an interrupted run is completed or rolled back
 * by the next one, so the CA never exists without its key, nor .env without data/tunnel-token. The
 * journal lives in the first planned directory (the deployment directory), which holds every file.
 */
export async function applyChanges(dirs: PlannedDir[], changes: FileChange[], operation = 'init', hooks?: TransactionHooks): Promise<void> {
  for (const dir of dirs) {
    // A directory made by another tool keeps its mode and owner (init adopts it as it is).
    if (dir.keepExisting && (await fs.stat(dir.path).catch(() => undefined))?.isDirectory()) continue;
    await ensureDir(dir.path, dir.mode);
  }
  const root = dirs[0]?.path;
  if (root === undefined) throw new Error('applyChanges needs the deployment directory first in dirs');
  const writes = changes.filter((c) => c.status === 'create' || c.status === 'replace');
  await writeFilesTogether(
    root,
    operation,
    writes.map((c) => ({ path: c.path, content: c.content, options: { mode: c.mode, owner: c.owner } })),
    hooks,
  );
  for (const change of changes) {
    if (change.status !== 'repair') continue;
    try {
      await fs.chmod(change.path, change.mode);
      if (change.owner) await fs.chown(change.path, change.owner.uid, change.owner.gid);
    } catch (err) {
      throw asEnvironmentError(err, { action: 'set the mode and owner of', file: change.path });
    }
  }
}

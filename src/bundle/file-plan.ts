import fs from 'node:fs/promises';
import path from 'node:path';
import { writeFileSafely } from './atomic-file.js';

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
        throw err;
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
 * Applies the changes in order. Each file is written atomically; the order is chosen by the caller so
 * that an interrupted run leaves complete files that a re-run picks up (CA first, compose.yaml last).
 */
export async function applyChanges(dirs: PlannedDir[], changes: FileChange[]): Promise<void> {
  for (const dir of dirs) {
    if (dir.keepExisting && (await fs.stat(dir.path).catch(() => undefined))?.isDirectory()) continue;
    await fs.mkdir(dir.path, { recursive: true, mode: dir.mode });
    await fs.chmod(dir.path, dir.mode);
  }
  for (const change of changes) {
    if (change.status === 'unchanged') continue;
    if (change.status === 'repair') {
      await fs.chmod(change.path, change.mode);
      if (change.owner) await fs.chown(change.path, change.owner.uid, change.owner.gid);
      continue;
    }
    await fs.mkdir(path.dirname(change.path), { recursive: true });
    await writeFileSafely(change.path, change.content, { mode: change.mode, owner: change.owner });
  }
}

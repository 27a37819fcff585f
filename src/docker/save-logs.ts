import fs from 'node:fs/promises';
import path from 'node:path';
import { writeFileSafely } from '../deployment/atomic-file.js';
import { EnvironmentError } from '../errors.js';
import type { DockerConnection } from './client.js';
import { readContainerLogs } from './logs.js';

/**
 * Evidence kept: `down` removes containers, and their logs go with them (the breach playbook's last step
 * is to review those logs). Each container's whole log, with Docker's timestamps, is saved first to
 * DIR/logs/<UTC time>-<service>.log, 0600 in a 0700 directory (the lines name hosts and paths), owned by
 * the deployment directory's owner when run as root.
 */
export interface SavedLog {
  service: string;
  container: string;
  file: string;
  lines: number;
}

/** 2026-12-01T020500Z: sortable, no ":" (not allowed in file names everywhere). */
export function logStamp(now: Date): string {
  return now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '');
}

export async function saveContainerLog(
  conn: DockerConnection,
  c: { id: string; name: string; service: string; number?: number },
  dir: string,
  now: Date,
): Promise<SavedLog> {
  const root = path.resolve(dir);
  const logsDir = path.join(root, 'logs');
  const st = await fs.stat(root);
  const owner = process.getuid?.() === 0 ? { uid: st.uid, gid: st.gid } : undefined;
  try {
    await fs.mkdir(logsDir, { recursive: true, mode: 0o700 });
    if (owner) await fs.chown(logsDir, owner.uid, owner.gid);
  } catch (err) {
    throw new EnvironmentError(`cannot create ${logsDir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, 'run as the owner of the deployment directory, or pass --no-save-logs', undefined, 'LOGS_DIR_FAILED');
  }
  const lines = await readContainerLogs(conn, c.id);
  const suffix = c.number && c.number > 1 ? `-${c.number}` : '';
  const file = path.join(logsDir, `${logStamp(now)}-${c.service || c.name}${suffix}.log`);
  const text = lines.map((l) => `${l.time ?? ''} ${l.stream} ${l.text}`).join('\n');
  await writeFileSafely(file, text ? `${text}\n` : '', { mode: 0o600, owner });
  return { service: c.service, container: c.name, file, lines: lines.length };
}

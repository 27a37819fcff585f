import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ComposeProject, ComposeService } from './compose-model.js';
import type { MountState } from './plan.js';

/**
 * What a service bind-mounts as single files (the proxy config), read now: their digest and newest
 * modification time. Directories are left out: data/ holds the certificates, which the proxies poll and
 * reload themselves, and a directory's content is not what a restart would apply.
 */
export async function readMountState(project: Pick<ComposeProject, 'dir'>, service: Pick<ComposeService, 'binds'>): Promise<MountState> {
  const hash = createHash('sha256');
  const files: string[] = [];
  let newest: number | undefined;
  for (const bind of [...service.binds].sort((a, b) => a.target.localeCompare(b.target))) {
    const st = await fs.stat(bind.source).catch(() => undefined);
    if (!st?.isFile()) continue;
    const content = await fs.readFile(bind.source).catch(() => undefined);
    if (content === undefined) continue;
    hash.update(`${bind.target}\0${content.length}\0`).update(content);
    files.push(path.relative(project.dir, bind.source) || bind.source);
    newest = Math.max(newest ?? 0, st.mtimeMs);
  }
  return files.length === 0 ? { files } : { digest: hash.digest('hex'), newestMtimeMs: newest, files };
}

export async function readMountStates(project: Pick<ComposeProject, 'dir' | 'services'>): Promise<Map<string, MountState>> {
  const states = new Map<string, MountState>();
  for (const svc of project.services) states.set(svc.name, await readMountState(project, svc));
  return states;
}

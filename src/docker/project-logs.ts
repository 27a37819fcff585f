import { ValidationError, EnvironmentError } from '../errors.js';
import { connectDocker, pingDocker, type DockerConnection } from './client.js';
import { resolveProjectName, type LoadOptions } from './compose-model.js';
import { inspectContainer, listProjectContainers } from './containers.js';
import { readContainerLogs, streamContainerLogs, type LogLine } from './logs.js';

/** `mcp-tunnel logs [SERVICE] [--follow] [--tail N]`: every service's log, line by line, tagged with its service. */
export interface ProjectLogLine extends LogLine {
  service: string;
  container: string;
}

export interface ProjectLogsOptions extends LoadOptions {
  /** Only these services (default: all). */
  services?: string[];
  follow?: boolean;
  /** The last N lines of each container. */
  tail?: number;
  since?: Date;
  onLine: (line: ProjectLogLine) => void;
  signal?: AbortSignal;
  conn?: DockerConnection;
}

/** Resolves when every log ended (or right away without follow); with follow, abort the signal to stop. */
export async function projectLogs(dir: string, options: ProjectLogsOptions): Promise<{ project: string; services: string[] }> {
  const conn = options.conn ?? connectDocker({ env: options.processEnv });
  await pingDocker(conn);
  const project = await resolveProjectName(dir, options);
  const containers = (await listProjectContainers(conn, project)).filter((c) => !c.oneoff);
  if (containers.length === 0) throw new EnvironmentError(`compose project ${project} has no containers`, 'start it: mcp-tunnel up', undefined, 'PROJECT_NOT_RUNNING');
  const known = [...new Set(containers.map((c) => c.service))];
  for (const s of options.services ?? []) {
    if (!known.includes(s)) throw new ValidationError(`no container for service "${s}" in compose project ${project}`, `services with containers: ${known.join(', ')}`, 'SERVICE_NO_CONTAINER');
  }
  const chosen = containers.filter((c) => !options.services?.length || options.services.includes(c.service));
  const tty = new Map<string, boolean>();
  for (const c of chosen) tty.set(c.id, (await inspectContainer(conn, c.id))?.tty ?? false);

  if (!options.follow) {
    // Interleave by timestamp, as they happened.
    const all: Array<ProjectLogLine & { order: number }> = [];
    let order = 0;
    for (const c of chosen) {
      for (const l of await readContainerLogs(conn, c.id, { tail: options.tail, since: options.since, tty: tty.get(c.id) })) {
        all.push({ ...l, service: c.service, container: c.name, order: order++ });
      }
    }
    const key = (t: string | undefined): string => (t ? t.replace(/(\.\d+)?Z$/, (_m, frac: string | undefined) => `${(frac ?? '.').padEnd(10, '0')}Z`) : '');
    all.sort((a, b) => {
      const ka = key(a.time);
      const kb = key(b.time);
      return ka && kb && ka !== kb ? (ka < kb ? -1 : 1) : a.order - b.order;
    });
    for (const { order: _order, ...line } of all) options.onLine(line);
    return { project, services: [...new Set(chosen.map((c) => c.service))] };
  }
  await Promise.all(
    chosen.map((c) =>
      streamContainerLogs(conn, c.id, {
        follow: true,
        tail: options.tail,
        since: options.since,
        tty: tty.get(c.id),
        signal: options.signal,
        onLine: (l) => options.onLine({ ...l, service: c.service, container: c.name }),
      }),
    ),
  );
  return { project, services: [...new Set(chosen.map((c) => c.service))] };
}

import type Docker from 'dockerode';
import { COMPOSE_SERVICES } from '../deployment/compose-file.js';
import { asDockerError, statusCode, type DockerConnection } from './client.js';
import type { ComposeProject } from './compose-model.js';
import { LABELS, projectFilter, serviceFilter } from './labels.js';

/** A compose project's container as listed by the daemon (whoever created it: mcp-tunnel or compose). */
export interface ProjectContainer {
  id: string;
  name: string;
  service: string;
  /** Docker's State: created, running, paused, restarting, removing, exited, dead. */
  state: string;
  /** Docker's one-line Status ("Up 2 minutes (healthy)"). */
  status: string;
  image: string;
  labels: Record<string, string>;
  networkMode: string;
  number: number;
  oneoff: boolean;
  created: number;
}

function fromInfo(c: Docker.ContainerInfo): ProjectContainer {
  const labels = c.Labels ?? {};
  return {
    id: c.Id,
    name: (c.Names?.[0] ?? c.Id).replace(/^\//, ''),
    service: labels[LABELS.service] ?? '',
    state: c.State,
    status: c.Status,
    image: c.Image,
    labels,
    networkMode: c.HostConfig?.NetworkMode ?? '',
    number: Number(labels[LABELS.containerNumber] ?? '1') || 1,
    oneoff: labels[LABELS.oneoff] === 'True',
    created: c.Created,
  };
}

async function list(conn: DockerConnection, filters: Record<string, string[]>): Promise<ProjectContainer[]> {
  try {
    const infos = await conn.docker.listContainers({ all: true, filters });
    return infos.map(fromInfo).sort((a, b) => a.number - b.number || a.created - b.created);
  } catch (err) {
    throw asDockerError(err, conn, 'listing containers');
  }
}

/** Every container labelled with the project (services and one-off runs), running or not. */
export function listProjectContainers(conn: DockerConnection, project: string): Promise<ProjectContainer[]> {
  return list(conn, projectFilter(project));
}

/** The service's (non one-off) containers, lowest container number first. */
export function listServiceContainers(conn: DockerConnection, project: string, service: string): Promise<ProjectContainer[]> {
  return list(conn, serviceFilter(project, service));
}

export interface ContainerDetails {
  id: string;
  name: string;
  running: boolean;
  restarting: boolean;
  status: string;
  /** Docker health status when the container has a healthcheck: starting, healthy, unhealthy. */
  health?: string;
  /** The last healthcheck outputs (newest last). */
  healthLog: string[];
  exitCode: number;
  error: string;
  startedAt?: Date;
  finishedAt?: Date;
  restartCount: number;
  hasHealthcheck: boolean;
  tty: boolean;
  networkMode: string;
  labels: Record<string, string>;
  ports: Array<{ container: string; hostIp: string; hostPort: string }>;
  /** IP addresses per network. */
  networks: Record<string, string>;
}

const parseDockerDate = (s: string | undefined): Date | undefined => {
  if (!s || s.startsWith('0001-')) return undefined;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? undefined : d;
};

/** docker inspect, reduced; undefined when the container is gone. */
export async function inspectContainer(conn: DockerConnection, id: string): Promise<ContainerDetails | undefined> {
  let info: Docker.ContainerInspectInfo;
  try {
    info = await conn.docker.getContainer(id).inspect();
  } catch (err) {
    if (statusCode(err) === 404) return undefined;
    throw asDockerError(err, conn, `inspecting container ${id.slice(0, 12)}`);
  }
  const health = (info.State as { Health?: { Status?: string; Log?: Array<{ Output?: string }> } }).Health;
  const test = info.Config.Healthcheck?.Test;
  const ports: ContainerDetails['ports'] = [];
  for (const [container, bindings] of Object.entries(info.NetworkSettings?.Ports ?? {})) {
    for (const b of bindings ?? []) ports.push({ container, hostIp: b.HostIp, hostPort: b.HostPort });
  }
  const networks: Record<string, string> = {};
  for (const [name, n] of Object.entries(info.NetworkSettings?.Networks ?? {})) networks[name] = n.IPAddress;
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ''),
    running: info.State.Running,
    restarting: info.State.Restarting,
    status: info.State.Status,
    health: health?.Status,
    healthLog: (health?.Log ?? []).map((l) => (l.Output ?? '').trim()).filter(Boolean),
    exitCode: info.State.ExitCode,
    error: info.State.Error ?? '',
    startedAt: parseDockerDate(info.State.StartedAt),
    finishedAt: parseDockerDate(info.State.FinishedAt),
    restartCount: info.RestartCount ?? 0,
    hasHealthcheck: Array.isArray(test) && test.length > 0 && test[0] !== 'NONE',
    tty: Boolean(info.Config.Tty),
    networkMode: info.HostConfig.NetworkMode ?? '',
    labels: info.Config.Labels ?? {},
    ports,
    networks,
  };
}

/** Which service is the proxy and which is cloudflared (by compose.yaml's wiring, else by the standard names). */
export interface StackRoles {
  proxy?: string;
  cloudflared?: string;
}

export function stackRoles(project: ComposeProject | undefined, serviceNames: readonly string[] = []): StackRoles {
  if (project) {
    const names = project.services.map((s) => s.name);
    const cf =
      project.services.find((s) => s.name === COMPOSE_SERVICES.cloudflared) ??
      project.services.find((s) => s.networkMode.kind === 'service' && /cloudflared/.test(s.image));
    const proxy = cf?.networkMode.kind === 'service' ? cf.networkMode.service : names.includes(COMPOSE_SERVICES.proxy) ? COMPOSE_SERVICES.proxy : undefined;
    return { proxy, cloudflared: cf?.name };
  }
  return {
    proxy: serviceNames.includes(COMPOSE_SERVICES.proxy) ? COMPOSE_SERVICES.proxy : undefined,
    cloudflared: serviceNames.includes(COMPOSE_SERVICES.cloudflared) ? COMPOSE_SERVICES.cloudflared : undefined,
  };
}

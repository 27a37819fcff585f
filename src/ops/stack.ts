import { COMPOSE_SERVICES, RENEWER_SERVICE } from '../deployment/compose-file.js';
import { asDockerError, connectDocker, pingDocker, type DockerConnection } from '../docker/client.js';
import { resolveProjectName } from '../docker/compose-model.js';
import { inspectContainer, listServiceContainers, type ContainerDetails } from '../docker/containers.js';
import { countRegistrations, FULL_STRENGTH_CONNECTIONS, readContainerLogs } from '../docker/logs.js';
import { EnvironmentError, UserError } from '../errors.js';
import { restartCommand, startHint } from '../docker/compose-command.js';

/**
 * What the day-2 commands need from the running stack: its state (doctor, routes, revoke) and one
 * operation, restartProxyStack (routes). Connection, project name and container lookup are src/docker's;
 * the restart is done here with the Engine API until src/docker exports its own restart helper, and is
 * kept behind this one function so that swap touches nothing else.
 */
/** cloudflared is healthy once four connections are registered (docs/contract.md §1). */
export const HEALTHY_CONNECTIONS = FULL_STRENGTH_CONNECTIONS;

export interface StackState {
  project: string;
  /** undefined when the service has no container. */
  proxy?: ContainerDetails;
  cloudflared?: ContainerDetails;
  renewer?: ContainerDetails;
}

export async function connectReachableDocker(timeoutMs = 3_000): Promise<DockerConnection> {
  const conn = connectDocker();
  await pingDocker(conn, timeoutMs);
  return conn;
}

async function serviceContainer(conn: DockerConnection, project: string, service: string): Promise<ContainerDetails | undefined> {
  const found = await listServiceContainers(conn, project, service);
  const best = found.find((c) => c.state === 'running') ?? found[0];
  return best ? inspectContainer(conn, best.id) : undefined;
}

export async function readStackState(dir: string, conn: DockerConnection): Promise<StackState> {
  const project = await resolveProjectName(dir);
  const [proxy, cloudflared, renewer] = await Promise.all([
    serviceContainer(conn, project, COMPOSE_SERVICES.proxy),
    serviceContainer(conn, project, COMPOSE_SERVICES.cloudflared),
    serviceContainer(conn, project, RENEWER_SERVICE),
  ]);
  return { project, proxy, cloudflared, renewer };
}

/** Connections cloudflared has registered (and not lost) since it last started, from its log (src/docker). */
export async function cloudflaredConnections(conn: DockerConnection, container: ContainerDetails): Promise<number> {
  const lines = await readContainerLogs(conn, container.id, { since: container.startedAt, tty: container.tty });
  return countRegistrations(lines);
}

/** The proxy container's address on its compose network, for a probe from this host. */
export function proxyAddress(proxy: ContainerDetails): string | undefined {
  return Object.values(proxy.networks).find((ip) => ip);
}

export interface RestartResult {
  restarted: string[];
  proxy: ContainerDetails;
  /** false when the proxy has a healthcheck that did not pass within waitMs. */
  healthy: boolean;
}

async function waitUntil(conn: DockerConnection, id: string, waitMs: number, ok: (d: ContainerDetails) => boolean | undefined): Promise<ContainerDetails | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const d = await inspectContainer(conn, id);
    if (!d) return undefined;
    const verdict = ok(d);
    if (verdict !== undefined) return d;
    if (Date.now() >= deadline) return d;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Restarts the proxy (so it reads the edited config: the official proxy does not reload it) and then
 * cloudflared, which lives in the proxy's network namespace and must join the new one. Waits for the
 * proxy to be healthy (when it has a healthcheck) before restarting cloudflared. Throws EnvironmentError
 * when the stack is not running.
 */
export async function restartProxyStack(dir: string, options: { conn?: DockerConnection; stopTimeoutSec?: number; waitMs?: number } = {}): Promise<RestartResult> {
  const conn = options.conn ?? (await connectReachableDocker());
  const state = await readStackState(dir, conn);
  if (!state.proxy?.running) throw new EnvironmentError(`the ${COMPOSE_SERVICES.proxy} container of project ${state.project} is not running`, startHint(), undefined, 'SERVICE_NOT_RUNNING');
  const t = options.stopTimeoutSec ?? 30;
  const restarted: string[] = [];
  try {
    await conn.docker.getContainer(state.proxy.id).restart({ t });
    restarted.push(state.proxy.name);
  } catch (err) {
    throw asDockerError(err, conn, `restarting ${state.proxy.name}`, `restart it by hand: ${restartCommand([COMPOSE_SERVICES.proxy, COMPOSE_SERVICES.cloudflared])}`);
  }
  const after = await waitUntil(conn, state.proxy.id, options.waitMs ?? 60_000, (d) => {
    if (!d.running && !d.restarting) return false;
    if (!d.hasHealthcheck) return d.running ? true : undefined;
    if (d.health === 'healthy') return true;
    if (d.health === 'unhealthy') return false;
    return undefined;
  });
  if (!after) throw new EnvironmentError(`${state.proxy.name} disappeared while restarting`, 'start the stack again: mcp-tunnel up', undefined, 'SERVICE_NOT_RUNNING');
  const healthy = after.running && (!after.hasHealthcheck || after.health === 'healthy');
  if (state.cloudflared) {
    try {
      await conn.docker.getContainer(state.cloudflared.id).restart({ t });
      restarted.push(state.cloudflared.name);
    } catch (err) {
      throw asDockerError(err, conn, `restarting ${state.cloudflared.name}`, `restart it by hand: ${restartCommand([COMPOSE_SERVICES.cloudflared])}`);
    }
  }
  return { restarted, proxy: after, healthy };
}

/** Whether the stack runs, without failing when Docker is away (for hints). */
export async function stackRunning(dir: string): Promise<{ running: boolean; detail?: string }> {
  try {
    const conn = await connectReachableDocker(2_000);
    const state = await readStackState(dir, conn);
    return { running: Boolean(state.proxy?.running || state.cloudflared?.running) };
  } catch (err) {
    return { running: false, detail: err instanceof UserError ? err.message : String(err) };
  }
}

export interface LocatedProxy {
  url: string;
  /** For the user: "the mcp-proxy container on its compose network". */
  how: string;
}

/**
 * Where to reach the running proxy from this host, as `routes` does: the container's address on its
 * compose network (a default deployment publishes no port), else a port it publishes for listenPort.
 * undefined when Docker or the container is not there (the caller falls back to its default).
 */
export async function locateProxy(dir: string, listenPort: number): Promise<LocatedProxy | undefined> {
  let state: StackState;
  try {
    const conn = await connectReachableDocker(2_000);
    state = await readStackState(dir, conn);
  } catch {
    return undefined;
  }
  const proxy = state.proxy;
  if (!proxy?.running) return undefined;
  const ip = proxyAddress(proxy);
  if (ip) return { url: `ws://${ip}:${listenPort}/`, how: `the ${proxy.name} container's address on its network` };
  const published = proxy.ports.find((p) => p.container === `${listenPort}/tcp` && p.hostPort);
  if (published) {
    const host = !published.hostIp || published.hostIp === '0.0.0.0' || published.hostIp === '::' ? '127.0.0.1' : published.hostIp;
    return { url: `ws://${host.includes(':') ? `[${host}]` : host}:${published.hostPort}/`, how: `the port ${proxy.name} publishes` };
  }
  return undefined;
}

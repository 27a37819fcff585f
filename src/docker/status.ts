import fs from 'node:fs/promises';
import { deploymentPaths } from '../deployment/layout.js';
import { parseProxyConfig } from '../deployment/proxy-config.js';
import { UserError } from '../errors.js';
import { inspectCertificate, isRenewalDue } from '../pki/index.js';
import { connectDocker, daemonInfo, pingDocker, type DockerConnection } from './client.js';
import { loadComposeProject, resolveProjectName, type ComposeProject, type LoadOptions } from './compose-model.js';
import { configHash } from './config-hash.js';
import { inspectContainer, listProjectContainers, stackRoles } from './containers.js';
import { inspectImageId } from './images.js';
import { LABELS } from './labels.js';
import { readEnvDrift } from './env-drift.js';
import { readMountState } from './mounts.js';
import { mountsChanged } from './plan.js';
import { countRegistrations, FULL_STRENGTH_CONNECTIONS, readContainerLogs } from './logs.js';

/**
 * `mcp-tunnel status --json` prints exactly this object (the documented shape; add fields, never rename).
 * Times are ISO 8601 strings; durations are whole seconds.
 */
export interface StackStatus {
  /** Compose project name (COMPOSE_PROJECT_NAME or the directory name). */
  project: string;
  /** The deployment directory, absolute. */
  dir: string;
  /** running: every service running (and healthy / registered); degraded: running with a problem; stopped: containers exist, none running; absent: no container. */
  overall: 'running' | 'degraded' | 'stopped' | 'absent';
  /** source: DOCKER_HOST, DOCKER_CONTEXT, docker context (the docker CLI's current context) or default. */
  docker: { endpoint: string; source?: string; context?: string; serverVersion?: string; rootless?: boolean };
  /** Variables set in the shell with another value than .env (the shell wins for compose): names only. */
  envDrift: Array<{ name: string; message: string; hint: string }>;
  /** One entry per compose service (and per stray container of the project), in compose's start order. */
  services: ServiceStatus[];
  routes: RouteStatus[];
  /** Why routes could not be read (config/mcp-proxy.yaml missing or invalid). */
  routesError?: string;
  certificate?: CertificateStatus;
  certificateError?: string;
  /** cloudflared's registered connections since its start (4 is full strength). */
  tunnel?: TunnelStatus;
  /** compose.yaml could not be loaded (containers are still listed from their labels). */
  composeError?: string;
  /** Lines a person should act on, most important first. */
  problems: string[];
}

export interface ServiceStatus {
  service: string;
  /** Container name, or undefined when the service has no container. */
  container?: string;
  id?: string;
  image?: string;
  /** Docker's state (running, exited, restarting, created, paused, dead), or "missing". */
  state: string;
  /** Docker health (healthy, unhealthy, starting) when the container has a healthcheck. */
  health?: string;
  startedAt?: string;
  /** Seconds since the container started, when running. */
  uptimeSeconds?: number;
  restarts: number;
  exitCode?: number;
  /** Published ports, "127.0.0.1:32768->8081/tcp". */
  ports: string[];
  /** false when the running container's config hash differs from compose.yaml's (run mcp-tunnel up); undefined when unknown. */
  upToDate?: boolean;
  /** true when a file the container mounts (config/mcp-proxy.yaml) changed since it started: run mcp-tunnel up. */
  configChangedSinceStart?: boolean;
  /** Who created it, from the container's name: mcp-tunnel (<project>-<service>-N) or docker-compose 1.x (<project>_<service>_N). */
  createdBy?: 'mcp-tunnel or docker compose v2' | 'docker-compose v1';
}

export interface RouteStatus {
  /** The route key as configured ("docs"). */
  name: string;
  /** The hostname it serves ("docs.abcd1234.tunnel.anthropic.com"). */
  host: string;
  upstream: string;
}

export interface CertificateStatus {
  file: string;
  notAfter: string;
  /** Whole days until notAfter (negative once expired). */
  daysLeft: number;
  expired: boolean;
  /** In the renewal window (the rule renew-cert, init and doctor use too). */
  renewalDue: boolean;
  dnsNames: string[];
}

export interface TunnelStatus {
  service: string;
  registered: number;
  full: number;
  state: 'connected' | 'degraded' | 'disconnected' | 'not running';
}

export interface StatusOptions extends LoadOptions {
  conn?: DockerConnection;
  now?: Date;
}

async function readRoutes(dir: string): Promise<{ routes: RouteStatus[]; error?: string }> {
  const paths = deploymentPaths(dir);
  let text: string;
  try {
    text = await fs.readFile(paths.proxyConfig, 'utf8');
  } catch (err) {
    return { routes: [], error: `cannot read config/mcp-proxy.yaml: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  try {
    const config = parseProxyConfig(text);
    const routes = [...config.routes.entries()].map(([name, up]) => ({
      name,
      host: name.includes('.') || !config.tunnelDomain ? name : `${name}.${config.tunnelDomain}`,
      upstream: up.url,
    }));
    return { routes };
  } catch (err) {
    return { routes: [], error: `config/mcp-proxy.yaml: ${err instanceof UserError ? err.message : String(err)}` };
  }
}

export async function readCertificate(dir: string, now: Date): Promise<{ certificate?: CertificateStatus; error?: string }> {
  const file = deploymentPaths(dir).tlsCert;
  let pem: string;
  try {
    pem = await fs.readFile(file, 'utf8');
  } catch (err) {
    return { error: `cannot read data/tls.crt: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  try {
    const info = inspectCertificate(pem, 'data/tls.crt');
    const msLeft = info.notAfter.getTime() - now.getTime();
    return {
      certificate: {
        file,
        notAfter: info.notAfter.toISOString(),
        daysLeft: Math.floor(msLeft / 86_400_000),
        expired: msLeft <= 0,
        renewalDue: isRenewalDue(info.notAfter, now),
        dnsNames: info.dnsNames,
      },
    };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** Everything `status` shows, from Docker, compose.yaml, config/mcp-proxy.yaml and data/tls.crt. Never prints. */
export async function stackStatus(dir: string, options: StatusOptions = {}): Promise<StackStatus> {
  const now = options.now ?? new Date();
  const conn = options.conn ?? connectDocker({ env: options.processEnv });
  await pingDocker(conn);
  const info = await daemonInfo(conn).catch(() => undefined);
  const projectName = await resolveProjectName(dir, options);
  let project: ComposeProject | undefined;
  let composeError: string | undefined;
  try {
    project = await loadComposeProject(dir, options);
  } catch (err) {
    composeError = err instanceof Error ? err.message : String(err);
  }
  const containers = (await listProjectContainers(conn, projectName)).filter((c) => !c.oneoff);
  const serviceNames = project ? project.services.map((s) => s.name) : [];
  for (const c of containers) if (!serviceNames.includes(c.service)) serviceNames.push(c.service);
  const roles = stackRoles(project, serviceNames);

  const services: ServiceStatus[] = [];
  const problems: string[] = [];
  let tunnel: TunnelStatus | undefined;
  for (const name of serviceNames) {
    const c = containers.find((x) => x.service === name);
    if (!c) {
      services.push({ service: name, state: 'missing', restarts: 0, ports: [] });
      continue;
    }
    const d = await inspectContainer(conn, c.id);
    if (!d) {
      services.push({ service: name, state: 'missing', restarts: 0, ports: [] });
      continue;
    }
    const svc = project?.services.find((s) => s.name === name);
    let upToDate: boolean | undefined;
    if (svc) {
      const imageId = await inspectImageId(conn, svc.image).catch(() => undefined);
      if (imageId) upToDate = c.labels[LABELS.configHash] === configHash(project!, svc, imageId);
    }
    const running = d.running && !d.restarting;
    const mounts = svc && running ? await readMountState(project!, svc) : undefined;
    const configChanged = mounts ? mountsChanged({ labels: c.labels, startedAtMs: d.startedAt?.getTime() }, mounts) : undefined;
    services.push({
      service: name,
      container: d.name,
      id: d.id,
      image: c.image,
      state: d.restarting ? 'restarting' : d.status,
      ...(d.hasHealthcheck && d.health ? { health: d.health } : {}),
      ...(d.startedAt ? { startedAt: d.startedAt.toISOString() } : {}),
      ...(running && d.startedAt ? { uptimeSeconds: Math.max(0, Math.floor((now.getTime() - d.startedAt.getTime()) / 1000)) } : {}),
      restarts: d.restartCount,
      ...(!running ? { exitCode: d.exitCode } : {}),
      ports: d.ports.filter((p) => p.hostPort).map((p) => `${p.hostIp || '0.0.0.0'}:${p.hostPort}->${p.container}`),
      ...(upToDate !== undefined ? { upToDate } : {}),
      ...(configChanged !== undefined && mounts?.digest ? { configChangedSinceStart: configChanged } : {}),
      createdBy: d.name === `${projectName}_${name}_${c.number}` ? 'docker-compose v1' : 'mcp-tunnel or docker compose v2',
    });
    if (!running) problems.push(`${name} is ${d.restarting ? 'restarting' : d.status} (exit code ${d.exitCode}): mcp-tunnel logs ${name}`);
    else if (d.hasHealthcheck && d.health === 'unhealthy') problems.push(`${name} is unhealthy: mcp-tunnel logs ${name}`);
    if (upToDate === false) problems.push(`${name} runs an older configuration than compose.yaml/.env: run mcp-tunnel up`);
    if (configChanged) problems.push(`${name}: config changed since start (${mounts!.files.join(', ')}): run mcp-tunnel up to apply it`);
    if (name === roles.cloudflared) {
      const registered = running ? countRegistrations(await readContainerLogs(conn, d.id, { since: d.startedAt, tty: d.tty })) : 0;
      const state: TunnelStatus['state'] = !running ? 'not running' : registered >= FULL_STRENGTH_CONNECTIONS ? 'connected' : registered > 0 ? 'degraded' : 'disconnected';
      tunnel = { service: name, registered, full: FULL_STRENGTH_CONNECTIONS, state };
      if (running && state !== 'connected') problems.push(`${name} has ${registered} of ${FULL_STRENGTH_CONNECTIONS} tunnel connections: mcp-tunnel logs ${name}`);
    }
  }
  for (const s of services) if (s.state === 'missing' && containers.length > 0) problems.push(`${s.service} has no container: run mcp-tunnel up`);

  const { routes, error: routesError } = await readRoutes(dir);
  const { certificate, error: certificateError } = await readCertificate(dir, now);
  if (certificate?.expired) problems.push(`data/tls.crt expired on ${certificate.notAfter}: mcp-tunnel renew-cert`);
  else if (certificate?.renewalDue) problems.push(`data/tls.crt expires in ${certificate.daysLeft} days: mcp-tunnel renew-cert`);
  if (composeError) problems.push(`compose.yaml: ${composeError}`);
  const drift = await readEnvDrift(dir, options.processEnv ?? process.env);
  for (const d of drift) problems.push(`${d.message}: ${d.hint}`);

  const present = services.filter((s) => s.state !== 'missing');
  const runningCount = present.filter((s) => s.state === 'running').length;
  let overall: StackStatus['overall'];
  if (present.length === 0) overall = 'absent';
  else if (runningCount === 0) overall = 'stopped';
  else if (
    runningCount === services.length &&
    services.every((s) => s.health === undefined || s.health === 'healthy') &&
    (!tunnel || tunnel.state === 'connected')
  )
    overall = 'running';
  else overall = 'degraded';

  return {
    project: projectName,
    dir: deploymentPaths(dir).dir,
    overall,
    docker: { endpoint: conn.endpoint, ...(conn.source ? { source: conn.source } : {}), ...(conn.context ? { context: conn.context } : {}), ...(info ? { serverVersion: info.serverVersion, rootless: info.rootless } : {}) },
    envDrift: drift,
    services,
    routes,
    ...(routesError ? { routesError } : {}),
    ...(certificate ? { certificate } : {}),
    ...(certificateError ? { certificateError } : {}),
    ...(tunnel ? { tunnel } : {}),
    ...(composeError ? { composeError } : {}),
    problems,
  };
}

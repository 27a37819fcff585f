import { EnvironmentError, UserError, ValidationError } from '../errors.js';
import { apiMessage, asDockerError, connectDocker, daemonInfo, pingDocker, statusCode, type DaemonInfo, type DockerConnection } from './client.js';
import { loadComposeProject, resolveProjectName, type ComposeProject, type ComposeService, type LoadOptions } from './compose-model.js';
import { configHash } from './config-hash.js';
import { inspectContainer, listProjectContainers, listServiceContainers, stackRoles, type ProjectContainer } from './containers.js';
import { noEvents, type EventSink } from './events.js';
import { waitForReady, waitForRegistrations, type RegistrationResult, type WaitTarget } from './health.js';
import { ensureServiceImage } from './images.js';
import { LABELS, containerName, networkLabels } from './labels.js';
import { runPreflight, type PreflightFinding } from './preflight.js';
import { readEnvDrift } from './env-drift.js';
import { readMountStates } from './mounts.js';
import { saveContainerLog, type SavedLog } from './save-logs.js';
import { planConverge, type ObservedContainer, type ServicePlan } from './plan.js';
import { containerCreateOptions } from './specs.js';

/**
 * `up` and `down` through the Engine API, converging like `docker compose up -d`: observe the containers,
 * plan (plan.ts: a container is recreated when its config hash changed, a service it depends on was
 * recreated, or a mounted file changed since it started; started when stopped; left alone otherwise),
 * then execute the plan.
 */

export const DEFAULT_UP_TIMEOUT_MS = 120_000;

export interface StackContext {
  conn: DockerConnection;
  info?: DaemonInfo;
  project: ComposeProject;
}

export interface CommonOptions extends LoadOptions {
  onEvent?: EventSink;
  /** An existing connection (default: DOCKER_HOST or the default socket). */
  conn?: DockerConnection;
}

/** Connects (one clear line when Docker is unreachable) and loads the compose project. */
export async function openStack(dir: string, options: CommonOptions = {}): Promise<StackContext> {
  const conn = options.conn ?? connectDocker({ env: options.processEnv });
  await pingDocker(conn);
  const info = await daemonInfo(conn).catch(() => undefined);
  const project = await loadComposeProject(dir, options);
  return { conn, info, project };
}

export interface ContainerOutcome {
  service: string;
  name: string;
  id: string;
  action: 'created' | 'recreated' | 'started' | 'unchanged';
  reason?: string;
}

export interface UpOptions extends CommonOptions {
  /** Wait for the proxy's readiness and cloudflared's registrations (default true). */
  wait?: boolean;
  /** Bound for every wait (dependencies' health, readiness, registrations). Default 120 s. */
  timeoutMs?: number;
  /** Build images with build: even when they exist (up --build). */
  build?: boolean;
  /** Recreate these services even when unchanged (rotate-token: cloudflared). */
  forceRecreate?: string[];
  /** Only these services (and nothing else is touched); default all. */
  services?: string[];
  /** Once cloudflared registered at least one connection, wait this long for full strength. Default 20 s. */
  settleMs?: number;
}

export interface UpResult {
  project: string;
  dir: string;
  containers: ContainerOutcome[];
  warnings: PreflightFinding[];
  proxy?: { service: string; state: 'healthy' | 'running' };
  tunnel?: { service: string } & RegistrationResult;
}

async function ensureNetwork(conn: DockerConnection, project: ComposeProject, emit: EventSink): Promise<void> {
  const name = project.networkName;
  try {
    const info = (await conn.docker.getNetwork(name).inspect()) as { Labels?: Record<string, string> | null };
    const labels = info.Labels ?? {};
    if (labels[LABELS.project] !== undefined && labels[LABELS.project] !== project.name) {
      throw new EnvironmentError(`network ${name} belongs to another compose project (${labels[LABELS.project]})`, 'set a different COMPOSE_PROJECT_NAME in .env', undefined, 'NETWORK_CONFLICT');
    }
    emit({ type: 'network', name, action: 'exists' });
    return;
  } catch (err) {
    if (statusCode(err) !== 404) throw asDockerError(err, conn, `inspecting network ${name}`);
  }
  try {
    await conn.docker.createNetwork({ Name: name, Driver: 'bridge', Labels: networkLabels(project.name), Attachable: true, CheckDuplicate: true });
  } catch (err) {
    if (statusCode(err) !== 409) throw asDockerError(err, conn, `creating network ${name}`);
  }
  emit({ type: 'network', name, action: 'created' });
}

async function stopAndRemove(
  conn: DockerConnection,
  c: Pick<ProjectContainer, 'id' | 'name' | 'service' | 'state'>,
  emit: EventSink,
  timeoutSeconds?: number,
  /** Runs once the container is stopped, before it is removed (down: save its log). */
  beforeRemove?: () => Promise<void>,
): Promise<void> {
  const container = conn.docker.getContainer(c.id);
  if (c.state === 'running' || c.state === 'restarting' || c.state === 'paused') {
    emit({ type: 'container', service: c.service, name: c.name, action: 'stopping' });
    try {
      await container.stop(timeoutSeconds === undefined ? {} : { t: timeoutSeconds });
    } catch (err) {
      // 304: already stopped; 404: already gone
      if (statusCode(err) !== 304 && statusCode(err) !== 404) throw asDockerError(err, conn, `stopping ${c.name}`);
    }
    emit({ type: 'container', service: c.service, name: c.name, action: 'stopped' });
  }
  if (beforeRemove) await beforeRemove();
  try {
    await container.remove({ force: true, v: false });
  } catch (err) {
    if (statusCode(err) !== 404 && statusCode(err) !== 409) throw asDockerError(err, conn, `removing ${c.name}`);
  }
  emit({ type: 'container', service: c.service, name: c.name, action: 'removed' });
}

/** Observe: the containers of every service as they are, with their last start time. */
async function observe(conn: DockerConnection, project: ComposeProject): Promise<Map<string, ObservedContainer[]>> {
  const observed = new Map<string, ObservedContainer[]>();
  for (const svc of project.services) {
    const containers = await listServiceContainers(conn, project.name, svc.name);
    const withStart: ObservedContainer[] = [];
    for (const c of containers) {
      const details = c.state === 'running' ? await inspectContainer(conn, c.id) : undefined;
      withStart.push({ id: c.id, name: c.name, state: c.state, labels: c.labels, networkMode: c.networkMode, startedAtMs: details?.startedAt?.getTime() });
    }
    observed.set(svc.name, withStart);
  }
  return observed;
}

/** Creates/recreates/starts what the plan says. Returns what happened per service, in start order. */
async function execute(ctx: StackContext, plans: ServicePlan[], observed: Map<string, ObservedContainer[]>, options: UpOptions, deadline: number): Promise<ContainerOutcome[]> {
  const { conn, project } = ctx;
  const emit = options.onEvent ?? noEvents;
  const currentIds = new Map<string, string>();
  for (const [service, containers] of observed) if (containers[0]) currentIds.set(service, containers[0].id);
  const byName = new Map(project.services.map((s) => [s.name, s]));

  // Take down what is replaced, dependents first (cloudflared before the proxy whose namespace it uses).
  for (const plan of [...plans].reverse()) {
    for (const extra of plan.extras) await stopAndRemove(conn, { ...extra, service: plan.service }, emit);
    if (plan.action === 'recreate' && plan.existing && !plan.overlap) {
      await stopAndRemove(conn, { ...plan.existing, service: plan.service }, emit);
      currentIds.delete(plan.service);
    }
  }
  const outcomes: ContainerOutcome[] = [];
  const roles = stackRoles(project);
  for (const plan of plans) {
    const svc = byName.get(plan.service)!;
    if (plan.action !== 'noop') await waitForDependencies(ctx, svc, currentIds, deadline, emit, roles);
    const name = plan.existing && plan.action !== 'recreate' ? plan.existing.name : containerName(project.name, svc.name);
    if (plan.action === 'create' || plan.action === 'recreate') {
      if (svc.networkMode.kind === 'service' && !currentIds.has(svc.networkMode.service)) {
        throw new EnvironmentError(
          `${svc.name} shares the network namespace of ${svc.networkMode.service}, which has no container`,
          'start the whole stack: mcp-tunnel up',
          undefined, 'SERVICE_DEPENDENCY_MISSING',
        );
      }
      const opts = containerCreateOptions(svc, { project, configHash: plan.hash, mountsDigest: plan.mountsDigest, serviceContainerIds: currentIds });
      const old = plan.overlap ? plan.existing : undefined;
      if (old) {
        // compose's temporary name for a container being replaced: <short id>_<name>
        await conn.docker
          .getContainer(old.id)
          .rename({ name: `${old.id.slice(0, 12)}_${old.name}` })
          .catch((err: unknown) => {
            throw asDockerError(err, conn, `renaming ${old.name} aside`);
          });
      }
      let id: string;
      try {
        id = (await conn.docker.createContainer(opts)).id;
        if (old) {
          try {
            await startContainer(ctx, id, opts.name!);
          } catch (err) {
            await conn.docker.getContainer(id).remove({ force: true }).catch(() => undefined);
            throw err;
          }
        }
      } catch (err) {
        if (old) await conn.docker.getContainer(old.id).rename({ name: old.name }).catch(() => undefined);
        if (err instanceof UserError) throw err;
        if (statusCode(err) === 409) {
          throw new EnvironmentError(
            `a container named ${opts.name} already exists but does not belong to compose project ${project.name}`,
            `remove it (docker rm -f ${opts.name}) or set a different COMPOSE_PROJECT_NAME in .env`,
            err,
            'CONTAINER_NAME_CONFLICT',
          );
        }
        throw asDockerError(err, conn, `creating ${opts.name}`);
      }
      if (old) await stopAndRemove(conn, { ...old, service: plan.service }, emit);
      else await startContainer(ctx, id, opts.name!);
      currentIds.set(svc.name, id);
      const action = plan.action === 'create' ? 'created' : 'recreated';
      emit({ type: 'container', service: svc.name, name: opts.name!, action, reason: plan.reason });
      outcomes.push({ service: svc.name, name: opts.name!, id, action, reason: plan.reason });
    } else if (plan.action === 'start') {
      await startContainer(ctx, plan.existing!.id, name);
      emit({ type: 'container', service: svc.name, name, action: 'started' });
      outcomes.push({ service: svc.name, name, id: plan.existing!.id, action: 'started' });
    } else {
      emit({ type: 'container', service: svc.name, name, action: 'unchanged' });
      outcomes.push({ service: svc.name, name, id: plan.existing!.id, action: 'unchanged' });
    }
  }
  return outcomes;
}

/** Observe -> plan (pure, plan.ts) -> execute. */
async function converge(ctx: StackContext, imageIds: Map<string, string>, options: UpOptions, deadline: number): Promise<ContainerOutcome[]> {
  const { conn, project } = ctx;
  const observed = await observe(conn, project);
  const hashes = new Map(project.services.map((svc) => [svc.name, configHash(project, svc, imageIds.get(svc.name) ?? null)]));
  const mounts = await readMountStates(project);
  const plans = planConverge({
    project,
    observed,
    hashes,
    mounts,
    only: options.services ? new Set(options.services) : undefined,
    force: new Set(options.forceRecreate ?? []),
  });
  return execute(ctx, plans, observed, options, deadline);
}

async function startContainer(ctx: StackContext, id: string, name: string): Promise<void> {
  try {
    await ctx.conn.docker.getContainer(id).start();
  } catch (err) {
    if (statusCode(err) === 304) return; // already running
    const msg = asDockerError(err, ctx.conn, `starting ${name}`);
    // The Engine API answers these with a 500 and a sentence, no structured reason: match the daemon's
    // own text (apiMessage), never the message of our error built from it.
    const daemonSays = msg.code === 'DOCKER_API_FAILED' ? apiMessage(err) : '';
    if (/port is already allocated|address already in use/i.test(daemonSays)) {
      throw new EnvironmentError(msg.message, 'another process or container publishes the same host port: change ports: in compose.yaml or stop it', err, 'PORT_IN_USE');
    }
    if (/bind source path does not exist|no such file or directory/i.test(daemonSays)) {
      throw new EnvironmentError(msg.message, 'a bind-mounted file or directory is missing: run mcp-tunnel init again in this directory', err, 'BIND_SOURCE_MISSING');
    }
    throw msg;
  }
}

async function waitForDependencies(
  ctx: StackContext,
  svc: ComposeService,
  ids: Map<string, string>,
  deadline: number,
  emit: EventSink,
  roles: ReturnType<typeof stackRoles>,
): Promise<void> {
  for (const [dep, { condition }] of Object.entries(svc.dependsOn)) {
    if (condition !== 'service_healthy') continue;
    const id = ids.get(dep);
    if (!id) throw new EnvironmentError(`${svc.name} depends on ${dep}, which has no container`, 'run mcp-tunnel up for the whole stack', undefined, 'SERVICE_DEPENDENCY_MISSING');
    await waitForReady(ctx.conn, { service: dep, id, role: dep === roles.proxy ? 'proxy' : undefined }, { deadline, onEvent: emit, requireHealthcheck: true });
  }
}

/**
 * `mcp-tunnel up`: preflight, images, network, containers, then (unless wait: false) the proxy's readiness
 * and cloudflared's registrations.
 */
export async function composeUp(dir: string, options: UpOptions = {}): Promise<UpResult> {
  const emit = options.onEvent ?? noEvents;
  const ctx = await openStack(dir, options);
  const { project, conn } = ctx;
  emit({ type: 'project', project: project.name, dir: project.dir, files: project.configFiles });
  for (const name of project.unsetVariables) emit({ type: 'warning', message: `the ${name} variable is not set; defaulting to a blank string` });
  for (const d of await readEnvDrift(dir, options.processEnv ?? process.env)) emit({ type: 'warning', message: d.message, hint: d.hint });
  if (options.services) for (const s of options.services) if (!project.services.some((x) => x.name === s)) throw new ValidationError(`no service "${s}" in ${project.configFilesLabel}`, undefined, 'SERVICE_UNKNOWN');

  const findings = await runPreflight(project, ctx.info);
  const error = findings.find((f) => f.level === 'error');
  if (error) throw error.check === 'tunnel-token' || error.check === 'proxy-config' ? new ValidationError(error.message, error.hint, error.code) : new EnvironmentError(error.message, error.hint, undefined, error.code);
  const warnings = findings.filter((f) => f.level === 'warning');
  for (const w of warnings) emit({ type: 'warning', message: w.message, hint: w.hint });

  const selected = project.services.filter((s) => !options.services || options.services.includes(s.name));
  const imageIds = new Map<string, string>();
  for (const svc of project.services) {
    if (selected.includes(svc)) {
      imageIds.set(svc.name, (await ensureServiceImage(conn, svc, { onEvent: emit, forceBuild: options.build })).imageId);
    }
  }
  if (selected.some((s) => s.networkMode.kind === 'default')) await ensureNetwork(conn, project, emit);

  const timeoutMs = options.timeoutMs ?? DEFAULT_UP_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  const containers = await converge(ctx, imageIds, options, deadline);
  const result: UpResult = { project: project.name, dir: project.dir, containers, warnings };
  if (options.wait === false) return result;

  const roles = stackRoles(project);
  const targets = new Map<string, WaitTarget>();
  for (const c of containers) targets.set(c.service, { service: c.service, id: c.id, role: c.service === roles.proxy ? 'proxy' : c.service === roles.cloudflared ? 'cloudflared' : undefined });
  const proxyT = roles.proxy ? targets.get(roles.proxy) : undefined;
  const cfT = roles.cloudflared ? targets.get(roles.cloudflared) : undefined;
  if (proxyT) {
    result.proxy = { service: proxyT.service, state: await waitForReady(conn, proxyT, { deadline, onEvent: emit, related: cfT ? [cfT] : [] }) };
  }
  if (cfT) {
    result.tunnel = {
      service: cfT.service,
      ...(await waitForRegistrations(conn, cfT, { deadline, onEvent: emit, related: proxyT ? [proxyT] : [], settleMs: options.settleMs })),
    };
  }
  // Other services: running (or healthy, when they have a healthcheck).
  for (const t of targets.values()) {
    if (t === proxyT || t === cfT) continue;
    await waitForReady(conn, t, { deadline, onEvent: emit });
  }
  return result;
}

export interface DownOptions extends CommonOptions {
  /** Seconds to wait for each container to stop before it is killed (docker stop -t); default: each container's stop_grace_period. */
  timeoutSeconds?: number;
  /** Save every container's log to DIR/logs/ once stopped, before it is removed (default true). */
  saveLogs?: boolean;
  now?: Date;
}

export interface DownResult {
  project: string;
  removedContainers: string[];
  removedNetworks: string[];
  savedLogs: SavedLog[];
}

/**
 * `mcp-tunnel down`: stops (with the given timeout: 0 kills at once, breach response step one) and removes
 * every container of the project, then the project's networks. Needs only the project name, so it works
 * even when compose.yaml no longer loads (a missing TUNNEL_TOKEN must not block an emergency stop).
 */
export async function composeDown(dir: string, options: DownOptions = {}): Promise<DownResult> {
  const emit = options.onEvent ?? noEvents;
  const conn = options.conn ?? connectDocker({ env: options.processEnv });
  await pingDocker(conn);
  const project = await resolveProjectName(dir, options);
  const containers = await listProjectContainers(conn, project);
  // Dependents first: containers living in another container's network namespace go before it.
  const dependents = containers.filter((c) => c.networkMode.startsWith('container:'));
  const others = containers.filter((c) => !c.networkMode.startsWith('container:'));
  const savedLogs: SavedLog[] = [];
  const now = options.now ?? new Date();
  for (const group of [dependents, others]) {
    await Promise.all(
      group.map((c) =>
        stopAndRemove(conn, c, emit, options.timeoutSeconds, async () => {
          if (options.saveLogs === false) return;
          try {
            savedLogs.push(await saveContainerLog(conn, c, dir, now));
          } catch (err) {
            // Stopping comes first in a breach: a log that cannot be kept is said, not a reason to stay up.
            const why = err instanceof UserError ? err.message : String(err);
            emit({ type: 'warning', message: `the log of ${c.name} could not be saved: ${why}`, hint: `save it by hand next time before down: docker logs --timestamps ${c.name}` });
          }
        }),
      ),
    );
  }
  const removedNetworks: string[] = [];
  let networks: Array<{ Id: string; Name: string }> = [];
  try {
    networks = (await conn.docker.listNetworks({ filters: { label: [`${LABELS.project}=${project}`] } })) as Array<{ Id: string; Name: string }>;
  } catch (err) {
    throw asDockerError(err, conn, 'listing networks');
  }
  const names = new Set(networks.map((n) => n.Name));
  const byName = `${project}_default`;
  if (!names.has(byName)) {
    try {
      const n = (await conn.docker.getNetwork(byName).inspect()) as { Id: string; Name: string };
      networks.push({ Id: n.Id, Name: n.Name });
    } catch (err) {
      if (statusCode(err) !== 404) throw asDockerError(err, conn, `inspecting network ${byName}`);
    }
  }
  for (const n of networks) {
    try {
      await conn.docker.getNetwork(n.Id).remove();
    } catch (err) {
      if (statusCode(err) === 404) continue;
      const e = asDockerError(err, conn, `removing network ${n.Name}`);
      // The daemon's text is the only sign of "still in use" (a 403 also means other things).
      if (e.code === 'DOCKER_API_FAILED' && /active endpoints/i.test(apiMessage(err))) {
        throw new EnvironmentError(
          `network ${n.Name} is still used by containers outside the project`,
          `disconnect them (docker network inspect ${n.Name}), then run mcp-tunnel down again`,
          err,
          'NETWORK_IN_USE',
        );
      }
      throw e;
    }
    removedNetworks.push(n.Name);
    emit({ type: 'network', name: n.Name, action: 'removed' });
  }
  return { project, removedContainers: containers.map((c) => c.name), removedNetworks, savedLogs };
}

/** The container of a running service (for waits after the fact). */
export async function serviceContainer(conn: DockerConnection, project: string, service: string): Promise<ProjectContainer | undefined> {
  return (await listServiceContainers(conn, project, service))[0];
}

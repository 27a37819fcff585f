import { COMPOSE_SERVICES, RENEWER_SERVICE } from '../../deployment/compose-file.js';
import { validateTunnelToken } from '../../deployment/validate.js';
import { connectDocker, type DockerConnection } from '../../docker/client.js';
import type { ContainerDetails } from '../../docker/containers.js';
import { describeEndpoint } from '../../docker/endpoint.js';
import type { EnvDrift } from '../../docker/env-drift.js';
import { UserError } from '../../errors.js';
import { cloudflaredConnections, connectReachableDocker, HEALTHY_CONNECTIONS, readStackState } from '../stack.js';
import { checkConfigApplied, checkLogs, checkUpstreamsFromProxy, type ProxyViewContext } from './runtime.js';
import { fail, ok, skip, warn, type DoctorFinding } from './types.js';
import { connectTcp } from './upstreams.js';
import { logsCommand, startHint } from '../../docker/compose-command.js';

/** The token cloudflared will use: .env's TUNNEL_TOKEN (compose reads it there), cross-checked with data/tunnel-token. */
export function checkToken(envToken: string | undefined, fileToken: string | undefined): DoctorFinding[] {
  const fix = 'copy the tunnel token from the Console into a file and run: mcp-tunnel rotate-token --tunnel-token-file FILE (or re-run init with --tunnel-token-file FILE)';
  if (envToken === undefined || envToken.trim() === '') {
    return [fail('token.present', 'TUNNEL_TOKEN is not set in .env: the stack does not start and cloudflared cannot connect', fix)];
  }
  const out: DoctorFinding[] = [ok('token.present', 'TUNNEL_TOKEN is set in .env')];
  try {
    validateTunnelToken(envToken, '.env (TUNNEL_TOKEN)');
    out.push(ok('token.format', 'TUNNEL_TOKEN is base64 JSON with the fields a, t and s'));
  } catch (err) {
    out.push(fail('token.format', `${(err as Error).message}: cloudflared will fail to authenticate`, fix));
    return out;
  }
  if (fileToken !== undefined && fileToken.trim() !== '' && fileToken.trim() !== envToken.trim()) {
    out.push(warn('token.consistent', 'data/tunnel-token differs from TUNNEL_TOKEN in .env (cloudflared uses .env)', 'make them agree: mcp-tunnel rotate-token --tunnel-token-file FILE writes both'));
  }
  return out;
}

/** The shell overriding .env for compose (a stale TUNNEL_TOKEN after a rotation): names only, never values. */
export function checkEnvDrift(drift: readonly EnvDrift[]): DoctorFinding[] {
  if (drift.length === 0) return [ok('env.drift', 'no variable in this shell overrides .env')];
  return drift.map((d) => warn(`env.drift.${d.name}`, d.message, d.hint));
}

export interface StackContext {
  dir: string;
  renewerScheduled: boolean;
  timeoutMs: number;
  now: Date;
  /** Ask Docker only over a local unix socket, start no helper (doctor --offline). */
  offline?: boolean;
  /** The routes to check from the proxy's own network namespace (a helper container on it). */
  proxyView?: Omit<ProxyViewContext, 'project'>;
}

function containerFinding(id: string, service: string, c: ContainerDetails | undefined): DoctorFinding {
  if (!c) return warn(id, `no ${service} container`, startHint());
  if (c.restarting) return fail(id, `${c.name} keeps restarting (${c.restartCount} restarts; last exit code ${c.exitCode})`, `see why: ${logsCommand(`--tail 50 ${service}`)}`);
  if (!c.running) return fail(id, `${c.name} is ${c.status} (exit code ${c.exitCode}${c.error ? `: ${c.error}` : ''})`, `see why: ${logsCommand(`--tail 50 ${service}`)}; then mcp-tunnel up`);
  if (c.hasHealthcheck && c.health === 'unhealthy') {
    return fail(id, `${c.name} is unhealthy: ${c.healthLog.at(-1) ?? 'healthcheck failing'}`, logsCommand(`--tail 50 ${service}`));
  }
  if (c.hasHealthcheck && c.health !== 'healthy') return warn(id, `${c.name} is running, health ${c.health ?? 'unknown'} (still starting?)`, 'run doctor again in a minute');
  return ok(id, `${c.name} is running${c.hasHealthcheck ? ' and healthy' : ''}`);
}

/** Docker reachable; the containers; cloudflared's registered connections. */
export async function checkStack(ctx: StackContext): Promise<DoctorFinding[]> {
  let conn: DockerConnection;
  if (ctx.offline) {
    let local: DockerConnection | undefined;
    try {
      local = connectDocker();
    } catch {
      local = undefined;
    }
    if (!local?.socketPath) {
      const why = `Docker is not behind a local unix socket (${local?.endpoint ?? 'unknown endpoint'}): not asked (--offline)`;
      return ['docker.reachable', 'stack.proxy', 'stack.cloudflared', 'cloudflared.connections'].map((id) => skip(id, why));
    }
  }
  try {
    conn = await connectReachableDocker(ctx.timeoutMs);
  } catch (err) {
    const e = err instanceof UserError ? err : undefined;
    return [
      fail('docker.reachable', e?.message ?? `Docker is not reachable: ${String(err)}`, e?.hint ?? 'start the Docker daemon, or point DOCKER_HOST at it'),
      skip('stack.proxy', 'Docker is not reachable'),
      skip('stack.cloudflared', 'Docker is not reachable'),
      skip('cloudflared.connections', 'Docker is not reachable'),
    ];
  }
  const out: DoctorFinding[] = [ok('docker.reachable', `Docker answers at ${describeEndpoint({ host: conn.endpoint, source: conn.source ?? 'default', context: conn.context })}`)];
  let state;
  try {
    state = await readStackState(ctx.dir, conn);
  } catch (err) {
    out.push(fail('stack.proxy', `cannot list the containers: ${err instanceof Error ? err.message : String(err)}`, 'check the Docker daemon (docker info)'));
    return out;
  }
  out.push(containerFinding('stack.proxy', COMPOSE_SERVICES.proxy, state.proxy));
  out.push(containerFinding('stack.cloudflared', COMPOSE_SERVICES.cloudflared, state.cloudflared));
  if (ctx.renewerScheduled) out.push(containerFinding('stack.cert-renewer', RENEWER_SERVICE, state.renewer));
  out.push(await checkConnections(conn, state.cloudflared, ctx));
  if (state.proxy?.running) out.push(...(await checkConfigApplied(ctx.dir, state.proxy)));
  out.push(...(await checkLogs(conn, [{ role: 'proxy', c: state.proxy }, { role: 'cloudflared', c: state.cloudflared }])));
  if (ctx.proxyView && state.proxy?.running) {
    if (ctx.offline) out.push(...ctx.proxyView.routes.map((r) => skip(`upstream.from-proxy.${r.key}`, 'not checked (--offline)')));
    else out.push(...(await checkUpstreamsFromProxy(conn, state.proxy, { project: state.project, ...ctx.proxyView })));
  }
  return out;
}

async function checkConnections(conn: DockerConnection, cf: ContainerDetails | undefined, ctx: StackContext): Promise<DoctorFinding> {
  if (!cf?.running) return skip('cloudflared.connections', 'cloudflared is not running', 'start the stack (mcp-tunnel up), then run doctor again');
  let count: number;
  try {
    count = await cloudflaredConnections(conn, cf);
  } catch (err) {
    return warn('cloudflared.connections', `cannot read cloudflared's log: ${(err as Error).message}`, logsCommand(COMPOSE_SERVICES.cloudflared));
  }
  const upFor = cf.startedAt ? ctx.now.getTime() - cf.startedAt.getTime() : Infinity;
  const outboundFix = 'check outbound TCP and UDP 7844 to 198.41.192.0/19 and 2606:4700:a0::/44 (doctor\'s egress checks), and the token (mcp-tunnel rotate-token)';
  if (count >= HEALTHY_CONNECTIONS) return ok('cloudflared.connections', `cloudflared registered ${count} tunnel connections (healthy: ${HEALTHY_CONNECTIONS})`);
  if (count > 0) return warn('cloudflared.connections', `cloudflared registered ${count} of ${HEALTHY_CONNECTIONS} tunnel connections`, upFor < 60_000 ? 'it started less than a minute ago: run doctor again shortly' : outboundFix);
  if (upFor < 30_000) return warn('cloudflared.connections', 'cloudflared has not registered a tunnel connection yet (started under 30 s ago)', 'run doctor again shortly');
  return fail('cloudflared.connections', 'cloudflared has registered no tunnel connection: Claude cannot reach the proxy', `${outboundFix}; details: ${logsCommand(COMPOSE_SERVICES.cloudflared)}`);
}

/** Where cloudflared dials (docs/contract.md §1). The hostnames are Cloudflare's documented edge discovery names. */
export const DEFAULT_EDGE_TARGETS = ['region1.v2.argotunnel.com:7844', 'region2.v2.argotunnel.com:7844'] as const;
export const EDGE_CIDRS = ['198.41.192.0/19', '2606:4700:a0::/44'] as const;

export function parseEdgeTarget(text: string): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { host: m[1]!.replace(/^\[|\]$/g, ''), port } : undefined;
}

/**
 * Outbound 7844: a TCP connect to each target (cloudflared's http2 fallback). UDP (QUIC, cloudflared's
 * default) cannot be verified without a QUIC handshake, so it is reported as a hint with the command to run.
 */
export async function checkEgress(targets: readonly string[] | false, timeoutMs: number): Promise<DoctorFinding[]> {
  const udpHint = skip(
    'egress.udp-7844',
    'UDP 7844 (QUIC, what cloudflared uses first) cannot be checked without a QUIC handshake',
    `make sure outbound UDP 7844 to ${EDGE_CIDRS.join(' and ')} is allowed; cloudflared falls back to TCP (http2) when it is not`,
  );
  if (targets === false) {
    return [skip('egress.tcp-7844', 'not checked (--no-edge-check)', `check by hand: nc -vz ${DEFAULT_EDGE_TARGETS[0].replace(':', ' ')}`), udpHint];
  }
  const results = await Promise.all(
    targets.map(async (t) => {
      const target = parseEdgeTarget(t);
      if (!target) return { t, result: { ok: false as const, reason: 'not HOST:PORT' } };
      return { t, result: await connectTcp(target.host, target.port, timeoutMs) };
    }),
  );
  const reached = results.filter((r) => r.result.ok);
  const out: DoctorFinding[] = [];
  if (reached.length > 0) {
    out.push(ok('egress.tcp-7844', `outbound TCP reaches ${reached.map((r) => r.t).join(', ')}`));
  } else {
    out.push(
      warn(
        'egress.tcp-7844',
        `outbound TCP to ${results.map((r) => `${r.t} (${r.result.ok ? 'ok' : r.result.reason})`).join(', ')} failed: cloudflared may not be able to connect`,
        `allow outbound TCP and UDP 7844 to ${EDGE_CIDRS.join(' and ')}; test with: nc -vz ${DEFAULT_EDGE_TARGETS[0].replace(':', ' ')}`,
      ),
    );
  }
  out.push(udpHint);
  return out;
}

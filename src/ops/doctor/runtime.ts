import { randomBytes } from 'node:crypto';
import YAML from 'yaml';
import { BUILTIN_HEALTHCHECK, COMPOSE_SERVICES } from '../../deployment/compose-file.js';
import { BUILTIN_PROXY_IMAGE_REPO } from '../../deployment/images.js';
import type { Ipv4Cidr } from '../../deployment/validate.js';
import { asDockerError, type DockerConnection } from '../../docker/client.js';
import { loadComposeProject } from '../../docker/compose-model.js';
import type { ContainerDetails } from '../../docker/containers.js';
import { findSignatures } from '../../docker/diagnose.js';
import { LABELS } from '../../docker/labels.js';
import { readContainerLogs } from '../../docker/logs.js';
import { readMountState } from '../../docker/mounts.js';
import { mountsChanged } from '../../docker/plan.js';
import { UserError } from '../../errors.js';
import type { ConfigRoute } from './config.js';
import { fail, ok, skip, warn, type DoctorFinding } from './types.js';
import { tunnelHostFor } from './upstreams.js';

/**
 * What doctor sees only in the running stack: a config edited after the proxy started (the engines read
 * it at start only), the failure signatures of the troubleshooting table in the recent logs, and each
 * upstream as the proxy itself sees it (resolved, checked and dialled from the proxy's own network
 * namespace, so a compose-service upstream such as http://hello-mcp:9000 is checked too).
 */
const REL = 'config/mcp-proxy.yaml';

/** cloudflared's command must carry --url (docs/contract.md): without it every request gets "No ingress rules". */
export function checkCloudflaredCommand(composeText: string | undefined): DoctorFinding[] {
  if (composeText === undefined) return [];
  let command: unknown;
  try {
    command = (YAML.parse(composeText) as { services?: Record<string, { command?: unknown }> } | null)?.services?.[COMPOSE_SERVICES.cloudflared]?.command;
  } catch {
    return [];
  }
  if (command === undefined) return [skip('compose.cloudflared-url', `compose.yaml has no ${COMPOSE_SERVICES.cloudflared} command to check`)];
  const words = Array.isArray(command) ? command.map(String) : String(command).split(/\s+/);
  if (words.some((w) => w === '--url' || w.startsWith('--url='))) return [ok('compose.cloudflared-url', `${COMPOSE_SERVICES.cloudflared} runs with --url (its requests reach the proxy)`)];
  return [
    fail(
      'compose.cloudflared-url',
      `${COMPOSE_SERVICES.cloudflared}'s command lacks --url: it answers every request with an error ("No ingress rules")`,
      'in compose.yaml set its command to: tunnel --no-autoupdate run --url http://localhost:8080, then mcp-tunnel up',
    ),
  ];
}

/** The config on disk vs the config the running proxy read at its start. */
export async function checkConfigApplied(dir: string, proxy: ContainerDetails): Promise<DoctorFinding[]> {
  let project;
  try {
    project = await loadComposeProject(dir);
  } catch (err) {
    return [skip('stack.config-applied', `compose.yaml does not load, so the proxy's mounts are unknown: ${err instanceof Error ? err.message : String(err)}`)];
  }
  const svc = project.services.find((s) => s.name === COMPOSE_SERVICES.proxy);
  if (!svc) return [];
  const mounts = await readMountState(project, svc);
  if (!mounts.digest) return [];
  if (mountsChanged({ labels: proxy.labels, startedAtMs: proxy.startedAt?.getTime() }, mounts)) {
    return [
      warn(
        'stack.config-applied',
        `${mounts.files.join(', ')} changed after ${proxy.name} started: the proxy still runs the old config (new routes answer "no route for host")`,
        'apply it: mcp-tunnel up (restarts the proxy and cloudflared)',
      ),
    ];
  }
  return [ok('stack.config-applied', `${proxy.name} runs the ${mounts.files.join(', ')} on disk`)];
}

/** The troubleshooting table's messages in the logs since each container (last) started. */
export async function checkLogs(conn: DockerConnection, containers: Array<{ role: 'proxy' | 'cloudflared'; c: ContainerDetails | undefined }>): Promise<DoctorFinding[]> {
  const out: DoctorFinding[] = [];
  // Stopped and restarting containers too: a cloudflared that dies at start says why in its last lines.
  for (const { role, c } of containers) {
    if (!c) continue;
    let lines;
    try {
      // A crash loop restarts faster than doctor reads: its last lines, whichever run printed them.
      const looping = !c.running || c.restarting || c.restartCount > 0;
      lines = await readContainerLogs(conn, c.id, looping ? { tty: c.tty, tail: 200 } : { since: c.startedAt, tty: c.tty, tail: 2000 });
    } catch (err) {
      out.push(warn(`logs.${role}`, `cannot read ${c.name}'s log: ${err instanceof UserError ? err.message : String(err)}`, `docker logs ${c.name}`));
      continue;
    }
    const hits = findSignatures(role, lines);
    if (hits.length === 0) out.push(ok(`logs.${role}`, `${c.name}: none of the known failure messages in its recent log (${lines.length} lines)`));
    for (const h of hits) out.push(warn(`logs.${h.rule}`, `${c.name}: ${h.problem} (${h.count} line${h.count === 1 ? '' : 's'} in its recent log; last: ${h.line.slice(0, 200)})`, h.fix));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Upstreams from the proxy's own network namespace

interface Target {
  key: string;
  host: string;
  port: number;
  scheme: string;
  hostHeader?: string;
  path: string;
}

interface Seen {
  key: string;
  addresses?: string[];
  resolveError?: string;
  refused?: string;
  tcp?: { ok: boolean; ms?: number; reason?: string };
  answer?: { status?: number; body?: string; error?: string };
}

/**
 * Runs inside the helper container (node, no dependencies): resolve, check against the allowed ranges
 * (never dial what the proxy would refuse), connect, then one GET with the tunnel's Host header.
 */
const HELPER_SCRIPT = String.raw`
const dns = require('node:dns').promises, net = require('node:net'), http = require('node:http'), https = require('node:https');
const { targets, allowed, timeoutMs } = JSON.parse(process.argv[1]);
const toInt = (ip) => ip.split('.').reduce((a, o) => ((a << 8) >>> 0) + Number(o), 0) >>> 0;
const inRange = (ip, [base, bits]) => bits === 0 || (toInt(ip) >>> (32 - bits)) === (toInt(base) >>> (32 - bits));
const connect = (host, port) => new Promise((resolve) => {
  const t0 = Date.now(); const s = net.connect({ host, port });
  const done = (r) => { clearTimeout(timer); s.destroy(); resolve(r); };
  const timer = setTimeout(() => done({ ok: false, reason: 'no answer within ' + timeoutMs + ' ms' }), timeoutMs);
  s.once('connect', () => done({ ok: true, ms: Date.now() - t0 }));
  s.once('error', (e) => done({ ok: false, reason: e.code || e.message }));
});
const get = (t, address) => new Promise((resolve) => {
  const mod = t.scheme === 'https' ? https : http;
  const req = mod.request({ host: address, port: t.port, path: t.path, method: 'GET', setHost: false, timeout: timeoutMs,
    headers: { host: t.hostHeader, accept: 'application/json, text/event-stream', 'user-agent': 'mcp-tunnel-doctor' },
    rejectUnauthorized: false, servername: net.isIP(t.host) ? undefined : t.host }, (res) => {
    let body = ''; res.setEncoding('utf8');
    const finish = () => resolve({ status: res.statusCode || 0, body: body.slice(0, 2048) });
    res.on('data', (c) => { body += c; if (body.length > 2048) res.destroy(); });
    res.on('end', finish); res.on('close', finish);
    setTimeout(() => res.destroy(), Math.min(timeoutMs, 1000)).unref();
  });
  req.on('timeout', () => req.destroy(new Error('no answer within ' + timeoutMs + ' ms')));
  req.on('error', (e) => resolve({ error: e.code || e.message }));
  req.end();
});
(async () => {
  for (const t of targets) {
    const out = { key: t.key };
    try { out.addresses = net.isIPv4(t.host) ? [t.host] : (await dns.lookup(t.host, { all: true, family: 4 })).map((a) => a.address); }
    catch (e) { out.resolveError = e.code || e.message; console.log(JSON.stringify(out)); continue; }
    const bad = allowed ? out.addresses.find((a) => !allowed.some((r) => inRange(a, r))) : undefined;
    if (bad) { out.refused = bad; console.log(JSON.stringify(out)); continue; }
    out.tcp = await connect(out.addresses[0], t.port);
    if (out.tcp.ok && t.hostHeader) out.answer = await get(t, out.addresses[0]);
    console.log(JSON.stringify(out));
  }
})();
`;

export interface ProxyViewContext {
  project: string;
  routes: ConfigRoute[];
  allowedIps: Ipv4Cidr[] | undefined;
  tunnelDomain: string | undefined;
  mcpPath: string;
  timeoutMs: number;
}

/** The builtin image has node (and this package) in it; the official one is a bare Go binary. */
function isBuiltinImage(image: string, healthcheck: string[] | undefined): boolean {
  return image.startsWith(`${BUILTIN_PROXY_IMAGE_REPO}:`) || (healthcheck ?? []).join(' ') === BUILTIN_HEALTHCHECK.join(' ');
}

export async function checkUpstreamsFromProxy(conn: DockerConnection, proxy: ContainerDetails, ctx: ProxyViewContext): Promise<DoctorFinding[]> {
  const routes = ctx.routes.filter((r) => r.upstream);
  if (routes.length === 0) return [];
  const ids = (suffix: string): string[] => routes.map((r) => `upstream.from-proxy.${r.key}${suffix}`);
  let info;
  try {
    info = await conn.docker.getContainer(proxy.id).inspect();
  } catch (err) {
    return ids('').map((id) => skip(id, `cannot inspect ${proxy.name}: ${asDockerError(err, conn, 'inspect').message}`));
  }
  const image = info.Config.Image;
  if (!isBuiltinImage(image, info.Config.Healthcheck?.Test)) {
    return ids('').map((id) =>
      skip(id, `not checked from the proxy's network namespace: the official proxy image has no tool to run there and no local image can be used (checked from this host above)`),
    );
  }
  const targets: Target[] = routes.map((r) => ({
    key: r.key,
    host: r.upstream!.host,
    port: r.upstream!.port,
    scheme: r.upstream!.scheme,
    hostHeader: tunnelHostFor(r.key, ctx.tunnelDomain),
    path: ctx.mcpPath,
  }));
  const allowed = ctx.allowedIps?.map((c) => {
    const [base, bits] = c.text.includes('/') ? c.text.split('/') : [c.text, '32'];
    return [base, Number(bits)];
  });
  const name = `${ctx.project}-doctor-${randomBytes(4).toString('hex')}`;
  const bound = ctx.timeoutMs * 2 * targets.length + 15_000;
  let seen: Seen[];
  try {
    const helper = await conn.docker.createContainer({
      name,
      Image: image,
      Entrypoint: ['node'],
      Cmd: ['-e', HELPER_SCRIPT, JSON.stringify({ targets, allowed: allowed ?? null, timeoutMs: ctx.timeoutMs })],
      User: info.Config.User || '65532:65532',
      // A one-off of the project (as `docker compose run` labels them): a helper left by a killed doctor is
      // removed by the next down (mcp-tunnel's or docker compose's), and status does not list it.
      Labels: { 'io.mcp-tunnel.helper': 'doctor', [LABELS.project]: ctx.project, [LABELS.service]: 'mcp-tunnel-doctor', [LABELS.oneoff]: 'True' },
      HostConfig: { NetworkMode: `container:${proxy.id}`, ReadonlyRootfs: true, CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges:true'] },
    });
    try {
      await helper.start();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), bound);
      });
      const result = await Promise.race([helper.wait(), timeout]);
      clearTimeout(timer);
      if (result === 'timeout') await helper.kill().catch(() => undefined);
      const lines = await readContainerLogs(conn, helper.id);
      seen = lines.filter((l) => l.stream === 'stdout' && l.text.startsWith('{')).map((l) => JSON.parse(l.text) as Seen);
    } finally {
      await helper.remove({ force: true }).catch(() => undefined);
    }
  } catch (err) {
    return ids('').map((id) => skip(id, `the helper container on ${proxy.name}'s network could not run: ${err instanceof UserError ? err.message : asDockerError(err, conn, 'running the doctor helper').message}`));
  }
  return routes.map((r) => classify(r, seen.find((s) => s.key === r.key), ctx));
}

function classify(route: ConfigRoute, s: Seen | undefined, ctx: ProxyViewContext): DoctorFinding {
  const id = `upstream.from-proxy.${route.key}`;
  const up = route.upstream!;
  if (!s) return warn(id, `no answer from the helper for ${route.key} within the bound`, 'run doctor again; check the proxy container (docker logs)');
  if (s.resolveError) {
    return fail(id, `${up.host} does not resolve inside the proxy's network namespace (${s.resolveError}): every request for ${route.key} fails`, `fix the host in ${REL}, or put the MCP server on a network the proxy is on (a compose service name resolves on the project network)`);
  }
  const where = `${up.host} -> ${s.addresses!.join(', ')}`;
  if (s.refused) {
    return fail(id, `${where}: ${s.refused} is outside upstream.allowed_ips, the proxy refuses it ("IP validation failed")`, `if ${s.refused} is really your MCP server, add "${s.refused}/32" to upstream.allowed_ips (mcp-tunnel config set upstream.allowed_ips ...), then restart the proxy`);
  }
  if (!s.tcp?.ok) {
    return fail(id, `${where}: not reachable from the proxy (${s.tcp?.reason === 'ECONNREFUSED' ? 'connection refused: nothing listens there' : s.tcp?.reason})`, `start the MCP server, or fix the port in ${REL}`);
  }
  if (!s.answer) return ok(id, `${where}: reachable from the proxy in ${s.tcp.ms} ms (Host header not checked: tunnel domain unknown)`);
  if (s.answer.error) return warn(id, `${where}: reachable, but GET ${ctx.mcpPath} failed (${s.answer.error})`, `check that ${up.url} speaks ${up.scheme.toUpperCase()}`);
  const invalidHost = /invalid host/i.test(s.answer.body ?? '');
  if (s.answer.status === 421 || (s.answer.status === 403 && invalidHost)) {
    const host = tunnelHostFor(route.key, ctx.tunnelDomain);
    return fail(id, `${where}: rejects the tunnel's Host header "${host}" (HTTP ${s.answer.status}) from the proxy: every request through the tunnel fails`, `allow ${host} in the MCP server's allowed hosts (DNS-rebinding protection)`);
  }
  return ok(id, `${where}: reachable from the proxy in ${s.tcp.ms} ms, answers HTTP ${s.answer.status} with the tunnel's Host header`);
}

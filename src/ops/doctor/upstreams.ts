import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Ipv4Cidr, Upstream } from '../../deployment/validate.js';
import { isDottedQuad } from '../../deployment/upstream-address.js';
import { IpValidationError, UpstreamGuard } from '../../proxy/upstream-guard.js';
import type { ConfigRoute } from './config.js';
import { fail, ok, skip, warn, type DoctorFinding } from './types.js';
import { COMPOSE_SERVICES } from '../../deployment/compose-file.js';
import { restartCommand } from '../../docker/compose-command.js';

/**
 * Per route, as the proxy would do it: resolve the upstream (IPv4, every address) and check each against
 * upstream.allowed_ips with the proxy's own guard; connect (TCP, short timeout) to the address that passed;
 * then send one request with the tunnel's Host header (<route>.<tunnel_domain>) and look for the answer of
 * an MCP server that validates Host (FastMCP / the Python SDK: HTTP 421; the TypeScript SDK: 403
 * "Invalid Host"). The checks run from this host: an upstream only the containers can resolve (a compose
 * service name) is reported as such, not as a failure.
 */
export interface UpstreamContext {
  routes: ConfigRoute[];
  allowedIps: Ipv4Cidr[] | undefined;
  tunnelDomain: string | undefined;
  /** The MCP endpoint path for the Host check (default /mcp). */
  mcpPath: string;
  timeoutMs: number;
  /** Judge IP literals against allowed_ips (pure: no lookup, no connection) and try nothing else. */
  offline?: boolean;
}

const REL = 'config/mcp-proxy.yaml';

export function connectTcp(host: string, port: number, timeoutMs: number): Promise<{ ok: true; ms: number } | { ok: false; reason: string }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (result: { ok: true; ms: number } | { ok: false; reason: string }): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done({ ok: false, reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
    socket.once('connect', () => done({ ok: true, ms: Date.now() - started }));
    socket.once('error', (err: NodeJS.ErrnoException) => done({ ok: false, reason: err.code ?? err.message }));
  });
}

interface HostAnswer {
  status: number;
  body: string;
}

function hostRequest(up: Upstream, address: string, hostHeader: string, path: string, timeoutMs: number): Promise<HostAnswer> {
  return new Promise((resolve, reject) => {
    const options: https.RequestOptions = {
      host: address,
      port: up.port,
      path,
      method: 'GET',
      setHost: false,
      headers: { host: hostHeader, accept: 'application/json, text/event-stream', 'user-agent': 'mcp-tunnel-doctor' },
      timeout: timeoutMs,
      // Only the Host handling is under test here, not the upstream's certificate (the proxy checks that).
      ...(up.scheme === 'https' ? { rejectUnauthorized: false, servername: net.isIP(up.host) ? undefined : up.host } : {}),
    };
    const req = (up.scheme === 'https' ? https : http).request(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
        // Enough to classify; an SSE stream would never end on its own.
        if (body.length > 2048) res.destroy();
      });
      const finish = (): void => resolve({ status: res.statusCode ?? 0, body: body.slice(0, 2048) });
      res.on('end', finish);
      res.on('close', finish);
      setTimeout(() => res.destroy(), Math.min(timeoutMs, 1_000)).unref();
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export function tunnelHostFor(routeKey: string, domain: string | undefined): string | undefined {
  if (routeKey.includes('.')) return routeKey;
  return domain ? `${routeKey}.${domain}` : undefined;
}

export async function checkUpstreams(ctx: UpstreamContext): Promise<DoctorFinding[]> {
  const perRoute = await Promise.all(
    ctx.routes
      .filter((r) => r.upstream || ctx.offline)
      .map((r) => (r.upstream ? checkOne(r, r.upstream, ctx) : [skip(`upstream.reach.${r.key}`, `${r.key} -> ${r.raw}: not checked (--offline)`)])),
  );
  return perRoute.flat();
}

async function checkOne(route: ConfigRoute, up: Upstream, ctx: UpstreamContext): Promise<DoctorFinding[]> {
  const out: DoctorFinding[] = [];
  const name = route.key;
  const notChecked = skip(`upstream.reach.${name}`, `${name} -> ${route.raw}: not checked (--offline)`);
  // A name needs a lookup; a literal is judged exactly as init and routes add judge it, offline too.
  if (ctx.offline && !isDottedQuad(up.host)) return [notChecked];
  const guard = new UpstreamGuard(ctx.allowedIps);
  const ranges = ctx.allowedIps ? ctx.allowedIps.map((c) => c.text).join(', ') : '';
  let address: string;
  try {
    address = await guard.check(up.host);
    out.push(ok(`upstream.allowed.${name}`, ctx.allowedIps ? `${up.host} -> ${address}: inside upstream.allowed_ips (${ranges})` : `${up.host} -> ${address} (IP validation disabled)`));
    if (ctx.offline) return [...out, notChecked];
  } catch (err) {
    if (err instanceof IpValidationError) {
      out.push(
        fail(
          `upstream.allowed.${name}`,
          `${err.message}${up.writtenHost ? ` (written ${up.writtenHost})` : ''}: the proxy refuses every request for ${name} (${up.url}; upstream.allowed_ips is ${ranges})`,
          `if ${err.ip} is really your MCP server, add "${err.ip}/32" to upstream.allowed_ips in ${REL} (the list replaces the defaults: keep every range you use), then restart the proxy: ${restartCommand([COMPOSE_SERVICES.proxy, COMPOSE_SERVICES.cloudflared])}`,
        ),
      );
      out.push(ctx.offline ? notChecked : skip(`upstream.reachable.${name}`, 'not tried: the proxy would refuse the address'));
      return out;
    }
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    out.push(
      warn(
        `upstream.allowed.${name}`,
        `${up.host} does not resolve from this host (${code}); the proxy resolves it inside its container`,
        `if ${up.host} is a container or compose service name, make sure the proxy shares a network with it; otherwise fix the hostname in ${REL}`,
      ),
    );
    out.push(skip(`upstream.reachable.${name}`, `not tried: ${up.host} does not resolve here`));
    return out;
  }

  const tcp = await connectTcp(address, up.port, ctx.timeoutMs);
  if (!tcp.ok) {
    const why = tcp.reason === 'ECONNREFUSED' ? 'connection refused: nothing listens there' : tcp.reason;
    out.push(
      fail(
        `upstream.reachable.${name}`,
        `${up.url} (${address}:${up.port}) is not reachable from this host: ${why}`,
        `start the MCP server, or fix the address in ${REL}; check firewalls between this host and ${address}`,
      ),
    );
    out.push(skip(`upstream.host-header.${name}`, 'not tried: the upstream is not reachable'));
    return out;
  }
  const loopbackNote = address.startsWith('127.') ? ' (note: inside the proxy container 127.0.0.0/8 is the container itself)' : '';
  out.push(ok(`upstream.reachable.${name}`, `TCP connect to ${address}:${up.port} in ${tcp.ms} ms${loopbackNote}`));

  const host = tunnelHostFor(name, ctx.tunnelDomain);
  if (!host) {
    out.push(skip(`upstream.host-header.${name}`, 'the tunnel domain is unknown', `set tunnel_domain in ${REL}`));
    return out;
  }
  let answer: HostAnswer;
  try {
    answer = await hostRequest(up, address, host, ctx.mcpPath, ctx.timeoutMs);
  } catch (err) {
    out.push(warn(`upstream.host-header.${name}`, `GET ${ctx.mcpPath} with Host: ${host} failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, `check that ${up.url} speaks ${up.scheme.toUpperCase()}`));
    return out;
  }
  const invalidHost = /invalid host/i.test(answer.body);
  if (answer.status === 421 || (answer.status === 403 && invalidHost)) {
    out.push(
      fail(
        `upstream.host-header.${name}`,
        `${up.url} rejects the tunnel's Host header "${host}" (HTTP ${answer.status}${invalidHost ? ', "Invalid Host"' : ''}): its DNS-rebinding protection allows only its own names, so every request through the tunnel fails`,
        `allow ${host} on the MCP server: FastMCP / Python SDK: TransportSecuritySettings(allowed_hosts=["${host}"]) (or enable_dns_rebinding_protection=False); TypeScript SDK: allowedHosts: ["${host}"]`,
      ),
    );
  } else {
    out.push(ok(`upstream.host-header.${name}`, `answers HTTP ${answer.status} to GET ${ctx.mcpPath} with Host: ${host} (no Host rejection)`));
  }
  return out;
}

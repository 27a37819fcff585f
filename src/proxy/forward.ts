import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Upstream } from '../bundle/validate.js';
import { clientResponseHeaders } from './headers.js';
import type { Logger } from './logger.js';
import { errorText } from './logger.js';
import type { ProxyMetrics } from './metrics.js';
import { IpValidationError, type UpstreamGuard } from './upstream-guard.js';

/**
 * Forwarding one request to its upstream, streaming both ways without buffering:
 * - the request body is piped upstream as it arrives; the response is piped back as it arrives, and a
 *   response without Content-Length (text/event-stream, long GETs) has its headers flushed at once, so every
 *   event leaves as soon as the upstream wrote it; nothing is compressed; there is no total timeout;
 * - upstream connections are kept alive (one Agent per upstream) and opened through the upstream guard,
 *   whose `lookup` checks the address before any connection attempt;
 * - a client that goes away aborts the upstream request; an upstream that cannot be reached gives 502
 *   (504 when the connection attempt times out), an address outside allowed_ips gives 502 and the SPEC's
 *   log line.
 */
export interface UpstreamPoolOptions {
  guard: UpstreamGuard;
  /** CA bundle for https upstreams (undefined = Node's default trust store). */
  ca?: string | string[];
  /** Bound for establishing the upstream TCP connection. */
  connectTimeoutMs: number;
}

/** Everything needed to reach one upstream: its keep-alive agent and its pre-checked literal address. */
export class UpstreamPool {
  readonly agent: http.Agent;
  readonly request: typeof http.request;
  /** For an IP literal upstream: the address, when the guard refuses it (checked once, at start). */
  readonly refusedLiteral: string | undefined;

  constructor(
    readonly upstream: Upstream,
    readonly options: UpstreamPoolOptions,
  ) {
    const agentOptions: https.AgentOptions = {
      keepAlive: true,
      keepAliveMsecs: 15_000,
      maxFreeSockets: 256,
      scheduling: 'lifo',
      // The checked address is what the socket connects to: no second lookup (DNS rebinding).
      ...(options.guard.lookup ? { lookup: options.guard.lookup } : {}),
    };
    if (upstream.scheme === 'https') {
      this.agent = new https.Agent({ ...agentOptions, ...(options.ca ? { ca: options.ca } : {}) });
      this.request = https.request;
    } else {
      this.agent = new http.Agent(agentOptions);
      this.request = http.request;
    }
    this.refusedLiteral = net.isIP(upstream.host) && !options.guard.allows(upstream.host) ? upstream.host : undefined;
  }

  destroy(): void {
    this.agent.destroy();
  }
}

export interface ForwardContext {
  route: string;
  pool: UpstreamPool;
  /** Filtered request headers (headers.ts). */
  headers: string[];
  logger: Logger;
  metrics: ProxyMetrics;
}

class UpstreamConnectTimeout extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(ms: number) {
    super(`no connection to the upstream within ${ms}ms`);
  }
}

export function forwardRequest(req: http.IncomingMessage, res: http.ServerResponse, ctx: ForwardContext): void {
  const { pool, route, logger, metrics } = ctx;
  const upstream = pool.upstream;
  if (pool.refusedLiteral !== undefined) {
    refuseAddress(res, ctx, pool.refusedLiteral);
    req.resume();
    return;
  }

  const sentAt = performance.now();
  const upReq = pool.request({
    host: upstream.host,
    port: upstream.port,
    method: req.method,
    path: req.url,
    headers: ctx.headers,
    agent: pool.agent,
    // The Host header is the client's (the tunnel hostname); SNI and certificate checks use the upstream's name.
    ...(upstream.scheme === 'https' && !net.isIP(upstream.host) ? { servername: upstream.host } : {}),
  });

  upReq.once('socket', (socket) => {
    if (!socket.connecting) return;
    const ms = pool.options.connectTimeoutMs;
    const timer = setTimeout(() => upReq.destroy(new UpstreamConnectTimeout(ms)), ms);
    timer.unref();
    const clear = (): void => clearTimeout(timer);
    socket.once('connect', clear);
    socket.once('close', clear);
  });

  upReq.once('response', (upRes) => {
    metrics.upstreamResponded(route, (performance.now() - sentAt) / 1000);
    if (res.destroyed) {
      upRes.destroy();
      return;
    }
    const { headers, hasLength } = clientResponseHeaders(upRes.rawHeaders);
    res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, headers);
    // No Content-Length means a stream (SSE, long GET) or a chunked body: let the client see the headers now.
    if (!hasLength) res.flushHeaders();
    upRes.on('error', () => res.destroy());
    upRes.once('close', () => {
      // The upstream connection broke mid-body: the client must not take a truncated body for a whole one.
      if (!upRes.complete) res.destroy();
    });
    upRes.pipe(res);
  });

  upReq.on('error', (err: NodeJS.ErrnoException) => {
    if (res.destroyed) return;
    if (err instanceof IpValidationError) {
      refuseAddress(res, ctx, err.ip);
      return;
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const timedOut = err instanceof UpstreamConnectTimeout;
    logger.warn('upstream request failed', { route, upstream: upstream.url, error: errorText(err) });
    sendText(res, timedOut ? 504 : 502, timedOut ? 'Upstream connection timed out' : 'Upstream unavailable');
  });

  // The client went away (or the tunnel broke) before the response was complete: stop the upstream work.
  res.once('close', () => {
    if (!res.writableFinished) upReq.destroy();
  });
  req.once('error', () => upReq.destroy());
  req.pipe(upReq);
}

/** The body of the 502 for a refused upstream address (the address itself is only logged, never sent out). */
export const IP_REFUSED_BODY = 'IP validation failed: the upstream address is not in upstream.allowed_ips\n';

function refuseAddress(res: http.ServerResponse, ctx: ForwardContext, ip: string): void {
  ctx.metrics.upstreamIpRefused(ctx.route);
  ctx.logger.warn(new IpValidationError(ip).message, { route: ctx.route, upstream: ctx.pool.upstream.url, ip });
  sendText(res, 502, IP_REFUSED_BODY);
}

/** A short plain-text answer (errors the proxy itself produces). */
export function sendText(res: http.ServerResponse, status: number, body: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

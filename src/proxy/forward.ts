import type http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import Pool from 'undici/lib/dispatcher/pool.js';
import type { Upstream } from '../deployment/validate.js';
import { STREAM_HIGH_WATER_MARK } from './buffers.js';
import { clientResponseHeaders } from './headers.js';
import type { Logger } from './logger.js';
import { errorText } from './logger.js';
import type { ProxyMetrics } from './metrics.js';
import { IpValidationError, type UpstreamGuard } from './upstream-guard.js';

/**
 * Forwarding one request to its upstream, streaming both ways:
 * - the request body is streamed upstream as it arrives, except a small one of known length (at most
 *   BUFFERED_BODY_MAX bytes: every JSON-RPC message in practice), which is collected first and sent with the
 *   headers, as nginx's default proxy_request_buffering does;
 * - the response is streamed back as it arrives, and a response without Content-Length (text/event-stream,
 *   long GETs) has its headers flushed at once, so every event leaves as soon as the upstream wrote it;
 *   nothing is compressed; there is no total timeout;
 * - upstream connections are kept alive (one undici Pool per upstream, HTTP/1.1 only) and opened through the
 *   upstream guard, whose `lookup` checks the address before any connection attempt;
 * - a client that goes away aborts the upstream request; an upstream that cannot be reached gives 502
 *   (504 when the connection attempt times out), an address outside allowed_ips gives 502 and the contract's
 *   log line.
 *
 * undici rather than node:http's client: its dispatcher API costs about half the CPU per request of
 * http.request + IncomingMessage + pipe() (measured with `npm run bench`, see docs/benchmarks.md), and the
 * upstream leg was half of the proxy's CPU per request.
 */
export interface UpstreamPoolOptions {
  guard: UpstreamGuard;
  /** CA bundle for https upstreams (undefined = Node's default trust store). */
  ca?: string | string[];
  /** Bound for establishing the upstream TCP connection. */
  connectTimeoutMs: number;
}

/** Everything needed to reach one upstream: its keep-alive pool and its pre-checked literal address. */
export class UpstreamPool {
  readonly dispatcher: InstanceType<typeof Pool>;
  /** For an IP literal upstream: the address, when the guard refuses it (checked once, at start). */
  readonly refusedLiteral: string | undefined;
  /** SNI and certificate name for an https upstream given by name (an IP literal gets no SNI). */
  readonly servername: string | undefined;

  constructor(
    readonly upstream: Upstream,
    readonly options: UpstreamPoolOptions,
  ) {
    const https = upstream.scheme === 'https';
    this.dispatcher = new Pool(`${upstream.scheme}://${net.isIPv6(upstream.host) ? `[${upstream.host}]` : upstream.host}:${upstream.port}`, {
      // HTTP/1.1 only, as node:http spoke it: no h2 offered over ALPN.
      allowH2: false,
      pipelining: 1,
      // No total or idle bound on a response: SSE streams and long polls stay open as long as both ends want.
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: 15_000,
      connect: {
        timeout: options.connectTimeoutMs,
        keepAlive: true,
        keepAliveInitialDelay: 15_000,
        // undici passes its connect options on to net.connect / tls.connect (its own default is 64 KiB for
        // TCP): the upstream socket holds no more than the other layers. Not in undici's types.
        ...({ highWaterMark: STREAM_HIGH_WATER_MARK } as object),
        // The checked address is what the socket connects to: no second lookup (DNS rebinding).
        ...(options.guard.lookup ? { lookup: options.guard.lookup } : {}),
        ...(https && options.ca ? { ca: options.ca } : {}),
      },
    });
    // The Host header is the client's (the tunnel hostname); SNI and certificate checks use the upstream's name.
    this.servername = https && !net.isIP(upstream.host) ? upstream.host : undefined;
    this.refusedLiteral = net.isIP(upstream.host) && !options.guard.allows(upstream.host) ? upstream.host : undefined;
    // A name that only the WHATWG parser turns into an address (e.g. 0x7f.1.0.1) was made canonical at load
    // (upstream-address.ts), so `host` is the literal that would be dialled and the check above covers it.
  }

  destroy(): void {
    void this.dispatcher.destroy().catch(() => undefined);
  }
}

export interface ForwardContext {
  route: string;
  pool: UpstreamPool;
  /** Filtered request headers (headers.ts). */
  headers: string[];
  /** The request has a body to stream upstream (headers.ts). */
  hasBody: boolean;
  /** Its declared Content-Length, when there is one (headers.ts). */
  contentLength?: number;
  logger: Logger;
  metrics: ProxyMetrics;
}

const CONNECT_TIMEOUT = 'UND_ERR_CONNECT_TIMEOUT';

/** The filtered headers minus the Transfer-Encoding that headers.ts re-adds for a chunked body: undici frames
 * a streamed body of unknown length as chunked by itself, and refuses the header. */
function undiciHeaders(headers: string[]): string[] {
  const n = headers.length;
  if (n >= 2 && headers[n - 2] === 'Transfer-Encoding' && headers[n - 1] === 'chunked') return headers.slice(0, n - 2);
  return headers;
}

/** Raw response headers as latin1 strings (what node:http gave), from undici's raw Buffer pairs. */
function rawHeaderStrings(raw: Dispatcher.DispatchController['rawHeaders']): string[] {
  if (!Array.isArray(raw)) return [];
  const out = new Array<string>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i]!;
    out[i] = typeof v === 'string' ? v : v.toString('latin1');
  }
  return out;
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
  let controller: Dispatcher.DispatchController | undefined;
  // Set when the client went away before undici handed us the controller.
  let abortReason: Error | undefined;
  let responded = false;
  let done = false;
  let paused = false;

  const onDrain = (): void => {
    if (paused && controller && !controller.aborted) {
      paused = false;
      controller.resume();
    }
  };

  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(c) {
      controller = c;
      if (abortReason) c.abort(abortReason);
    },
    onResponseStart(c, statusCode, _headers, statusMessage) {
      responded = true;
      metrics.upstreamResponded(route, (performance.now() - sentAt) / 1000);
      if (res.destroyed) {
        c.abort(new Error('client went away'));
        return;
      }
      const { headers, hasLength } = clientResponseHeaders(rawHeaderStrings(c.rawHeaders));
      res.writeHead(statusCode, statusMessage, headers);
      // No Content-Length means a stream (SSE, long GET) or a chunked body: let the client see the headers now.
      if (!hasLength) res.flushHeaders();
    },
    onResponseData(c, chunk) {
      if (res.destroyed) return;
      if (!res.write(chunk) && !paused) {
        paused = true;
        c.pause();
        res.once('drain', onDrain);
      }
    },
    onResponseEnd() {
      done = true;
      if (!res.destroyed) res.end();
    },
    onResponseError(_c, err) {
      done = true;
      if (res.destroyed) return;
      if (err instanceof IpValidationError) {
        refuseAddress(res, ctx, err.ip);
        return;
      }
      // The upstream connection broke mid-body (or after the headers): the client must not take a truncated
      // body for a whole one.
      if (responded || res.headersSent) {
        res.destroy();
        return;
      }
      const timedOut = (err as NodeJS.ErrnoException).code === CONNECT_TIMEOUT;
      logger.warn('upstream request failed', { route, upstream: upstream.url, error: errorText(err) });
      sendText(res, timedOut ? 504 : 502, timedOut ? 'Upstream connection timed out' : 'Upstream unavailable');
    },
  };

  // The client went away (or the tunnel broke) before the response was complete: stop the upstream work.
  res.once('close', () => {
    if (done || res.writableFinished) return;
    const reason = new Error('client went away');
    if (controller) {
      if (!controller.aborted) controller.abort(reason);
    } else abortReason = reason;
  });
  req.once('error', (err) => {
    if (controller && !controller.aborted) controller.abort(err);
    else abortReason ??= err;
  });

  const send = (body: Buffer | http.IncomingMessage | null): void => {
    pool.dispatcher.dispatch(
      {
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: body === null ? ctx.headers : undiciHeaders(ctx.headers),
        body,
        ...(pool.servername ? { servername: pool.servername } : {}),
        // Not retried by undici: the proxy never replays a request on its own.
        idempotent: false,
        blocking: true,
      } as Dispatcher.DispatchOptions,
      handler,
    );
  };

  if (!ctx.hasBody) {
    req.resume();
    send(null);
  } else if (ctx.contentLength !== undefined && ctx.contentLength <= BUFFERED_BODY_MAX) {
    // A small body of known length (every JSON-RPC message in practice) is collected, then sent with its
    // headers in one write. Streamed into undici instead, each request body kept objects alive long enough
    // to be promoted out of V8's young generation: 5-13 ms scavenges instead of under 1 ms, which is the p99
    // of a request at low concurrency (measured: bench/run.mjs with --proxy-node-options --trace-gc).
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
    });
    req.once('end', () => {
      if (abortReason || res.destroyed) return;
      send(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
  } else {
    // Large or chunked: streamed upstream as it arrives.
    send(req);
  }
}

/** Request bodies up to this size with a Content-Length are collected before they are sent upstream. */
export const BUFFERED_BODY_MAX = 64 * 1024;

/** The body of the 502 for a refused upstream address (the address itself is only logged, never sent out). */
export const IP_REFUSED_BODY = 'IP validation failed: the upstream address is not in upstream.allowed_ips\n';

function refuseAddress(res: http.ServerResponse, ctx: ForwardContext, ip: string): void {
  ctx.metrics.upstreamIpRefused(ctx.route);
  const written = ctx.pool.upstream.writtenHost;
  ctx.logger.warn(new IpValidationError(ip, written).message, { route: ctx.route, upstream: ctx.pool.upstream.url, ip, ...(written ? { written } : {}) });
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

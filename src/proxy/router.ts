import http from 'node:http';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { lookupRoute, type ProxyConfig } from '../deployment/proxy-config.js';
import type { Upstream } from '../deployment/validate.js';
import type { ConnectionRegistry } from './connections.js';
import { forwardRequest, sendText, type UpstreamPool } from './forward.js';
import { upstreamRequestHeaders } from './headers.js';
import { STREAM_HIGH_WATER_MARK } from './buffers.js';
import type { Logger } from './logger.js';
import { errorText, pathWithoutQuery } from './logger.js';
import { UNKNOWN_ROUTE, type ProxyMetrics } from './metrics.js';

/**
 * The HTTP/1.1 spoken inside the TLS session, and routing (docs/contract.md 3).
 *
 * One node:http Server that never listens: every TLS socket that completed its handshake is handed to it
 * with `emit('connection', socket)`, so keep-alive, pipelining rules, header limits and timeouts are Node's.
 * - Host -> route with lookupRoute (exact host, then the host minus ".<tunnel_domain>"); path and query are
 *   passed unchanged; an unknown host gets 502 "No route configured for host" and the log "no route for host".
 * - limits.max_header_bytes bounds the request head (431 beyond it); limits.idle_timeout bounds both the wait
 *   for a complete request head (Node's headersTimeout: a slow client is cut, 408) and the keep-alive idle
 *   time between requests; requestTimeout is 0, so a streaming request or response has no total time limit.
 */
export const NO_ROUTE_BODY = 'No route configured for host';

export interface RouterOptions {
  config: Pick<ProxyConfig, 'routes' | 'tunnelDomain' | 'limits'>;
  /** Route key -> its upstream pool. */
  pools: Map<string, UpstreamPool>;
  connections: ConnectionRegistry;
  logger: Logger;
  metrics: ProxyMetrics;
}

type RouteMatch = { key: string; upstream: Upstream } | null;
const ROUTE_CACHE_MAX = 1024;

export function createInnerHttpServer(options: RouterOptions): http.Server {
  const { config, pools, connections, logger, metrics } = options;
  const idle = Math.max(1, config.limits.idleTimeoutMs);
  const routeCache = new Map<string, RouteMatch>();

  const resolveRoute = (host: string): RouteMatch => {
    let hit = routeCache.get(host);
    if (hit === undefined) {
      hit = lookupRoute(config, host) ?? null;
      // Bounded: a client sending endless distinct Host values must not grow memory.
      if (routeCache.size >= ROUTE_CACHE_MAX) routeCache.clear();
      routeCache.set(host, hit);
    }
    return hit;
  };

  const server = http.createServer(
    {
      maxHeaderSize: config.limits.maxHeaderBytes,
      headersTimeout: idle,
      requestTimeout: 0,
      keepAliveTimeout: idle,
      connectionsCheckingInterval: Math.min(1_000, Math.max(50, Math.floor(idle / 4))),
      highWaterMark: STREAM_HIGH_WATER_MARK,
    },
    (req, res) => {
      const started = performance.now();
      const conn = connections.requestStarted(req, res);
      const { headers, host, hasBody, contentLength } = upstreamRequestHeaders(req.rawHeaders);
      const routingHost = host;
      const target = req.url ?? '/';
      if (target.charCodeAt(0) !== 47 /* '/' */ && target !== '*') {
        // absolute-form (RFC 9112 3.2.2) is refused, not routed: its authority and the Host header could
        // disagree, and the upstream would then see another host than the one the request was routed by.
        // Anthropic's side sends origin-form; a proxy-style client has nothing to gain here.
        logger.debug('absolute-form request target refused', { conn: conn?.id });
        sendText(res, 400, 'Bad request target: use origin-form (GET /path), not an absolute URL\n');
        req.resume();
        return;
      }
      const match = routingHost === undefined ? null : resolveRoute(routingHost);
      const path = pathWithoutQuery(target);
      const route = match ? match.key : UNKNOWN_ROUTE;
      if (logger.isEnabled('info')) {
        logger.info('request started', { conn: conn?.id, method: req.method, host: routingHost, route: match?.key, path });
      }
      res.once('close', () => {
        const status = res.statusCode;
        metrics.requestFinished(route, status);
        if (logger.isEnabled('info')) {
          logger.info('request completed', {
            conn: conn?.id,
            method: req.method,
            route: match?.key,
            path,
            status,
            duration_ms: Math.round((performance.now() - started) * 10) / 10,
            aborted: res.writableFinished ? undefined : true,
          });
        }
      });
      if (!match) {
        logger.warn('no route for host', { host: routingHost ?? '', conn: conn?.id });
        sendText(res, 502, NO_ROUTE_BODY);
        req.resume();
        return;
      }
      forwardRequest(req, res, { route: match.key, pool: pools.get(match.key)!, headers, hasBody, contentLength, logger, metrics });
    },
  );

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    logger.debug('bad request inside the tunnel', { conn: connections.connectionOf(socket)?.id, error: err.code ?? errorText(err) });
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    // end(), not destroy(): the answer must get through TLS and the WebSocket before the close.
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    setTimeout(() => socket.destroy(), 5_000).unref();
  });

  // Keep-alive idle timeout reached (Node emits 'timeout' on the server and leaves the socket to us when we
  // listen): close the TLS session and the WebSocket properly instead of cutting them.
  server.on('timeout', (socket: Duplex) => {
    logger.debug('tunnel connection idle, closing', { conn: connections.connectionOf(socket)?.id });
    socket.end();
    setTimeout(() => socket.destroy(), 5_000).unref();
  });

  // A client that sends its request and then half-closes (TLS close_notify, end()) still gets its answer:
  // the socket is ended once the response is complete, not at the client's end (the TLS socket and the
  // WebSocket stream under it are half-open capable).
  (server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;

  // Node enforces headersTimeout (and tracks idle connections) only for servers that emitted 'listening':
  // its connection checker is armed by that event. This server never listens (sockets are handed to it),
  // so arm the checker explicitly; server.close() disarms it.
  server.emit('listening');
  return server;
}

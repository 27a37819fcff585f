import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './logger.js';
import { errorText } from './logger.js';
import type { ProxyMetrics } from './metrics.js';

/**
 * The admin listener: health and metrics, kept OFF the tunnel path (its own address, default
 * 127.0.0.1:9090; disabled with `admin: { listen_addr: "" }`). The paths are a contract:
 *   GET /livez    200 {"status":"ok"} while the process serves at all
 *   GET /readyz   200 {"status":"ready", ...} when the config is loaded, the tunnel listener is bound, the
 *                 certificate is valid now and the proxy is not shutting down; otherwise
 *                 503 {"status":"not ready","reason":"..."}
 *   GET /metrics  Prometheus text format (metrics.ts lists the series)
 * HEAD is answered like GET without a body; anything else is 404 (405 for other methods on these paths).
 */
export const ADMIN_PATHS = { livez: '/livez', readyz: '/readyz', metrics: '/metrics' } as const;

export interface Readiness {
  ready: boolean;
  /** Why not, in one line (absent when ready). */
  reason?: string;
  certificate?: { not_before: string; not_after: string; serial: string };
}

export interface AdminServerOptions {
  host: string | undefined;
  port: number;
  readiness(): Readiness;
  metrics: ProxyMetrics;
  logger: Logger;
}

export interface AdminServer {
  address(): AddressInfo;
  close(): Promise<void>;
}

export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const { logger } = options;
  const server = http.createServer({ headersTimeout: 10_000, requestTimeout: 10_000, keepAliveTimeout: 5_000 }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const known = path === ADMIN_PATHS.livez || path === ADMIN_PATHS.readyz || path === ADMIN_PATHS.metrics;
    if (!known) return send(res, 404, 'application/json', JSON.stringify({ error: 'not found', paths: Object.values(ADMIN_PATHS) }), req.method);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, 'application/json', JSON.stringify({ error: 'method not allowed' }), req.method);
    }
    if (path === ADMIN_PATHS.livez) return send(res, 200, 'application/json', JSON.stringify({ status: 'ok' }), req.method);
    if (path === ADMIN_PATHS.readyz) {
      const r = options.readiness();
      const body = r.ready
        ? { status: 'ready', certificate: r.certificate }
        : { status: 'not ready', reason: r.reason ?? 'unknown', certificate: r.certificate };
      return send(res, r.ready ? 200 : 503, 'application/json', JSON.stringify(body), req.method);
    }
    options.metrics.render().then(
      ({ contentType, body }) => send(res, 200, contentType, body, req.method),
      (err: unknown) => {
        logger.error('metrics rendering failed', { error: errorText(err) });
        send(res, 500, 'application/json', JSON.stringify({ error: 'metrics unavailable' }), req.method);
      },
    );
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });

  return {
    address: () => server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(res: http.ServerResponse, status: number, contentType: string, body: string, method: string | undefined): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(method === 'HEAD' ? undefined : body);
}

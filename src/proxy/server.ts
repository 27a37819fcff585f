import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { ProxyConfig } from '../deployment/proxy-config.js';
import { ConfigError, EnvironmentError } from '../errors.js';
import { startAdminServer, type AdminServer, type Readiness } from './admin.js';
import { CertReloader, CertificatePairError } from './cert-reloader.js';
import { ConnectionRegistry } from './connections.js';
import { UpstreamPool } from './forward.js';
import { startInnerTls } from './inner-tls.js';
import { createJsonLogger, errorText, type Logger } from './logger.js';
import { ProxyMetrics } from './metrics.js';
import { createInnerHttpServer } from './router.js';
import { IpValidationError, UpstreamGuard } from './upstream-guard.js';
import { TunnelListener } from './websocket-stream.js';

/**
 * The builtin proxy's lifecycle: startProxy() loads the certificate, prepares one upstream pool per
 * route, binds the tunnel listener and the admin listener, and returns a handle; close() drains
 * gracefully (stop accepting, let in-flight requests finish within shutdown_timeout, then cut).
 *
 * Layers, one per module: websocket-stream (HTTP + WebSocket -> byte stream) -> inner-tls (TLS server
 * over that stream, cert-reloader's current context) -> router (HTTP/1.1, Host -> route) -> forward
 * (upstream-guard checked connection, streaming both ways). admin serves /livez /readyz /metrics.
 */
export interface StartProxyOptions {
  config: ProxyConfig;
  /** The config file's path: relative tls.cert_file, tls.key_file and upstream.tls.ca_file are resolved
   * against its directory (without it, against the current directory). */
  configPath?: string;
  /** Default: JSON lines on stdout at config.logLevel. */
  logger?: Logger;
  /** How often the certificate files are polled (default 2 s). */
  certPollIntervalMs?: number;
  /** Collect prom-client's process_* and nodejs_* metrics (default true). */
  defaultMetrics?: boolean;
}

export interface RunningProxy {
  /** The tunnel listener's bound address (the real port when listen_addr asked for port 0). */
  address(): AddressInfo;
  /** The admin listener's bound address; undefined when the admin listener is disabled. */
  adminAddress(): AddressInfo | undefined;
  /** What GET /readyz answers. */
  readiness(): Readiness;
  readonly metrics: ProxyMetrics;
  readonly certificates: CertReloader;
  /** Tunnel (WebSocket) connections open or being upgraded now. */
  openConnections(): number;
  /** Graceful stop; idempotent (every call returns the same promise). */
  close(): Promise<void>;
}

function resolveFile(file: string, configPath: string | undefined): string {
  if (path.isAbsolute(file)) return file;
  return configPath ? path.resolve(path.dirname(configPath), file) : path.resolve(file);
}

function formatAddr(host: string | undefined, port: number): string {
  if (host === undefined) return `:${port}`;
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

async function upstreamCa(config: ProxyConfig, configPath: string | undefined): Promise<string[] | undefined> {
  const { caFile, includeSystemCas } = config.upstream;
  if (!caFile && !includeSystemCas) return undefined;
  const cas: string[] = [];
  if (includeSystemCas) {
    // What Node trusts by default (bundled Mozilla roots, NODE_EXTRA_CA_CERTS) plus the OS trust store.
    const system = typeof tls.getCACertificates === 'function' ? [...tls.getCACertificates('default'), ...tls.getCACertificates('system')] : [...tls.rootCertificates];
    cas.push(...new Set(system));
  }
  if (caFile) {
    const file = resolveFile(caFile, configPath);
    try {
      cas.push(await readFile(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`cannot read upstream.tls.ca_file ${file} (${(err as NodeJS.ErrnoException).code ?? errorText(err)})`, 'point upstream.tls.ca_file at the PEM bundle of the CA that signed the https upstreams', 'UPSTREAM_CA_FILE_INVALID');
    }
  }
  return cas;
}

async function listenOrExplain<T>(what: string, addr: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'the address is already in use' : code === 'EACCES' ? 'permission denied' : code === 'EADDRNOTAVAIL' ? 'no such local address' : errorText(err);
    throw new EnvironmentError(`cannot listen on ${addr} (${what}): ${why}`, `free the port or change ${what} in the proxy config`, err, 'LISTEN_FAILED');
  }
}

export async function startProxy(options: StartProxyOptions): Promise<RunningProxy> {
  const { config, configPath } = options;
  const logger = options.logger ?? createJsonLogger({ level: config.logLevel });
  const metrics = new ProxyMetrics({ defaultMetrics: options.defaultMetrics });

  const certFile = resolveFile(config.tls.certFile, configPath);
  const keyFile = resolveFile(config.tls.keyFile, configPath);
  let certificates: CertReloader;
  try {
    certificates = await CertReloader.load({ certFile, keyFile, logger, metrics, pollIntervalMs: options.certPollIntervalMs });
  } catch (err) {
    if (err instanceof CertificatePairError) {
      throw new ConfigError(`tls: ${err.message}`, 'tls.cert_file and tls.key_file must be a PEM certificate and its private key (mcp-tunnel renew-cert makes a new pair)', 'TLS_CERT_INVALID');
    }
    throw err;
  }

  const guard = new UpstreamGuard(config.upstream.allowedIps);
  const ca = await upstreamCa(config, configPath);
  const pools = new Map<string, UpstreamPool>();
  for (const [key, upstream] of config.routes) {
    const pool = new UpstreamPool(upstream, { guard, ca, connectTimeoutMs: config.limits.handshakeTimeoutMs });
    pools.set(key, pool);
    const written = upstream.writtenHost ? { written: upstream.writtenHost } : {};
    logger.info('route configured', { route: key, upstream: upstream.url, ...written });
    // Said at start too, so nobody waits for the first request to learn the route can never work.
    if (pool.refusedLiteral !== undefined) logger.warn(new IpValidationError(pool.refusedLiteral, upstream.writtenHost).message, { route: key, upstream: upstream.url, ...written });
  }
  if (!guard.enabled) logger.warn('upstream IP validation is disabled (upstream.disable_ip_validation)', {});

  const connections = new ConnectionRegistry();
  const inner = createInnerHttpServer({ config, pools, connections, logger, metrics });
  let closing = false;

  const tunnel = new TunnelListener({
    maxConnections: config.limits.maxConnections,
    handshakeTimeoutMs: config.limits.handshakeTimeoutMs,
    maxHeaderBytes: config.limits.maxHeaderBytes,
    maxFrameBytes: config.limits.maxFrameBytes,
    logger,
    metrics,
    onStream: (stream) => {
      const conn = connections.add(stream);
      if (closing) {
        stream.terminate();
        return;
      }
      logger.debug('tunnel connection opened', { conn: stream.id, remote: stream.remoteAddress, path: stream.path });
      const socket = startInnerTls(stream.stream, {
        secureContext: certificates.secureContext,
        handshakeTimeoutMs: config.limits.handshakeTimeoutMs,
        logger,
        metrics,
        connId: stream.id,
        remoteAddress: stream.remoteAddress,
        onSecure: (secured) => {
          connections.markSecure(conn);
          if (!closing && !secured.destroyed) inner.emit('connection', secured);
        },
      });
      connections.attachTls(conn, socket);
      // Once the TLS session is over, the WebSocket has nothing left to carry: give its close handshake a
      // moment, then make sure it is gone.
      socket.once('close', () => {
        const timer = setTimeout(() => stream.terminate(), 5_000);
        timer.unref();
        void stream.closed.then(() => clearTimeout(timer));
      });
      void stream.closed.then(() => logger.debug('tunnel connection closed', { conn: stream.id }));
    },
  });

  const abandon = (): void => {
    tunnel.stopAccepting();
    inner.close();
    for (const pool of pools.values()) pool.destroy();
  };
  const listenAddr = formatAddr(config.listenAddr.host, config.listenAddr.port);
  try {
    await listenOrExplain('listen_addr', listenAddr, () => tunnel.listen(config.listenAddr.host, config.listenAddr.port));
  } catch (err) {
    abandon();
    throw err;
  }

  const readiness = (): Readiness => {
    const cert = certificates.certificate;
    const certificate = { not_before: cert.notBefore.toISOString(), not_after: cert.notAfter.toISOString(), serial: cert.serialNumber };
    if (closing) return { ready: false, reason: 'shutting down', certificate };
    if (!tunnel.listening) return { ready: false, reason: 'the tunnel listener is not bound', certificate };
    const now = Date.now();
    if (now < cert.notBefore.getTime()) return { ready: false, reason: `the certificate is not valid before ${certificate.not_before}`, certificate };
    if (now > cert.notAfter.getTime()) return { ready: false, reason: `the certificate expired at ${certificate.not_after}`, certificate };
    return { ready: true, certificate };
  };

  let admin: AdminServer | undefined;
  if (config.admin) {
    const { host, port } = config.admin;
    try {
      admin = await listenOrExplain('admin.listen_addr', formatAddr(host, port), () => startAdminServer({ host, port, readiness, metrics, logger }));
    } catch (err) {
      abandon();
      throw err;
    }
  }

  certificates.start();
  const bound = tunnel.address()!;
  logger.info('proxy listening', {
    listen_addr: formatAddr(bound.address, bound.port),
    admin_addr: admin ? formatAddr(admin.address().address, admin.address().port) : undefined,
    certificate_not_after: certificates.certificate.notAfter.toISOString(),
    ip_validation: guard.enabled,
  });

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      logger.info('shutting down', { shutdown_timeout_ms: config.shutdownTimeoutMs, open_connections: connections.size });
      certificates.stop();
      tunnel.stopAccepting();
      const { forced } = await connections.drain(config.shutdownTimeoutMs);
      tunnel.destroyAll();
      inner.close();
      for (const pool of pools.values()) pool.destroy();
      if (admin) await admin.close();
      logger.info('proxy stopped', { forced_connections: forced });
      logger.flush();
    })();
    return closed;
  };

  return {
    address: () => bound,
    adminAddress: () => admin?.address(),
    readiness,
    metrics,
    certificates,
    openConnections: () => tunnel.openConnections,
    close,
  };
}

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Agent, fetch as undiciFetch } from 'undici';
import { WebSocket, createWebSocketStream } from 'ws';
import { parseProxyConfig } from '../../src/deployment/proxy-config.js';
import { createJsonLogger } from '../../src/proxy/logger.js';
import { startProxy, type RunningProxy } from '../../src/proxy/server.js';
import { writeTestPki, type TestPki } from './pki.js';

/**
 * Anthropic's side of the tunnel, for tests and benchmarks: WebSocket to the proxy -> inner TLS inside the
 * WebSocket's byte stream (SNI = the route's hostname, verified against the test CA) -> HTTP/1.1.
 * Same steps as src/probe (the real client); kept dependency-free of it so proxy tests stand alone.
 */
export interface TunnelClientOptions {
  /** e.g. ws://127.0.0.1:PORT/ */
  proxyUrl: string;
  /** PEM of the CA that signed the proxy's certificate. */
  ca: string | Buffer;
  /** Bound for the WebSocket upgrade plus the TLS handshake (default 10 s). */
  timeoutMs?: number;
}

export interface TunnelSocket {
  /** The inner TLS socket: write HTTP/1.1 to it. */
  socket: tls.TLSSocket;
  ws: WebSocket;
  /** Cut everything at once. */
  destroy(): void;
}

/** The WebSocket upgrade was answered with an HTTP status instead of 101. */
export class TunnelUpgradeError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`WebSocket upgrade refused: HTTP ${status} ${body.trim()}`);
  }
}

/** Opens one WebSocket and runs the inner TLS handshake over it with SNI `servername`. */
export async function openTunnelSocket(options: TunnelClientOptions & { servername: string }): Promise<TunnelSocket> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const ws = new WebSocket(options.proxyUrl, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => reject(new TunnelUpgradeError(res.statusCode ?? 0, body)));
      res.on('error', reject);
    });
  });
  const stream = createWebSocketStream(ws);
  stream.on('error', () => undefined);
  const socket = tls.connect({ socket: stream, servername: options.servername, ca: options.ca, ALPNProtocols: ['http/1.1'], minVersion: 'TLSv1.2' });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`inner TLS handshake not done within ${timeoutMs}ms`)), timeoutMs);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  } catch (err) {
    socket.destroy();
    ws.terminate();
    throw err;
  }
  // Errors after the handshake (the proxy closed the tunnel while we were writing) are the test's to
  // observe through 'close', never an uncaught exception.
  socket.on('error', () => undefined);
  // When the WebSocket is gone the TLS session is over: close the socket once what arrived was read.
  stream.once('end', () => setImmediate(() => socket.destroy()));
  ws.once('close', () => setTimeout(() => socket.destroy(), 50).unref());
  return {
    socket,
    ws,
    destroy: () => {
      socket.destroy();
      ws.terminate();
    },
  };
}

export interface TunnelFetch {
  /** fetch() whose connections are tunnel sockets (usable as the MCP SDK transport's `fetch`). */
  fetch: (url: string | URL, init?: RequestInit) => Promise<Response>;
  agent: Agent;
  /** Tunnel sockets opened so far (one WebSocket each) and the certificates the proxy presented. */
  stats: { sockets: number; serials: string[] };
  close(): Promise<void>;
}

/**
 * A fetch over the tunnel: every connection undici opens is a new WebSocket + inner TLS with SNI = the
 * URL's host; keep-alive reuses it for the following requests. `connections` bounds sockets per origin.
 */
export function tunnelFetch(options: TunnelClientOptions & { connections?: number }): TunnelFetch {
  const stats = { sockets: 0, serials: [] as string[] };
  const agent = new Agent({
    connections: options.connections ?? 8,
    pipelining: 1,
    connect: (opts, callback) => {
      openTunnelSocket({ ...options, servername: opts.servername || opts.hostname }).then(
        (t) => {
          stats.sockets++;
          stats.serials.push(t.socket.getPeerX509Certificate()?.serialNumber.toLowerCase() ?? '');
          callback(null, t.socket);
        },
        (err: Error) => callback(err, null),
      );
    },
  });
  const fetch = (url: string | URL, init?: RequestInit): Promise<Response> =>
    undiciFetch(url, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher: agent }) as unknown as Promise<Response>;
  return { fetch, agent, stats, close: () => agent.close() };
}

/** A raw HTTP/1.1 exchange on a tunnel socket: writes `request` and collects the answer until `done` says so. */
export function rawExchange(socket: tls.TLSSocket, request: string | Buffer, done: (text: string) => boolean, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => finish(new Error(`no complete answer within ${timeoutMs}ms; got ${JSON.stringify(text.slice(0, 200))}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      if (done(text)) finish();
    };
    const onClose = (): void => finish(done(text) ? undefined : new Error(`socket closed; got ${JSON.stringify(text.slice(0, 200))}`));
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve(text);
    };
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.write(request);
  });
}

/** True once `text` holds a complete HTTP response (Content-Length or chunked body; no body otherwise). */
export function hasCompleteResponse(text: string): boolean {
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const head = text.slice(0, end);
  const body = text.slice(end + 4);
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (length) return Buffer.byteLength(body, 'latin1') >= Number(length[1]);
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) return body === '0\r\n\r\n' || body.endsWith('\r\n0\r\n\r\n');
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// A builtin proxy for tests: real config text through parseProxyConfig, real certificates from the test
// CA, ephemeral ports, logs captured as parsed JSON objects.

export interface LogRecord {
  time: string;
  level: string;
  msg: string;
  [field: string]: unknown;
}

export interface TestProxy {
  proxy: RunningProxy;
  /** ws://127.0.0.1:PORT/ */
  wsUrl: string;
  /** http://127.0.0.1:PORT of the admin listener (undefined when disabled). */
  adminUrl: string | undefined;
  /** Every log line so far, parsed. */
  logs: LogRecord[];
  /** The raw log text (to assert what is NOT logged). */
  logText(): string;
  pki: TestPki;
  domain: string;
  /** Holds config.yaml, tls.crt, tls.key, ca.crt. */
  dir: string;
  /** Client options for openTunnelSocket / tunnelFetch. */
  client: TunnelClientOptions;
  close(): Promise<void>;
}

export interface TestProxyOptions {
  /** Route key -> upstream URL. */
  routes: Record<string, string>;
  /** Extra top-level YAML appended to the config (upstream:, limits:, admin: ...). */
  extraYaml?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  certPollIntervalMs?: number;
  domain?: string;
  /** Go duration, default 5s. */
  shutdownTimeout?: string;
}

export async function startTestProxy(options: TestProxyOptions): Promise<TestProxy> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-proxy-'));
  const pki = await writeTestPki(dir, options.domain);
  const routes = Object.entries(options.routes)
    .map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`)
    .join('\n');
  const hasAdmin = /^admin:/m.test(options.extraYaml ?? '');
  const yaml = [
    'listen_addr: "127.0.0.1:0"',
    `log_level: ${options.logLevel ?? 'debug'}`,
    `shutdown_timeout: ${options.shutdownTimeout ?? '5s'}`,
    `tunnel_domain: ${pki.domain}`,
    'tls:',
    '  cert_file: tls.crt',
    '  key_file: tls.key',
    'routes:',
    routes,
    hasAdmin ? '' : 'admin:\n  listen_addr: "127.0.0.1:0"',
    options.extraYaml ?? '',
  ].join('\n');
  const configPath = path.join(dir, 'config.yaml');
  await writeFile(configPath, yaml);
  const logs: LogRecord[] = [];
  let text = '';
  const logger = createJsonLogger({
    level: options.logLevel ?? 'debug',
    batch: false,
    write: (chunk) => {
      text += chunk;
      for (const line of chunk.split('\n')) if (line) logs.push(JSON.parse(line) as LogRecord);
    },
  });
  const proxy = await startProxy({
    config: parseProxyConfig(yaml),
    configPath,
    logger,
    certPollIntervalMs: options.certPollIntervalMs ?? 50,
    defaultMetrics: false,
  });
  const admin = proxy.adminAddress();
  const wsUrl = `ws://127.0.0.1:${proxy.address().port}/`;
  return {
    proxy,
    wsUrl,
    adminUrl: admin ? `http://127.0.0.1:${admin.port}` : undefined,
    logs,
    logText: () => text,
    pki,
    domain: pki.domain,
    dir,
    client: { proxyUrl: wsUrl, ca: pki.ca.certPem },
    close: async () => {
      await proxy.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `predicate` every 20 ms until it holds or `timeoutMs` passes (then throws with `what`). */
export async function waitFor(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
}

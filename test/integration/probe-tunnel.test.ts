import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createCa, issueServerCert, type PemPair } from '../../src/pki/index.js';
import { openTunnel, runProbe, tunnelFetch, TlsLayerError, WebSocketLayerError } from '../../src/probe/index.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { startSampleMcpServer, type SampleMcpServer } from '../helpers/mcp-upstream.js';

/*
 * The probe library against a minimal, test-only TLS-over-WebSocket server (not the real proxy: that one has
 * its own tests, and probe-proxy.test.ts runs the probe against it). This pins the client side's behaviour
 * and error classification without depending on the proxy's internals.
 */

const DOMAIN = 'abcd1234.tunnel.example.com';

interface MiniProxy {
  url: string;
  connections: number;
  close(): Promise<void>;
}

type Mode = 'tls' | 'garbage' | 'http-503' | 'close-after-upgrade';

async function startMiniProxy(opts: { cert: PemPair; routes: Record<string, string>; mode?: Mode }): Promise<MiniProxy> {
  const mode = opts.mode ?? 'tls';
  let connections = 0;
  const inner = http.createServer((req, res) => {
    const host = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '');
    const bare = host.endsWith(`.${DOMAIN}`) ? host.slice(0, -DOMAIN.length - 1) : host;
    const target = opts.routes[host] ?? opts.routes[bare];
    if (!target) {
      res.writeHead(502, { 'content-type': 'text/plain' }).end('No route configured for host\n');
      return;
    }
    if (target === 'blocked') {
      res.writeHead(502, { 'content-type': 'text/plain' }).end('Bad Gateway: IP validation failed: 127.0.0.2 is not a private address\n');
      return;
    }
    const up = new URL(target);
    const upReq = http.request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: { ...req.headers, host: up.host } }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    upReq.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end('upstream connection failed\n');
      else res.destroy();
    });
    req.pipe(upReq);
  });
  const outer = http.createServer((_req, res) => res.writeHead(426).end('Upgrade Required\n'));
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  outer.on('upgrade', (req, socket, head) => {
    if (mode === 'http-503') {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      connections += 1;
      if (mode === 'close-after-upgrade') {
        ws.close(1011, 'tls handshake failed');
        return;
      }
      if (mode === 'garbage') {
        ws.on('message', () => ws.send(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\nthis is not TLS at all, just text')));
        return;
      }
      const stream = createWebSocketStream(ws);
      stream.on('error', () => {});
      const secure = new tls.TLSSocket(stream, { isServer: true, key: opts.cert.keyPem, cert: opts.cert.certPem, ALPNProtocols: ['http/1.1'] });
      secure.on('error', () => secure.destroy());
      inner.emit('connection', secure);
    });
  });
  await new Promise<void>((r) => outer.listen(0, '127.0.0.1', r));
  const port = (outer.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}/`,
    get connections() {
      return connections;
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      inner.closeAllConnections();
      await new Promise<void>((r) => outer.close(() => r()));
      outer.closeAllConnections();
    },
  };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('probe library over a test-only TLS-in-WebSocket server', () => {
  let pki: TestPki;
  let upstream: SampleMcpServer;
  let proxy: MiniProxy;
  const toClose: Array<{ close(): Promise<void> }> = [];

  beforeAll(async () => {
    pki = await makeTestPki(DOMAIN);
    upstream = await startSampleMcpServer();
    proxy = await startMiniProxy({ cert: pki.server, routes: { echo: upstream.origin, blocked: 'blocked' } });
  });
  afterAll(async () => {
    await Promise.allSettled(toClose.map((c) => c.close()));
    await proxy?.close();
    await upstream?.close();
  });

  const base = () => ({ proxyUrl: proxy.url, domain: DOMAIN, caPem: pki.ca.certPem, timeoutMs: 5000 });

  it('runs websocket -> tls -> initialize -> tools/list -> tools/call with timings', async () => {
    const seen: string[] = [];
    const result = await runProbe({ ...base(), route: 'echo', callTool: { name: 'hello', args: { name: 'probe' } }, onStep: (s) => seen.push(s.step) });
    expect(result.failure).toBeUndefined();
    expect(result.ok).toBe(true);
    expect(result.steps.map((s) => s.step)).toEqual(['websocket', 'tls', 'initialize', 'tools/list', 'tools/call']);
    expect(seen).toEqual(result.steps.map((s) => s.step));
    for (const s of result.steps) {
      expect(s.ok).toBe(true);
      expect(s.ms).toBeGreaterThanOrEqual(0);
      expect(s.detail).toBeTruthy();
    }
    expect(result.host).toBe(`echo.${DOMAIN}`);
    expect(result.url).toBe(`https://echo.${DOMAIN}/mcp`);
    expect(result.tls?.certificate.ok).toBe(true);
    expect(result.tls?.alpn).toBe('http/1.1');
    expect(result.server?.name).toBe('mcp-tunnel-sample');
    expect(result.tools).toEqual(expect.arrayContaining(['hello', 'echo']));
    expect(result.toolCall).toMatchObject({ name: 'hello', isError: false });
    expect(result.toolCall?.text).toContain('Hello, probe!');
    // the session was closed with a DELETE
    await expect.poll(() => upstream.sessions, { timeout: 2000 }).toBe(0);
  });

  it('the SDK client works through tunnelFetch, several requests per tunnel, Host = <route>.<domain>', async () => {
    const fetchFn = tunnelFetch({ proxyUrl: proxy.url, caPem: pki.ca.certPem });
    toClose.push(fetchFn);
    const client = new Client({ name: 't', version: '0' });
    const transport = new StreamableHTTPClientTransport(new URL(`https://echo.${DOMAIN}/mcp`), { fetch: fetchFn });
    await client.connect(transport);
    await client.listTools();
    const afterConnect = fetchFn.tunnelsOpened;
    for (let i = 0; i < 3; i++) {
      const res = await client.callTool({ name: 'echo', arguments: { text: `n${i}` } });
      expect((res.content as Array<{ text: string }>)[0]!.text).toBe(`n${i}`);
    }
    // sequential requests reuse the open tunnel (keep-alive inside TLS): no new WebSocket per request
    expect(fetchFn.tunnelsOpened).toBe(afterConnect);
    // initialize, then the "initialized" POST and the SDK's standing GET (SSE) stream side by side
    expect(afterConnect).toBeLessThanOrEqual(3);
    await transport.terminateSession();
    await client.close();
    await fetchFn.close();
  });

  it('a certificate from another CA -> tls layer, "not signed by data/ca.crt"', async () => {
    const otherCa = await createCa({ commonName: 'other CA' });
    const cert = await issueServerCert({ ca: otherCa, domain: DOMAIN });
    const p = await startMiniProxy({ cert, routes: { echo: upstream.origin } });
    toClose.push(p);
    const result = await runProbe({ ...base(), proxyUrl: p.url, route: 'echo' });
    expect(result.ok).toBe(false);
    expect(result.steps.map((s) => [s.step, s.ok])).toEqual([['websocket', true], ['tls', false]]);
    expect(result.failure).toMatchObject({ step: 'tls', layer: 'tls', reason: 'unknown-ca' });
    expect(result.failure?.message).toMatch(/not signed by data\/ca\.crt/);
    expect(result.failure?.hint).toMatch(/renew-cert/);
  });

  it('a certificate for another domain -> tls layer, SAN hint', async () => {
    const cert = await issueServerCert({ ca: pki.ca, domain: 'other.example.org' });
    const p = await startMiniProxy({ cert, routes: { echo: upstream.origin } });
    toClose.push(p);
    const result = await runProbe({ ...base(), proxyUrl: p.url, route: 'echo' });
    expect(result.failure).toMatchObject({ step: 'tls', layer: 'tls', reason: 'hostname-mismatch' });
    expect(result.failure?.message).toContain(`does not cover echo.${DOMAIN}`);
    expect(result.failure?.message).toContain('other.example.org');
    expect(result.failure?.hint).toContain(`*.${DOMAIN}`);
  });

  it('an expired certificate -> tls layer, renew-cert hint', async () => {
    const cert = await issueServerCert({ ca: pki.ca, domain: DOMAIN, notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
    const p = await startMiniProxy({ cert, routes: { echo: upstream.origin } });
    toClose.push(p);
    const result = await runProbe({ ...base(), proxyUrl: p.url, route: 'echo' });
    expect(result.failure).toMatchObject({ step: 'tls', layer: 'tls', reason: 'expired' });
    expect(result.failure?.hint).toMatch(/renew-cert/);
  });

  it('docs/contract.md §4 rules run after the handshake (validity judged at the given time)', async () => {
    const result = await runProbe({ ...base(), route: 'echo', now: new Date(Date.now() + 5 * 365 * 86_400_000) });
    expect(result.failure).toMatchObject({ step: 'tls', layer: 'tls', reason: 'spec:server.validity' });
    expect(result.tls?.certificate.findings.some((f) => f.rule === 'server.authority-key-id' && f.ok)).toBe(true);
  });

  it('unknown route -> routing layer', async () => {
    const result = await runProbe({ ...base(), route: 'nope' });
    expect(result.steps.map((s) => [s.step, s.ok])).toEqual([['websocket', true], ['tls', true], ['initialize', false]]);
    expect(result.failure).toMatchObject({ step: 'initialize', layer: 'routing', reason: 'no-route' });
    expect(result.failure?.message).toContain(`nope.${DOMAIN}`);
  });

  it('upstream refused by IP validation -> upstream layer, allowed_ips hint', async () => {
    const result = await runProbe({ ...base(), route: 'blocked' });
    expect(result.failure).toMatchObject({ step: 'initialize', layer: 'upstream', reason: 'ip-validation' });
    expect(result.failure?.hint).toMatch(/allowed_ips/);
  });

  it('wrong --path -> mcp layer, path hint', async () => {
    const result = await runProbe({ ...base(), route: 'echo', path: '/nope' });
    expect(result.failure).toMatchObject({ step: 'initialize', layer: 'mcp', reason: 'not-mcp-endpoint' });
    expect(result.failure?.hint).toMatch(/--path/);
  });

  it('proxy not running -> websocket layer', async () => {
    const port = await freePort();
    const result = await runProbe({ ...base(), proxyUrl: `ws://127.0.0.1:${port}/`, route: 'echo' });
    expect(result.steps).toHaveLength(1);
    expect(result.failure).toMatchObject({ step: 'websocket', layer: 'websocket', reason: 'connection-refused' });
    expect(result.failure?.hint).toMatch(/is the proxy running/);
  });

  it('a full proxy (503 on upgrade) and a non-WebSocket server -> websocket layer', async () => {
    const full = await startMiniProxy({ cert: pki.server, routes: {}, mode: 'http-503' });
    toClose.push(full);
    await expect(openTunnel({ proxyUrl: full.url, servername: `echo.${DOMAIN}`, caPem: pki.ca.certPem })).rejects.toMatchObject({ layer: 'websocket', reason: 'too-many-connections' });

    const plain = http.createServer((_req, res) => res.writeHead(200).end('hello'));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    toClose.push({ close: () => new Promise<void>((r) => plain.close(() => r())) });
    const err = await openTunnel({ proxyUrl: `ws://127.0.0.1:${(plain.address() as AddressInfo).port}/`, servername: `echo.${DOMAIN}`, caPem: pki.ca.certPem }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WebSocketLayerError);
    expect(err).toMatchObject({ reason: 'not-upgraded' });
  });

  it('garbage instead of TLS, and a close during the handshake -> tls layer', async () => {
    const garbage = await startMiniProxy({ cert: pki.server, routes: {}, mode: 'garbage' });
    toClose.push(garbage);
    const err = await openTunnel({ proxyUrl: garbage.url, servername: `echo.${DOMAIN}`, caPem: pki.ca.certPem, timeoutMs: 3000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TlsLayerError);
    expect(err).toMatchObject({ reason: 'not-tls' });

    const closing = await startMiniProxy({ cert: pki.server, routes: {}, mode: 'close-after-upgrade' });
    toClose.push(closing);
    const err2 = await openTunnel({ proxyUrl: closing.url, servername: `echo.${DOMAIN}`, caPem: pki.ca.certPem, timeoutMs: 3000 }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(TlsLayerError);
    expect(err2).toMatchObject({ reason: 'closed-during-handshake' });
    expect((err2 as Error).message).toMatch(/1011/);
  });

  it('an upstream that never answers: initialize is bounded by the timeout -> mcp layer', async () => {
    const hang = http.createServer(() => {});
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    toClose.push({ close: () => new Promise<void>((r) => { hang.closeAllConnections(); hang.close(() => r()); }) });
    const p = await startMiniProxy({ cert: pki.server, routes: { echo: `http://127.0.0.1:${(hang.address() as AddressInfo).port}` } });
    toClose.push(p);
    const t0 = Date.now();
    const result = await runProbe({ ...base(), proxyUrl: p.url, route: 'echo', timeoutMs: 800 });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(result.failure).toMatchObject({ step: 'initialize', layer: 'mcp', reason: 'timeout' });
    expect(result.failure?.message).toMatch(/no answer to initialize within 800ms/);
  });

  it('wss:// against the plain listener -> websocket layer, "use ws://"', async () => {
    const err = await openTunnel({ proxyUrl: proxy.url.replace('ws:', 'wss:'), servername: `echo.${DOMAIN}`, caPem: pki.ca.certPem, timeoutMs: 3000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ layer: 'websocket', reason: 'not-a-tls-listener' });
    expect((err as { hint: string }).hint).toMatch(/use ws:\/\//);
  });

  it('a step that hangs is bounded by the timeout', async () => {
    const silent = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => silent.once('listening', () => r()));
    toClose.push({ close: () => new Promise<void>((r) => { for (const c of silent.clients) c.terminate(); silent.close(() => r()); }) });
    const t0 = Date.now();
    const err = await openTunnel({ proxyUrl: `ws://127.0.0.1:${(silent.address() as AddressInfo).port}/`, servername: `echo.${DOMAIN}`, caPem: pki.ca.certPem, timeoutMs: 500 }).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(err).toMatchObject({ layer: 'tls', reason: 'timeout' });
  });
});

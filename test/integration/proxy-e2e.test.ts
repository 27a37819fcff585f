import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProxyConfig } from '../../src/deployment/proxy-config.js';
import { EnvironmentError } from '../../src/errors.js';
import { silentLogger, startProxy } from '../../src/proxy/index.js';
import { startSampleMcpServer, type SampleMcpServer } from '../helpers/mcp-upstream.js';
import { hasCompleteResponse, openTunnelSocket, rawExchange, startTestProxy, tunnelFetch, waitFor, type TestProxy } from '../helpers/tunnel-client.js';

/**
 * The data path end to end on loopback: real WebSocket, real inner TLS with the test CA, the real MCP SDK
 * on both ends, and a plain node:http upstream for the streaming and header cases.
 */

interface AuxUpstream {
  origin: string;
  /** When each SSE event of /sse was written (ms, performance clock of this process). */
  sseWrites: number[];
  /** /endless streams whose client side went away. */
  endlessClosed: number;
  bodies: number[];
  close(): Promise<void>;
}

async function startAuxUpstream(): Promise<AuxUpstream> {
  const state = { sseWrites: [] as number[], endlessClosed: 0, bodies: [] as number[] };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://aux.invalid');
    if (url.pathname === '/sse') {
      const n = Number(url.searchParams.get('n') ?? 5);
      const gap = Number(url.searchParams.get('gap') ?? 150);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.flushHeaders();
      let i = 0;
      const tick = (): void => {
        state.sseWrites.push(performance.now());
        res.write(`id: ${i}\ndata: {"event":${i}}\n\n`);
        i++;
        if (i < n) setTimeout(tick, gap);
        else res.end();
      };
      setTimeout(tick, gap);
      return;
    }
    if (url.pathname === '/endless') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': open\n\n');
      const t = setInterval(() => res.write('data: tick\n\n'), 50);
      res.on('close', () => {
        clearInterval(t);
        state.endlessClosed++;
      });
      return;
    }
    if (url.pathname === '/echo') {
      let size = 0;
      req.on('data', (c: Buffer) => (size += c.length));
      req.on('end', () => {
        state.bodies.push(size);
        const body = JSON.stringify({ method: req.method, url: req.url, rawHeaders: req.rawHeaders, bodyLength: size });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'keep-alive, x-upstream-private', 'x-upstream-private': 'hop', 'keep-alive': 'timeout=5' });
        res.end(body);
      });
      return;
    }
    res.writeHead(404).end('not found');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    get sseWrites() {
      return state.sseWrites;
    },
    get endlessClosed() {
      return state.endlessClosed;
    },
    get bodies() {
      return state.bodies;
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

let mcp: SampleMcpServer;
let aux: AuxUpstream;
let t: TestProxy;
let deadPort: number;

beforeAll(async () => {
  mcp = await startSampleMcpServer();
  aux = await startAuxUpstream();
  // A port with nothing listening, for the "upstream unreachable" case.
  const probe = http.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  deadPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  t = await startTestProxy({
    routes: { hello: mcp.origin, aux: aux.origin, dead: `http://127.0.0.1:${deadPort}` },
    extraYaml: 'upstream:\n  allowed_ips: ["127.0.0.1/32"]',
    logLevel: 'debug',
  });
});

afterAll(async () => {
  await t?.close();
  await aux?.close();
  await mcp?.close();
});

describe('builtin proxy: MCP through WebSocket + inner TLS', () => {
  it('logs one "route configured" per route at start', () => {
    const routes = t.logs.filter((l) => l.msg === 'route configured');
    expect(routes.map((l) => [l.route, l.upstream])).toEqual([
      ['hello', mcp.origin],
      ['aux', aux.origin],
      ['dead', `http://127.0.0.1:${deadPort}`],
    ]);
  });

  it('carries a tool call from the real SDK client to the real SDK server', async () => {
    const tf = tunnelFetch({ ...t.client });
    const client = new Client({ name: 'proxy-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`https://hello.${t.domain}/mcp?tenant=secret-query-value`), {
      fetch: tf.fetch,
      requestInit: { headers: { Authorization: 'Bearer top-secret-token-value' } },
    });
    try {
      await client.connect(transport);
      const tools = await client.listTools();
      expect(tools.tools.map((x) => x.name).sort()).toEqual(['echo', 'hello']);
      const result = await client.callTool({ name: 'hello', arguments: { name: 'tunnel' } });
      expect(result.content).toEqual([{ type: 'text', text: 'Hello, tunnel! (from an MCP server behind the tunnel)' }]);
      expect(tf.stats.sockets).toBeGreaterThanOrEqual(1);
    } finally {
      await client.close();
      await tf.close();
    }
    const started = t.logs.filter((l) => l.msg === 'request started' && l.route === 'hello');
    expect(started.length).toBeGreaterThanOrEqual(3);
    expect(started[0]).toMatchObject({ level: 'info', method: 'POST', host: `hello.${t.domain}`, path: '/mcp' });
    expect(t.logs.some((l) => l.msg === 'request completed' && l.route === 'hello' && l.status === 200)).toBe(true);
    // Never the Authorization value, never query string values.
    expect(t.logText()).not.toContain('top-secret-token-value');
    expect(t.logText()).not.toContain('secret-query-value');
    // SNI was read and logged at debug.
    expect(t.logs.some((l) => l.msg === 'tls handshake complete' && l.sni === `hello.${t.domain}`)).toBe(true);
  });

  it('serves several requests on one WebSocket connection (keep-alive)', async () => {
    const tf = tunnelFetch({ ...t.client, connections: 1 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await tf.fetch(`https://aux.${t.domain}/echo?i=${i}`, { method: 'POST', body: `request ${i}` });
        const body = (await res.json()) as { url: string; bodyLength: number };
        expect(body.url).toBe(`/echo?i=${i}`);
        statuses.push(res.status);
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200]);
      expect(tf.stats.sockets).toBe(1);
    } finally {
      await tf.close();
    }
  });

  it('streams SSE events one by one while the upstream is still writing', async () => {
    const tf = tunnelFetch({ ...t.client, connections: 1 });
    try {
      const writesBefore = aux.sseWrites.length;
      const res = await tf.fetch(`https://aux.${t.domain}/sse?n=5&gap=200`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/event-stream');
      const arrivals: number[] = [];
      let buffered = '';
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        let idx: number;
        while ((idx = buffered.indexOf('\n\n')) !== -1) {
          buffered = buffered.slice(idx + 2);
          arrivals.push(performance.now());
        }
      }
      const writes = aux.sseWrites.slice(writesBefore);
      expect(arrivals).toHaveLength(5);
      expect(writes).toHaveLength(5);
      // Event i reached the client before the upstream even wrote event i+1: no batching anywhere.
      for (let i = 0; i < 4; i++) expect(arrivals[i]!).toBeLessThan(writes[i + 1]!);
    } finally {
      await tf.close();
    }
  });

  it('passes path, query, Host, Authorization and MCP headers; drops hop-by-hop headers both ways', async () => {
    const { socket, destroy } = await openTunnelSocket({ ...t.client, servername: `aux.${t.domain}` });
    try {
      const body = 'x'.repeat(100_000);
      const request =
        `POST /echo/../echo?q=1&b=%20two HTTP/1.1\r\nHost: aux.${t.domain}\r\nAuthorization: Bearer abc\r\nMcp-Session-Id: s-123\r\n` +
        `Mcp-Protocol-Version: 2025-06-18\r\nMcp-Method: tools/call\r\nMcp-Name: hello\r\nLast-Event-ID: 7\r\n` +
        `Connection: keep-alive, X-Private\r\nX-Private: drop-me\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic Zm9v\r\nTE: trailers\r\n` +
        `Transfer-Encoding: chunked\r\n\r\n${(100_000).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
      const answer = await rawExchange(socket, request, hasCompleteResponse);
      expect(answer).toMatch(/^HTTP\/1\.1 200/);
      const [head, json] = answer.split('\r\n\r\n') as [string, string];
      // Response hop-by-hop headers of the upstream are not relayed.
      expect(head.toLowerCase()).not.toContain('x-upstream-private');
      const echoed = JSON.parse(json) as { url: string; rawHeaders: string[]; bodyLength: number };
      expect(echoed.url).toBe('/echo/../echo?q=1&b=%20two');
      expect(echoed.bodyLength).toBe(100_000);
      const names = echoed.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
      const value = (n: string): string | undefined => echoed.rawHeaders[echoed.rawHeaders.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === n) + 1];
      expect(value('host')).toBe(`aux.${t.domain}`);
      expect(value('authorization')).toBe('Bearer abc');
      expect(value('mcp-session-id')).toBe('s-123');
      expect(value('mcp-protocol-version')).toBe('2025-06-18');
      expect(value('mcp-method')).toBe('tools/call');
      expect(value('mcp-name')).toBe('hello');
      expect(value('last-event-id')).toBe('7');
      for (const gone of ['x-private', 'proxy-authorization', 'te']) expect(names).not.toContain(gone);
    } finally {
      destroy();
    }
  });

  it('answers an unknown host with 502 "No route configured for host" and logs it', async () => {
    const { socket, destroy } = await openTunnelSocket({ ...t.client, servername: `nope.${t.domain}` });
    try {
      const answer = await rawExchange(socket, `GET /mcp HTTP/1.1\r\nHost: nope.${t.domain}\r\n\r\n`, hasCompleteResponse);
      expect(answer).toMatch(/^HTTP\/1\.1 502/);
      expect(answer.split('\r\n\r\n')[1]).toBe('No route configured for host');
      await waitFor(() => t.logs.some((l) => l.msg === 'no route for host' && l.host === `nope.${t.domain}`), 'the no-route log line');
      // The connection stays usable.
      const again = await rawExchange(socket, `GET /echo HTTP/1.1\r\nHost: aux.${t.domain}\r\n\r\n`, hasCompleteResponse);
      expect(again).toMatch(/^HTTP\/1\.1 200/);
    } finally {
      destroy();
    }
  });

  it('routes by the full hostname too, and ignores a port in Host', async () => {
    const tf = tunnelFetch({ ...t.client });
    try {
      const res = await tf.fetch(`https://aux.${t.domain}:443/echo`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    } finally {
      await tf.close();
    }
  });

  it('answers 502 when the upstream is unreachable', async () => {
    const tf = tunnelFetch({ ...t.client });
    try {
      const res = await tf.fetch(`https://dead.${t.domain}/mcp`);
      expect(res.status).toBe(502);
      expect(await res.text()).toMatch(/upstream/i);
      expect(t.logs.some((l) => l.msg === 'upstream request failed' && l.route === 'dead')).toBe(true);
    } finally {
      await tf.close();
    }
  });

  it('aborts the upstream request when the client goes away', async () => {
    const { socket, destroy } = await openTunnelSocket({ ...t.client, servername: `aux.${t.domain}` });
    const before = aux.endlessClosed;
    await rawExchange(socket, `GET /endless HTTP/1.1\r\nHost: aux.${t.domain}\r\n\r\n`, (text) => text.includes('data: tick'));
    destroy();
    await waitFor(() => aux.endlessClosed > before, 'the upstream stream to be closed');
  });

  it('serves /livez, /readyz and /metrics on the admin listener', async () => {
    const live = await fetch(`${t.adminUrl}/livez`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${t.adminUrl}/readyz`);
    expect(ready.status).toBe(200);
    const readyBody = (await ready.json()) as { status: string; certificate: { not_after: string } };
    expect(readyBody.status).toBe('ready');
    expect(new Date(readyBody.certificate.not_after).getTime()).toBeGreaterThan(Date.now());
    const metrics = await fetch(`${t.adminUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await metrics.text();
    expect(text).toMatch(/^mcp_tunnel_proxy_tunnel_connections_total \d+/m);
    expect(text).toMatch(/^mcp_tunnel_proxy_tunnel_connections_open \d+/m);
    expect(text).toMatch(/^mcp_tunnel_proxy_requests_total\{route="hello",status="200"\} \d+/m);
    expect(text).toMatch(/^mcp_tunnel_proxy_requests_total\{route="_unknown",status="502"\} 1$/m);
    expect(text).toMatch(/^mcp_tunnel_proxy_upstream_latency_seconds_bucket\{le="0\.1",route="hello"\} \d+/m);
    expect(text).toMatch(/^mcp_tunnel_proxy_tls_handshake_failures_total\{reason="error"\} \d+/m);
    const notAfter = /^mcp_tunnel_proxy_certificate_not_after_seconds (\d+)/m.exec(text);
    expect(Number(notAfter?.[1])).toBe(Math.floor(new Date(readyBody.certificate.not_after).getTime() / 1000));
    expect(text).toMatch(/^mcp_tunnel_proxy_certificate_reloads_total\{result="success"\} 0$/m);
    const missing = await fetch(`${t.adminUrl}/nope`);
    expect(missing.status).toBe(404);
  });

  it('is not reachable on the tunnel port: a plain request there gets 426', async () => {
    const res = await fetch(`http://127.0.0.1:${t.proxy.address().port}/readyz`);
    expect(res.status).toBe(426);
    expect(res.headers.get('upgrade')).toBe('websocket');
  });

  it('fails to start with a clear EnvironmentError when listen_addr is taken', async () => {
    const port = t.proxy.address().port;
    const yaml = `listen_addr: "127.0.0.1:${port}"\ntls:\n  cert_file: ${t.dir}/tls.crt\n  key_file: ${t.dir}/tls.key\nroutes:\n  hello.example.com: "${mcp.origin}"\nadmin:\n  listen_addr: ""`;
    const err = await startProxy({ config: parseProxyConfig(yaml), logger: silentLogger, defaultMetrics: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnvironmentError);
    expect((err as Error).message).toBe(`cannot listen on 127.0.0.1:${port} (listen_addr): the address is already in use`);
  });
});

import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startSampleMcpServer, type SampleMcpServer } from '../helpers/mcp-upstream.js';
import { hasCompleteResponse, openTunnelSocket, rawExchange, startTestProxy, TunnelUpgradeError, waitFor, type TestProxy, type TunnelSocket } from '../helpers/tunnel-client.js';

/**
 * Abuse and limits: every bad client is handled (answered or cut) while the proxy keeps serving.
 * Small limits make the timeouts observable quickly.
 */

let mcp: SampleMcpServer;
let t: TestProxy;
const LIMITS = 'limits:\n  max_connections: 3\n  max_header_bytes: 8192\n  handshake_timeout: 600ms\n  idle_timeout: 1s';

beforeAll(async () => {
  mcp = await startSampleMcpServer();
  t = await startTestProxy({ routes: { hello: mcp.origin }, extraYaml: `upstream:\n  allowed_ips: ["127.0.0.1/32"]\n${LIMITS}`, logLevel: 'debug' });
});

afterAll(async () => {
  await t?.close();
  await mcp?.close();
});

/** The proxy still does its job: a full request through a fresh tunnel. */
async function stillServes(): Promise<void> {
  await waitFor(() => t.proxy.openConnections() < 3, 'a free connection slot');
  const { socket, destroy } = await openTunnelSocket({ ...t.client, servername: `hello.${t.domain}` });
  try {
    const answer = await rawExchange(socket, `GET /mcp HTTP/1.1\r\nHost: hello.${t.domain}\r\n\r\n`, hasCompleteResponse);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /); // the sample server's "no session" answer: the path works
  } finally {
    destroy();
  }
}

/** A raw TCP client of the tunnel port: everything it receives, and when it was closed. */
function rawClient(): Promise<{ socket: net.Socket; received: () => string; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(t.proxy.address().port, '127.0.0.1');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('error', () => undefined);
    const started = Date.now();
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now() - started)));
    socket.once('connect', () => resolve({ socket, received: () => text, closed }));
    socket.once('error', reject);
  });
}

function openWebSocket(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(t.wsUrl, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

describe('builtin proxy under abuse', () => {
  it('survives garbage instead of TLS: logs "tls handshake failed", counts it, closes the WebSocket', async () => {
    const ws = await openWebSocket();
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    ws.send(Buffer.from('GET / HTTP/1.1\r\nHost: not-tls\r\n\r\n'));
    await closed;
    await waitFor(() => t.logs.some((l) => l.msg === 'tls handshake failed' && /http request|wrong version|packet length|unexpected/i.test(String(l.reason))), 'the handshake failure log');
    const metrics = await (await fetch(`${t.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/^mcp_tunnel_proxy_tls_handshake_failures_total\{reason="error"\} [1-9]/m);
    await stillServes();
  });

  it('survives random bytes in text frames too', async () => {
    const ws = await openWebSocket();
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    ws.send(Buffer.from([0xff, 0xfe, 0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 0x80, 0x81]), { binary: false });
    await closed;
    await stillServes();
  });

  it('answers a non-WebSocket request with 426 and a non-HTTP one with 400', async () => {
    const plain = await fetch(`http://127.0.0.1:${t.proxy.address().port}/mcp`, { method: 'POST', body: 'hello' });
    expect(plain.status).toBe(426);
    await plain.arrayBuffer();
    const junk = await rawClient();
    junk.socket.write('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 definitely not http\r\n\r\n');
    await junk.closed;
    expect(junk.received()).toMatch(/^HTTP\/1\.1 400 /);
    await stillServes();
  });

  it('refuses oversized headers on the upgrade request (431)', async () => {
    const big = await rawClient();
    big.socket.write(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    await big.closed;
    expect(big.received()).toMatch(/^HTTP\/1\.1 431 /);
    await stillServes();
  });

  it('refuses oversized headers inside the tunnel (431) and closes that connection', async () => {
    const { socket, destroy } = await openTunnelSocket({ ...t.client, servername: `hello.${t.domain}` });
    try {
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      const answer = await rawExchange(socket, `GET /mcp HTTP/1.1\r\nHost: hello.${t.domain}\r\nX-Big: ${'b'.repeat(16_000)}\r\n\r\n`, (s) => s.includes('\r\n\r\n'));
      expect(answer).toMatch(/^HTTP\/1\.1 431 /);
      await closed;
    } finally {
      destroy();
    }
    await stillServes();
  });

  it('cuts a slow client on the outer HTTP (slowloris) after handshake_timeout', async () => {
    const slow = await rawClient();
    slow.socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => slow.socket.write('X-A: b\r\n'), 100);
    try {
      const after = await slow.closed;
      expect(after).toBeLessThan(3_000);
      expect(slow.received()).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(drip);
    }
    await stillServes();
  });

  it('cuts a WebSocket that never starts the TLS handshake after handshake_timeout', async () => {
    const ws = await openWebSocket();
    const started = Date.now();
    await new Promise<void>((r) => ws.once('close', () => r()));
    expect(Date.now() - started).toBeLessThan(3_000);
    await waitFor(() => t.logs.some((l) => l.msg === 'tls handshake failed' && /no handshake within 600ms/.test(String(l.reason))), 'the timeout log');
    const metrics = await (await fetch(`${t.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/^mcp_tunnel_proxy_tls_handshake_failures_total\{reason="timeout"\} [1-9]/m);
    await stillServes();
  });

  it('cuts a client that sends its request head too slowly inside the tunnel (idle_timeout)', async () => {
    const { socket, destroy } = await openTunnelSocket({ ...t.client, servername: `hello.${t.domain}` });
    const started = Date.now();
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.write(`GET /mcp HTTP/1.1\r\nHost: hello.${t.domain}\r\n`);
    const drip = setInterval(() => socket.write('X-A: b\r\n'), 100);
    try {
      await closed;
      expect(Date.now() - started).toBeLessThan(4_000);
      expect(text).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(drip);
      destroy();
    }
    await stillServes();
  });

  it('closes a tunnel connection idle for idle_timeout', async () => {
    const { socket, destroy } = await openTunnelSocket({ ...t.client, servername: `hello.${t.domain}` });
    try {
      await rawExchange(socket, `GET /mcp HTTP/1.1\r\nHost: hello.${t.domain}\r\n\r\n`, hasCompleteResponse);
      const started = Date.now();
      await new Promise<void>((r) => socket.once('close', () => r()));
      // idle_timeout (1 s) plus Node's keep-alive grace; and not earlier: the outer HTTP timeouts
      // (handshake_timeout, 600 ms) do not apply to an upgraded connection.
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(Date.now() - started).toBeLessThan(4_000);
    } finally {
      destroy();
    }
  });

  it('refuses upgrades beyond max_connections with 503, and accepts again once one closes', async () => {
    await waitFor(() => t.proxy.openConnections() === 0, 'no open tunnel connections');
    const open: TunnelSocket[] = [];
    try {
      for (let i = 0; i < 3; i++) open.push(await openTunnelSocket({ ...t.client, servername: `hello.${t.domain}` }));
      const refused = await openTunnelSocket({ ...t.client, servername: `hello.${t.domain}` }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused).toBeInstanceOf(TunnelUpgradeError);
      expect((refused as TunnelUpgradeError).status).toBe(503);
      expect(t.logs.some((l) => l.msg === 'tunnel connection refused: max_connections reached')).toBe(true);
      const metrics = await (await fetch(`${t.adminUrl}/metrics`)).text();
      expect(metrics).toMatch(/^mcp_tunnel_proxy_tunnel_connections_rejected_total\{reason="max_connections"\} [1-9]/m);
      open.shift()!.destroy();
      await stillServes();
    } finally {
      for (const s of open) s.destroy();
    }
  });
});

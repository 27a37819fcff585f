import http from 'node:http';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawUpgrade, rawWebSocket, type RawWebSocket } from '../helpers/raw-websocket.js';
import { hasCompleteResponse, openTunnelSocket, rawExchange, startTestProxy, waitFor, type TestProxy } from '../helpers/tunnel-client.js';

/**
 * The proxy's own WebSocket framing, seen by a client that controls every frame: payload streamed to TLS
 * before a frame (or a message) is complete, fragments with pings between them, protocol errors closed with
 * the right code, the HTTP/1.0 upgrade refused, a half-closed request answered, the inner header limit.
 */
let upstream: http.Server;
let t: TestProxy;
const host = (): string => `hello.${t.domain}`;

beforeAll(async () => {
  upstream = http.createServer({ maxHeaderSize: 64 * 1024 }, (req, res) => {
    const headerBytes = req.rawHeaders.reduce((n, h) => n + h.length, 0);
    res.writeHead(200, { 'content-type': 'text/plain', 'x-host': req.headers.host ?? '' });
    res.end(`ok ${req.method} ${req.url} ${headerBytes}`);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as AddressInfo).port;
  t = await startTestProxy({
    routes: { hello: `http://127.0.0.1:${port}` },
    extraYaml: 'upstream:\n  allowed_ips: ["127.0.0.1/32"]\nlimits:\n  max_frame_bytes: 1048576',
    logLevel: 'info',
  });
});

afterAll(async () => {
  await t?.close();
  await new Promise<void>((r) => upstream?.close(() => r()));
});

async function tlsOver(ws: RawWebSocket, writeFrames?: Parameters<RawWebSocket['stream']>[0]): Promise<tls.TLSSocket> {
  const socket = tls.connect({ socket: ws.stream(writeFrames), servername: host(), ca: t.pki.ca.certPem, ALPNProtocols: ['http/1.1'] });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

const GET = (h: string, extra = ''): string => `GET /mcp HTTP/1.1\r\nHost: ${h}\r\n${extra}\r\n`;

describe('builtin proxy: WebSocket framing', () => {
  it('carries TLS split into fragments with pings between them, and answers each ping', async () => {
    const ws = await rawWebSocket(t.proxy.address().port);
    let n = 0;
    const socket = await tlsOver(ws, (w, bytes) => {
      // Every write: a binary frame without FIN, a ping, then the rest as a continuation with FIN.
      const cut = Math.max(1, bytes.length >> 1);
      w.sendFrame(0x2, bytes.subarray(0, cut), { fin: false });
      w.sendFrame(0x9, Buffer.from(`p${n++}`));
      w.sendFrame(0x0, bytes.subarray(cut), { fin: true });
    });
    const answer = await rawExchange(socket, GET(host()), hasCompleteResponse);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toMatch(/ok GET \/mcp/);
    const pongs = ws.frames.filter((f) => f.opcode === 0xa).map((f) => f.payload.toString());
    expect(pongs).toContain('p0');
    expect(ws.frames.filter((f) => f.opcode === 0x2).length).toBeGreaterThan(0);
    ws.socket.destroy();
  });

  it('hands a frame payload to TLS before the frame is complete (nothing waits for the end of a message)', async () => {
    const ws = await rawWebSocket(t.proxy.address().port);
    // ONE frame declared 1 MiB long (the limit), never finished: the whole TLS session travels inside it.
    const write = ws.startFrame(0x2, 1024 * 1024, true);
    const socket = await tlsOver(ws, (_w, bytes) => void write(bytes));
    const answer = await rawExchange(socket, GET(host()), hasCompleteResponse);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    ws.socket.destroy();
  });

  it('closes with 1002 on an unmasked client frame', async () => {
    const ws = await rawWebSocket(t.proxy.address().port);
    ws.sendFrame(0x2, Buffer.from('hello'), { mask: false });
    await ws.closed;
    const close = ws.frames.find((f) => f.opcode === 0x8);
    expect(close?.payload.readUInt16BE(0)).toBe(1002);
  });

  it('closes with 1009 on a frame over limits.max_frame_bytes, before reading its payload', async () => {
    const ws = await rawWebSocket(t.proxy.address().port);
    ws.startFrame(0x2, 1024 * 1024 + 1, true);
    await ws.closed;
    const close = ws.frames.find((f) => f.opcode === 0x8);
    expect(close?.payload.readUInt16BE(0)).toBe(1009);
  });

  it('answers a close frame with a close frame and ends the connection', async () => {
    const ws = await rawWebSocket(t.proxy.address().port);
    ws.sendFrame(0x8, Buffer.from([0x03, 0xe8]));
    await ws.closed;
    expect(ws.frames.find((f) => f.opcode === 0x8)?.payload.readUInt16BE(0)).toBe(1000);
  });

  it.each([
    [24 * 1024, 101],
    [40 * 1024, 431],
  ])('applies limits.max_header_bytes (32 KiB by default) to the upgrade request: %i bytes of headers -> %i', async (size, status) => {
    const up = await rawUpgrade(t.proxy.address().port, { extraHeaders: `X-Big: ${'a'.repeat(size)}\r\n` });
    expect(up.status).toBe(status);
    up.socket.destroy();
  });

  it('refuses an HTTP/1.0 upgrade with 400', async () => {
    const up = await rawUpgrade(t.proxy.address().port, { httpVersion: '1.0' });
    expect(up.status).toBe(400);
    up.socket.destroy();
  });
});

describe('builtin proxy: inside the tunnel', () => {
  it('answers a request whose client half-closed right after sending it (TLS close_notify)', async () => {
    const tunnel = await openTunnelSocket({ ...t.client, servername: host() });
    const chunks: Buffer[] = [];
    tunnel.socket.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise<void>((r) => tunnel.socket.once('end', () => r()));
    tunnel.socket.end(GET(host(), 'Connection: close\r\n'));
    await Promise.race([ended, waitFor(() => hasCompleteResponse(Buffer.concat(chunks).toString('latin1')), 'the answer')]);
    const text = Buffer.concat(chunks).toString('latin1');
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).toMatch(/ok GET \/mcp/);
    tunnel.destroy();
  });

  it.each([
    [24 * 1024, 200],
    [40 * 1024, 431],
  ])('applies limits.max_header_bytes (32 KiB by default) to the inner request: %i bytes of headers -> %i', async (size, status) => {
    const tunnel = await openTunnelSocket({ ...t.client, servername: host() });
    const answer = await rawExchange(tunnel.socket, GET(host(), `X-Big: ${'a'.repeat(size)}\r\n`), hasCompleteResponse);
    expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    tunnel.destroy();
  });

  it('refuses an absolute-form request target with 400 (routing and Host must not disagree)', async () => {
    const tunnel = await openTunnelSocket({ ...t.client, servername: host() });
    const answer = await rawExchange(tunnel.socket, `GET http://${host()}/mcp HTTP/1.1\r\nHost: nope.${t.domain}\r\n\r\n`, hasCompleteResponse);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    tunnel.destroy();
  });
});

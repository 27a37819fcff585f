import fs from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';
import { writeTestPki, type TestPki } from '../helpers/pki.js';
import { rawWebSocket, type RawWebSocket } from '../helpers/raw-websocket.js';
import { waitFor } from '../helpers/tunnel-client.js';

/**
 * Memory is bounded whatever the peer sends. The proxy runs as its own process (the image's entry point)
 * and its RSS is read from /proc: bounds, not timings.
 *  1. The attack as reported: 100 connections each send all but the last byte of a 15 MiB WebSocket message
 *     right after the upgrade. A proxy that collected messages held 15 MiB per connection (640-930 MiB in
 *     all); this one streams the payload to TLS, which refuses it at once. RSS grows by < 32 MiB and comes
 *     back within 10% of where it started.
 *  2. The same inside a real TLS session: each connection opens ONE frame declared 15 MiB long and pushes a
 *     request body through it towards an upstream that reads nothing, never sending the frame's last byte.
 *     Once the upstream stops reading, the proxy stops reading too (the bytes wait in the kernel's socket
 *     buffers): the client cannot hand it the 15 MiB, and RSS stays far below what collecting would cost.
 */
const DOMAIN = 'mem12345.tunnel.example.com';
const CONNECTIONS = 100;
const FRAME = 15 * 1024 * 1024;
let dir: string;
let pki: TestPki;
let stalled: net.Server;
const stalledSockets = new Set<net.Socket>();
let proxy: ResultPromise | undefined;
let port = 0;

function rssKiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
}

beforeAll(async () => {
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'bundle', 'mcp-proxy.cjs'))) await execa('npm', ['run', 'build'], { cwd: REPO_ROOT });
  dir = await mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-memory-'));
  pki = await writeTestPki(dir, DOMAIN);
  // An upstream that accepts and never reads.
  stalled = net.createServer((s) => {
    stalledSockets.add(s);
    s.pause();
    s.on('error', () => undefined);
    s.once('close', () => stalledSockets.delete(s));
  });
  await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', r));
  const upstreamPort = (stalled.address() as net.AddressInfo).port;
  const config = path.join(dir, 'config.yaml');
  await writeFile(
    config,
    [
      'listen_addr: "127.0.0.1:0"',
      'log_level: warn',
      `tunnel_domain: ${DOMAIN}`,
      'tls:\n  cert_file: tls.crt\n  key_file: tls.key',
      `routes:\n  sink: "http://127.0.0.1:${upstreamPort}"`,
      'upstream:\n  allowed_ips: ["127.0.0.1/32"]',
      'admin:\n  listen_addr: ""',
      'limits:\n  max_connections: 500',
    ].join('\n'),
  );
  proxy = execa(process.execPath, [path.join(REPO_ROOT, 'dist', 'bundle', 'mcp-proxy.cjs'), 'proxy', '--config', config], { reject: false, buffer: false });
  proxy.stdout!.on('data', () => undefined);
  proxy.stderr!.on('data', () => undefined);
  // log_level warn: find the port from the listening socket of the child instead of its log.
  await waitFor(async () => {
    port = await listeningPort(proxy!.pid!);
    return port > 0;
  }, 'the proxy to listen', 15_000);
});

afterAll(async () => {
  proxy?.kill('SIGKILL');
  for (const s of stalledSockets) s.destroy();
  await new Promise<void>((r) => (stalled ? stalled.close(() => r()) : r()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The TCP port the process listens on (from /proc/net/tcp and its file descriptors). */
async function listeningPort(pid: number): Promise<number> {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const table = await readFile('/proc/net/tcp', 'utf8');
  for (const line of table.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols[3] === '0A' && inodes.has(cols[9]!)) return parseInt(cols[1]!.split(':')[1]!, 16);
  }
  return 0;
}

interface Holder {
  ws: RawWebSocket;
  tls: tls.TLSSocket;
  sent: number;
}

async function holdOne(): Promise<Holder> {
  const ws = await rawWebSocket(port);
  const writeFrame = ws.startFrame(0x2, FRAME, true);
  const holder = { ws, sent: 0 } as Holder;
  const socket = tls.connect({
    socket: ws.stream((_w, bytes) => {
      // Never the frame's last byte: the message stays unfinished.
      const room = FRAME - 1 - holder.sent;
      if (room <= 0) return;
      const part = bytes.subarray(0, room);
      holder.sent += part.length;
      writeFrame(part);
    }),
    servername: `sink.${DOMAIN}`,
    ca: pki.ca.certPem,
    ALPNProtocols: ['http/1.1'],
  });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  holder.tls = socket;
  socket.write(`POST /mcp HTTP/1.1\r\nHost: sink.${DOMAIN}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${FRAME}\r\n\r\n`);
  return holder;
}

/** Writes body bytes until the frame is full (all but its last byte) or nothing moves for a while. */
async function push(holder: Holder, deadline: number): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  while (holder.sent < FRAME - 1 - 64 * 1024 && Date.now() < deadline && !holder.tls.destroyed) {
    if (!holder.tls.write(chunk)) {
      const drained = await Promise.race([
        new Promise<boolean>((r) => holder.tls.once('drain', () => r(true))),
        new Promise<boolean>((r) => setTimeout(() => r(false), 300)),
      ]);
      // The proxy stopped reading (its upstream reads nothing): this connection is now holding.
      if (!drained) return;
    }
  }
}

/** One connection sending `bytes` of a single frame's payload (random: not TLS), as fast as it is let. */
async function garbageFrame(bytes: number): Promise<RawWebSocket> {
  const ws = await rawWebSocket(port);
  ws.socket.on('error', () => undefined);
  const write = ws.startFrame(0x2, FRAME, true);
  const chunk = Buffer.alloc(1024 * 1024, 0x5a);
  for (let sent = 0; sent < bytes && !ws.socket.destroyed; sent += chunk.length) {
    if (!write(chunk.subarray(0, Math.min(chunk.length, bytes - sent)))) {
      await Promise.race([new Promise((r) => ws.socket.once('drain', r)), ws.closed, new Promise((r) => setTimeout(r, 2_000))]);
    }
  }
  return ws;
}

describe('builtin proxy memory', () => {
  it(`stays bounded while ${CONNECTIONS} connections each send 15 MiB - 1 byte of one message`, { timeout: 120_000 }, async () => {
    const pid = proxy!.pid!;
    // One round first: the starting point is the proxy's working size (compiled code, the heap and the
    // allocator's pools at their size for 100 connections), which nothing afterwards gives back to the OS.
    const round = (await Promise.all(Array.from({ length: CONNECTIONS }, () => garbageFrame(1024 * 1024)))).map((c) => c.closed);
    await Promise.all(round);
    await new Promise((r) => setTimeout(r, 500));
    const start = rssKiB(pid);
    let peak = start;
    const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(pid))), 20);
    const conns = await Promise.all(Array.from({ length: CONNECTIONS }, () => garbageFrame(FRAME - 1)));
    clearInterval(sampler);
    peak = Math.max(peak, rssKiB(pid));
    console.log(`proxy RSS: start ${(start / 1024).toFixed(1)} MiB, peak ${(peak / 1024).toFixed(1)} MiB with ${CONNECTIONS} unfinished 15 MiB messages`);
    expect((peak - start) / 1024).toBeLessThan(32);
    for (const c of conns) c.socket.destroy();
    let after = peak;
    await waitFor(() => (after = rssKiB(pid)) <= start * 1.1, 'RSS back within 10%', 10_000).catch(() => undefined);
    console.log(`proxy RSS after close: ${(after / 1024).toFixed(1)} MiB`);
    expect(after).toBeLessThanOrEqual(start * 1.1);
  });

  it(`stays bounded while ${CONNECTIONS} connections push an unfinished 15 MiB frame inside TLS towards an upstream that reads nothing`, { timeout: 120_000 }, async () => {
    const pid = proxy!.pid!;
    // Warm up (the code paths compiled and optimised, the heap at its working size) with a few connections
    // that do the same, then take the starting point once they are gone.
    const warm: Holder[] = [];
    for (let i = 0; i < 10; i++) warm.push(await holdOne());
    await Promise.all(warm.map((h) => push(h, Date.now() + 10_000)));
    for (const h of warm) h.ws.socket.destroy();
    for (const s of stalledSockets) s.destroy();
    await new Promise((r) => setTimeout(r, 1000));
    const start = rssKiB(pid);

    const holders: Holder[] = [];
    for (let i = 0; i < CONNECTIONS; i++) holders.push(await holdOne());
    const deadline = Date.now() + 30_000;
    await Promise.all(holders.map((h) => push(h, deadline)));
    const peak = rssKiB(pid);
    const sentMiB = holders.reduce((n, h) => n + h.sent, 0) / 1024 / 1024;
    const growthMiB = (peak - start) / 1024;
    console.log(`proxy RSS: start ${(start / 1024).toFixed(1)} MiB, holding ${(peak / 1024).toFixed(1)} MiB (+${growthMiB.toFixed(1)} MiB) with ${sentMiB.toFixed(0)} MiB handed to the proxy inside unfinished frames`);
    expect(holders.every((h) => !h.tls.destroyed)).toBe(true);
    // The proxy pushed back long before the end of the message...
    expect(holders.every((h) => h.sent < FRAME - 1)).toBe(true);
    // ... and what it holds is an order of magnitude below the 1.5 GiB that collecting the messages costs.
    // What growth there is (about +30 MiB at 25 connections, +60-65 at 100, +88 at 200: it does not scale
    // with the connections) is mostly the allocator keeping what flowed through before the upstream stopped
    // reading: after a forced full GC the RSS stays where it was, and a heap snapshot then holds ~17 MiB of
    // live buffers for 100 connections (two socket reads and 16 KiB each: src/proxy/buffers.ts).
    expect(growthMiB).toBeLessThan(150);

    for (const h of holders) h.ws.socket.destroy();
    for (const s of stalledSockets) s.destroy();
    let after = peak;
    await waitFor(() => (after = rssKiB(pid)) <= start * 1.1, 'RSS back', 5_000).catch(() => undefined);
    console.log(`proxy RSS after close: ${(after / 1024).toFixed(1)} MiB`);
  });
});

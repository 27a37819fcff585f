import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { openTunnelSocket, startTestProxy, tunnelFetch, waitFor, type TestProxy } from '../helpers/tunnel-client.js';

/** Graceful shutdown: stop accepting, let in-flight requests finish within shutdown_timeout, then cut. */

interface SlowUpstream {
  origin: string;
  received: number;
  streamsClosed: number;
  close(): Promise<void>;
}

async function slowUpstream(): Promise<SlowUpstream> {
  const state = { received: 0, streamsClosed: 0 };
  const server = http.createServer((req, res) => {
    state.received++;
    if (req.url === '/slow') {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ done: true }));
      }, 800);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(': open\n\n');
    const timer = setInterval(() => res.write('data: tick\n\n'), 50);
    res.on('close', () => {
      clearInterval(timer);
      state.streamsClosed++;
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get received() {
      return state.received;
    },
    get streamsClosed() {
      return state.streamsClosed;
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(shutdownTimeout: string): Promise<{ t: TestProxy; up: SlowUpstream }> {
  const up = await slowUpstream();
  cleanups.push(() => up.close());
  const t = await startTestProxy({ routes: { slow: up.origin }, extraYaml: 'upstream:\n  allowed_ips: ["127.0.0.1/32"]', shutdownTimeout, logLevel: 'info' });
  cleanups.push(() => t.close());
  return { t, up };
}

describe('graceful shutdown', () => {
  it('finishes an in-flight request, refuses new connections, reports not ready meanwhile', async () => {
    const { t, up } = await setup('10s');
    const tf = tunnelFetch({ ...t.client });
    cleanups.push(() => tf.close());
    const inflight = tf.fetch(`https://slow.${t.domain}/slow`);
    await waitFor(() => up.received === 1, 'the upstream to receive the request');
    const started = Date.now();
    const closing = t.proxy.close();

    const ready = await fetch(`${t.adminUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not ready', reason: 'shutting down' });
    await expect(openTunnelSocket({ ...t.client, servername: `slow.${t.domain}`, timeoutMs: 2_000 })).rejects.toThrow();

    const res = await inflight;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ done: true });
    await closing;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(t.logs.find((l) => l.msg === 'proxy stopped')).toMatchObject({ forced_connections: 0 });
  });

  it('closes idle tunnel connections properly (WebSocket close frame, not a cut)', async () => {
    const { t } = await setup('10s');
    const { ws, destroy } = await openTunnelSocket({ ...t.client, servername: `slow.${t.domain}` });
    cleanups.push(async () => destroy());
    const code = new Promise<number>((r) => ws.once('close', (c) => r(c)));
    await t.proxy.close();
    expect([1000, 1005]).toContain(await code);
  });

  it('cuts a stream still open when shutdown_timeout expires', async () => {
    const { t, up } = await setup('500ms');
    const tf = tunnelFetch({ ...t.client });
    cleanups.push(() => tf.close());
    const res = await tf.fetch(`https://slow.${t.domain}/events`);
    expect(res.status).toBe(200);
    const reading = (async () => {
      try {
        for await (const _ of res.body as unknown as AsyncIterable<Uint8Array>) void _;
      } catch {
        // cut: expected
      }
    })();
    const started = Date.now();
    await t.proxy.close();
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(3_000);
    await reading;
    await waitFor(() => up.streamsClosed === 1, 'the upstream stream to be closed');
    expect(t.logs.find((l) => l.msg === 'proxy stopped')).toMatchObject({ forced_connections: 1 });
  });
});

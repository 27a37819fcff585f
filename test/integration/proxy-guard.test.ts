import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { IP_REFUSED_BODY } from '../../src/proxy/forward.js';
import { startTestProxy, tunnelFetch, type TestProxy } from '../helpers/tunnel-client.js';

/**
 * The SSRF guard: an upstream outside allowed_ips is refused BEFORE any connection attempt. Loopback only:
 * a listener on 127.0.0.2 (or 127.0.0.1) stands for the forbidden address and counts the connections it sees.
 */

interface CountingListener {
  port: number;
  connections: number;
  close(): Promise<void>;
}

async function countingListener(host: string): Promise<CountingListener> {
  const state = { connections: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    state.connections++;
    s.resume();
    s.on('error', () => undefined);
    s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function proxyWith(routes: Record<string, string>, upstreamYaml: string): Promise<TestProxy> {
  const t = await startTestProxy({ routes, extraYaml: upstreamYaml, logLevel: 'info' });
  cleanups.push(() => t.close());
  return t;
}

async function get(t: TestProxy, host: string): Promise<{ status: number; body: string }> {
  const tf = tunnelFetch({ ...t.client });
  try {
    const res = await tf.fetch(`https://${host}/mcp`);
    return { status: res.status, body: await res.text() };
  } finally {
    await tf.close();
  }
}

describe('upstream guard', () => {
  it('refuses an IP literal outside allowed_ips without connecting to it', async () => {
    const forbidden = await countingListener('127.0.0.2');
    cleanups.push(() => forbidden.close());
    const t = await proxyWith({ evil: `http://127.0.0.2:${forbidden.port}` }, 'upstream:\n  allowed_ips: ["127.0.0.1/32"]');
    const res = await get(t, `evil.${t.domain}`);
    expect(res.status).toBe(502);
    expect(res.body).toBe(IP_REFUSED_BODY);
    expect(t.logs.some((l) => l.msg === 'IP validation failed: 127.0.0.2 is not a private address' && l.route === 'evil')).toBe(true);
    // Give a stray connection attempt time to show up before asserting there was none.
    await new Promise((r) => setTimeout(r, 100));
    expect(forbidden.connections).toBe(0);
  });

  it('refuses a hostname that resolves outside allowed_ips without connecting to it', async () => {
    const forbidden = await countingListener('127.0.0.1');
    cleanups.push(() => forbidden.close());
    const t = await proxyWith({ evil: `http://localhost:${forbidden.port}` }, 'upstream:\n  allowed_ips: ["127.0.0.2/32"]');
    const res = await get(t, `evil.${t.domain}`);
    expect(res.status).toBe(502);
    expect(t.logs.some((l) => l.msg === 'IP validation failed: 127.0.0.1 is not a private address')).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(forbidden.connections).toBe(0);
  });

  it('refuses loopback under the default RFC 1918 allowed_ips', async () => {
    const forbidden = await countingListener('127.0.0.1');
    cleanups.push(() => forbidden.close());
    const t = await proxyWith({ evil: `http://127.0.0.1:${forbidden.port}` }, '');
    const res = await get(t, `evil.${t.domain}`);
    expect(res.status).toBe(502);
    expect(forbidden.connections).toBe(0);
    const metrics = await (await fetch(`${t.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/^mcp_tunnel_proxy_upstream_ip_refusals_total\{route="evil"\} 1$/m);
  });

  it('connects to a hostname whose every address is allowed, at the checked address', async () => {
    const allowed = await countingListener('127.0.0.1');
    cleanups.push(() => allowed.close());
    const t = await proxyWith({ ok: `http://localhost:${allowed.port}` }, 'upstream:\n  allowed_ips: ["127.0.0.0/8"]');
    const res = await get(t, `ok.${t.domain}`);
    expect(res).toEqual({ status: 200, body: 'ok' });
    expect(allowed.connections).toBe(1);
  });

  it('connects anywhere with disable_ip_validation', async () => {
    const target = await countingListener('127.0.0.2');
    cleanups.push(() => target.close());
    const t = await proxyWith({ any: `http://127.0.0.2:${target.port}` }, 'upstream:\n  disable_ip_validation: true');
    const res = await get(t, `any.${t.domain}`);
    expect(res).toEqual({ status: 200, body: 'ok' });
    expect(target.connections).toBe(1);
  });
});

describe('upstream guard: non-canonical IPv4 spellings written into the config by hand', () => {
  // Only loopback targets: 134744072 (8.8.8.8) is covered where nothing is dialled (init, routes add).
  it.each([
    ['2130771969', '127.1.0.1', '127.1.0.1', 'upstream:\n  allowed_ips: ["192.0.2.0/24"]'],
    ['0177.1.0.1', '127.1.0.1', '127.1.0.1', 'upstream:\n  allowed_ips: ["192.0.2.0/24"]'],
    ['0x7f.1.0.1', '127.1.0.1', '127.1.0.1', 'upstream:\n  allowed_ips: ["192.0.2.0/24"]'],
    ['127.65537', '127.1.0.1', '127.1.0.1', 'upstream:\n  allowed_ips: ["192.0.2.0/24"]'],
    ['[::ffff:127.0.0.1]', '127.0.0.1', '127.0.0.1', 'upstream:\n  allowed_ips: ["192.0.2.0/24"]'],
    // A catch-all does not open "this host".
    ['0.0.0.0', '0.0.0.0', '127.0.0.1', 'upstream:\n  allowed_ips: ["0.0.0.0/0"]'],
  ])('%s is judged as %s: blocked, logged with both forms, no connection', async (written, canonical, listenOn, yaml) => {
    const forbidden = await countingListener(listenOn);
    cleanups.push(() => forbidden.close());
    const t = await proxyWith({ evil: `http://${written}:${forbidden.port}` }, yaml);
    const res = await get(t, `evil.${t.domain}`);
    expect(res.status).toBe(502);
    expect(res.body).toBe(IP_REFUSED_BODY);
    const suffix = written === canonical ? '' : ` (written ${written})`;
    const refusals = t.logs.filter((l) => l.msg === `IP validation failed: ${canonical} is not a private address${suffix}`);
    // Once at start (the route can never work), once for the request.
    expect(refusals.length).toBe(2);
    expect(refusals.at(-1)).toMatchObject({ route: 'evil', ip: canonical });
    await new Promise((r) => setTimeout(r, 100));
    expect(forbidden.connections).toBe(0);
  });
});

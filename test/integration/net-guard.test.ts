/**
 * The suite's network guard (test/guard/net-guard.mjs) refuses a destination outside loopback before any packet
 * leaves, in this process and in node children, and lets loopback and unix sockets through.
 */
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

/** The deliberate violations below must not fail the test through the setup's afterEach check. */
afterEach(() => {
  const log = process.env.TEST_NET_GUARD_LOG;
  if (log) fs.rmSync(log, { force: true });
});

describe('network guard', () => {
  it('refuses a TCP connection to 192.0.2.1 synchronously, naming the destination (connect is never reached)', () => {
    let thrown: unknown;
    let socket: net.Socket | undefined;
    try {
      socket = net.connect({ host: '192.0.2.1', port: 80 });
    } catch (err) {
      thrown = err;
    }
    socket?.destroy();
    expect(socket).toBeUndefined();
    expect((thrown as Error).message).toContain('net-guard: blocked a connection to 192.0.2.1:80');
    expect((thrown as { code?: string }).code).toBe('NET_GUARD_BLOCKED');
  });

  it('refuses the other spellings: port/host arguments, IPv4-mapped IPv6, a public IPv6, a host name', () => {
    expect(() => net.createConnection(443, '198.51.100.7')).toThrow(/blocked a connection to 198\.51\.100\.7:443/);
    expect(() => net.connect({ host: '::ffff:10.0.0.5', port: 8080 })).toThrow(/blocked a connection to \[::ffff:10\.0\.0\.5\]:8080/);
    expect(() => net.connect({ host: '2001:db8::1', port: 443 })).toThrow(/blocked/);
    expect(() => net.connect({ host: 'api.anthropic.com', port: 443 })).toThrow(/a host name/);
  });

  it('fails fetch (undici) and UDP sends to a non-loopback address', async () => {
    const err = await fetch('http://192.0.2.1:8080/').catch((e: Error) => e);
    expect(String((err as Error & { cause?: Error }).cause?.message ?? (err as Error).message)).toContain('net-guard');
    const udp = dgram.createSocket('udp4');
    try {
      expect(() => udp.send(Buffer.from('x'), 53, '192.0.2.53')).toThrow(/blocked a connection to 192\.0\.2\.53:53/);
    } finally {
      udp.close();
    }
  });

  it('checks the addresses a caller-supplied lookup returns (how the proxy pins upstreams), before connecting', async () => {
    const server = net.createServer((s) => s.end('pinned'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const via = (address: string) =>
      new Promise<string>((resolve, reject) => {
        const lookup = (_h: string, o: { all?: boolean }, cb: (...a: unknown[]) => void) => (o.all ? cb(null, [{ address, family: 4 }]) : cb(null, address, 4));
        const s = net.connect({ host: 'docs.example.test', port, lookup: lookup as never });
        let data = '';
        s.on('data', (d) => (data += d));
        s.on('end', () => resolve(data));
        s.on('error', reject);
      });
    expect(await via('127.0.0.1')).toBe('pinned');
    await expect(via('192.0.2.1')).rejects.toThrow(/blocked a connection to 192\.0\.2\.1/);
    server.close();
  });

  it('lets loopback (v4 and v6) and unix sockets through', async () => {
    const server = net.createServer((s) => s.end('hi'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const read = (opts: net.NetConnectOpts) =>
      new Promise<string>((resolve, reject) => {
        const s = net.connect(opts);
        let data = '';
        s.on('data', (d) => (data += d));
        s.on('end', () => resolve(data));
        s.on('error', reject);
      });
    expect(await read({ host: '127.0.0.1', port })).toBe('hi');
    expect(await read({ host: 'localhost', port })).toBe('hi');
    server.close();

    const sock = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'guard-')), 's.sock');
    const unix = net.createServer((s) => s.end('unix'));
    await new Promise<void>((resolve) => unix.listen(sock, resolve));
    expect(await read({ path: sock })).toBe('unix');
    unix.close();
  });

  it('is inherited by node child processes, which report the violation to the run', () => {
    const log = process.env.TEST_NET_GUARD_LOG!;
    let stderr = '';
    try {
      execFileSync(process.execPath, ['-e', "require('node:net').connect({ host: '192.0.2.1', port: 9 })"], { stdio: 'pipe', env: process.env });
    } catch (err) {
      stderr = String((err as { stderr: Buffer }).stderr);
    }
    expect(stderr).toContain('net-guard: blocked a connection to 192.0.2.1:9');
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    expect(JSON.parse(lines.at(-1)!).destination).toBe('192.0.2.1:9');
  });
});

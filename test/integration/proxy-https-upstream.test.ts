import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { execa } from 'execa';
import { afterAll, beforeAll, afterEach, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { startTestProxy, tunnelFetch, type TestProxy } from '../helpers/tunnel-client.js';

/**
 * https upstreams: verified with upstream.tls.ca_file (or the system CAs), SNI = the upstream's hostname.
 * The upstream's certificate (SAN DNS:localhost) is made with the real openssl CLI and the test CA.
 */

let dir: string;
let pki: TestPki;
let server: https.Server;
let port: number;
const seenSni: string[] = [];
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'proxy-https-up-'));
  pki = await makeTestPki();
  await writeFile(path.join(dir, 'ca.crt'), pki.ca.certPem);
  await writeFile(path.join(dir, 'ca.key'), pki.ca.keyPem, { mode: 0o600 });
  await writeFile(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n');
  const run = (args: string[]) => execa('openssl', args, { cwd: dir });
  await run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'up.key', '-out', 'up.csr', '-subj', '/CN=localhost']);
  await run(['x509', '-req', '-in', 'up.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'up.crt', '-days', '2', '-extfile', 'ext.cnf']);
  server = https.createServer({ cert: await readFile(path.join(dir, 'up.crt')), key: await readFile(path.join(dir, 'up.key')) }, (req, res) => {
    seenSni.push(String((req.socket as TLSSocket).servername));
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`secure hello for ${req.headers.host}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

afterAll(async () => {
  await new Promise<void>((r) => {
    server?.close(() => r());
    server?.closeAllConnections();
  });
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function proxyWith(tlsYaml: string): Promise<TestProxy> {
  const t = await startTestProxy({ routes: { secure: `https://localhost:${port}` }, extraYaml: `upstream:\n  allowed_ips: ["127.0.0.1/32"]\n${tlsYaml}`, logLevel: 'info' });
  cleanups.push(() => t.close());
  return t;
}

async function get(t: TestProxy): Promise<{ status: number; body: string }> {
  const tf = tunnelFetch({ ...t.client });
  try {
    const res = await tf.fetch(`https://secure.${t.domain}/mcp`);
    return { status: res.status, body: await res.text() };
  } finally {
    await tf.close();
  }
}

describe('https upstreams', () => {
  it('verifies the upstream with upstream.tls.ca_file, with SNI = the upstream hostname and Host = the tunnel host', async () => {
    const t = await proxyWith(`  tls:\n    ca_file: ${JSON.stringify(path.join(dir, 'ca.crt'))}`);
    const res = await get(t);
    expect(res).toEqual({ status: 200, body: `secure hello for secure.${t.domain}` });
    expect(seenSni.at(-1)).toBe('localhost');
  });

  it('refuses an upstream certificate the configured CAs do not vouch for (502)', async () => {
    const t = await proxyWith('  tls:\n    include_system_cas: true');
    const res = await get(t);
    expect(res.status).toBe(502);
    expect(t.logs.some((l) => l.msg === 'upstream request failed' && /certificate/i.test(String(l.error)))).toBe(true);
  });
});

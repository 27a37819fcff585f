import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProxyConfig } from '../../src/deployment/proxy-config.js';
import { RENEW_NOT_NEEDED_EXIT_CODE, renewServerCertificate } from '../../src/ops/renew-cert.js';
import { createCa, inspectCertificate, issueServerCert, keyMatchesCertificate, verifySignedBy, type PemPair } from '../../src/pki/index.js';
import { openTunnel, runProbe } from '../../src/probe/index.js';
import { createJsonLogger } from '../../src/proxy/logger.js';
import { startProxy } from '../../src/proxy/server.js';
import { runCli } from '../helpers/cli.js';
import { startSampleMcpServer, type SampleMcpServer } from '../helpers/mcp-upstream.js';
import { makeTestPki } from '../helpers/pki.js';
import { hasCompleteResponse, rawExchange, waitFor } from '../helpers/tunnel-client.js';

/**
 * renew-cert: not needed / forced / near expiry, the CA never changes, the previous pair is kept, modes and
 * owners survive, a certificate of another CA is not silently replaced, the documented exit codes, and the
 * running builtin proxy serving the new certificate to new clients without a restart while an established
 * connection keeps working on the old one.
 */
const DOMAIN = 'abcd1234.tunnel.example.com';
const DAY = 86_400_000;
const isRoot = process.getuid?.() === 0;
let work: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-renew-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const mode = (p: string): number => fs.statSync(p).mode & 0o777;
const read = (p: string): string => fs.readFileSync(p, 'utf8');

interface Deployment {
  dir: string;
  data: string;
  ca: PemPair;
  server: PemPair;
}

/** DIR/data as init lays it out (ca.*, tls.*, tunnel-domain) + config/mcp-proxy.yaml; server cert validity as asked. */
async function deployment(validity: { notBefore?: Date; notAfter?: Date } = {}, extraConfig = ''): Promise<Deployment> {
  const { ca } = await makeTestPki(DOMAIN);
  const server = await issueServerCert({ ca, domain: DOMAIN, ...validity });
  const dir = fs.mkdtempSync(path.join(work, 'dep-'));
  const data = path.join(dir, 'data');
  fs.mkdirSync(data, { mode: 0o700 });
  fs.mkdirSync(path.join(dir, 'config'));
  const files: Array<[string, string, number]> = [
    ['ca.crt', ca.certPem, 0o644],
    ['ca.key', ca.keyPem, 0o600],
    ['tls.crt', server.certPem, 0o644],
    ['tls.key', server.keyPem, 0o600],
    ['tunnel-domain', `${DOMAIN}\n`, 0o644],
  ];
  for (const [name, content, m] of files) {
    fs.writeFileSync(path.join(data, name), content, { mode: m });
    fs.chmodSync(path.join(data, name), m);
  }
  fs.writeFileSync(
    path.join(dir, 'config', 'mcp-proxy.yaml'),
    [
      '# written by the test',
      'listen_addr: "127.0.0.1:0"',
      `tunnel_domain: ${DOMAIN}`,
      'tls:',
      `  cert_file: ${path.join(data, 'tls.crt')}`,
      `  key_file: ${path.join(data, 'tls.key')}`,
      'routes:',
      '  docs: "http://docs-mcp:8080"',
      extraConfig,
      '',
    ].join('\n'),
  );
  return { dir, data, ca, server };
}

const serialOf = (pem: string): string => inspectCertificate(pem).serialHex;

describe('renewServerCertificate', () => {
  it('is a no-op while more than --renew-before remains: nothing written', async () => {
    const dep = await deployment(); // 90 days
    const before = fs.readdirSync(dep.data).sort();
    const tlsBefore = read(path.join(dep.data, 'tls.crt'));
    const result = await renewServerCertificate({ dir: dep.dir, renewBeforeMs: 720 * 3_600_000, certDurationMs: 2160 * 3_600_000 });
    expect(result.status).toBe('not-needed');
    if (result.status !== 'not-needed') return;
    expect(result.remainingMs).toBeGreaterThan(80 * DAY);
    expect(result.current.serial).toBe(serialOf(dep.server.certPem));
    expect(read(path.join(dep.data, 'tls.crt'))).toBe(tlsBefore);
    expect(fs.readdirSync(dep.data).sort()).toEqual(before);
  });

  it('renews when less than --renew-before remains (notAfter in 10 days): same CA, ~90 days, previous pair kept', async () => {
    const now = new Date();
    const dep = await deployment({ notBefore: new Date(now.getTime() - 80 * DAY), notAfter: new Date(now.getTime() + 10 * DAY) });
    const caBefore = read(path.join(dep.data, 'ca.crt'));
    const caKeyBefore = read(path.join(dep.data, 'ca.key'));
    const result = await renewServerCertificate({ dir: dep.dir, renewBeforeMs: 720 * 3_600_000, certDurationMs: 2160 * 3_600_000, now });
    expect(result.status).toBe('renewed');
    if (result.status !== 'renewed') return;
    expect(result.reason).toBe('expires-soon');

    const cert = read(path.join(dep.data, 'tls.crt'));
    const key = read(path.join(dep.data, 'tls.key'));
    const info = inspectCertificate(cert);
    expect(info.serialHex).toBe(result.current.serial);
    expect(info.serialHex).not.toBe(serialOf(dep.server.certPem));
    expect((info.notAfter.getTime() - now.getTime()) / DAY).toBeGreaterThan(89.9);
    expect((info.notAfter.getTime() - now.getTime()) / DAY).toBeLessThanOrEqual(90);
    expect(info.dnsNames.sort()).toEqual([DOMAIN, `*.${DOMAIN}`].sort());
    expect(keyMatchesCertificate(cert, key)).toBe(true);
    expect(verifySignedBy(cert, dep.ca.certPem)).toBe(true);
    expect(info.authorityKeyId).toBe(inspectCertificate(dep.ca.certPem).subjectKeyId);
    // The CA is never touched.
    expect(read(path.join(dep.data, 'ca.crt'))).toBe(caBefore);
    expect(read(path.join(dep.data, 'ca.key'))).toBe(caKeyBefore);
    // Rollback pair, key private.
    expect(read(path.join(dep.data, 'tls.crt.previous'))).toBe(dep.server.certPem);
    expect(read(path.join(dep.data, 'tls.key.previous'))).toBe(dep.server.keyPem);
    expect(mode(path.join(dep.data, 'tls.key.previous'))).toBe(0o600);
    expect(mode(path.join(dep.data, 'tls.key'))).toBe(0o600);
    expect(mode(path.join(dep.data, 'tls.crt'))).toBe(0o644);
    // No temporary file left behind.
    expect(fs.readdirSync(dep.data).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('--force renews a certificate with plenty of validity left', async () => {
    const dep = await deployment();
    const result = await renewServerCertificate({ dir: dep.dir, renewBeforeMs: 720 * 3_600_000, certDurationMs: 2160 * 3_600_000, force: true });
    expect(result.status === 'renewed' && result.reason).toBe('forced');
    expect(serialOf(read(path.join(dep.data, 'tls.crt')))).not.toBe(serialOf(dep.server.certPem));
  });

  it('renews an expired certificate, and honours --cert-duration', async () => {
    const now = new Date();
    const dep = await deployment({ notBefore: new Date(now.getTime() - 100 * DAY), notAfter: new Date(now.getTime() - DAY) });
    const result = await renewServerCertificate({ dir: dep.dir, renewBeforeMs: 0, certDurationMs: 30 * DAY, now });
    expect(result.status === 'renewed' && result.reason).toBe('expired');
    const left = inspectCertificate(read(path.join(dep.data, 'tls.crt'))).notAfter.getTime() - now.getTime();
    expect(left / DAY).toBeGreaterThan(29.9);
    expect(left / DAY).toBeLessThanOrEqual(30);
  });

  it.skipIf(!isRoot)('keeps the owner init gave tls.* (65532 when init ran as root)', async () => {
    const dep = await deployment({ notAfter: new Date(Date.now() + 2 * DAY) });
    for (const f of ['tls.crt', 'tls.key']) fs.chownSync(path.join(dep.data, f), 65532, 65532);
    const result = await renewServerCertificate({ dir: dep.dir, renewBeforeMs: 720 * 3_600_000, certDurationMs: 2160 * 3_600_000 });
    expect(result.status).toBe('renewed');
    for (const f of ['tls.crt', 'tls.key', 'tls.crt.previous', 'tls.key.previous']) {
      const st = fs.statSync(path.join(dep.data, f));
      expect([f, st.uid, st.gid]).toEqual([f, 65532, 65532]);
    }
    expect(fs.statSync(path.join(dep.data, 'ca.key')).uid).toBe(0);
  });

  it('refuses (without --force) to replace a certificate of another CA, and never creates a CA', async () => {
    const dep = await deployment();
    const otherCa = await createCa();
    const foreign = await issueServerCert({ ca: otherCa, domain: DOMAIN });
    fs.writeFileSync(path.join(dep.data, 'tls.crt'), foreign.certPem);
    fs.writeFileSync(path.join(dep.data, 'tls.key'), foreign.keyPem);
    await expect(renewServerCertificate({ dir: dep.dir, renewBeforeMs: 0, certDurationMs: 2160 * 3_600_000 })).rejects.toThrow(/not signed by data\/ca\.crt/);
    expect(read(path.join(dep.data, 'tls.crt'))).toBe(foreign.certPem);

    fs.rmSync(path.join(dep.data, 'ca.key'));
    await expect(renewServerCertificate({ dir: dep.dir, renewBeforeMs: 0, certDurationMs: 2160 * 3_600_000, force: true })).rejects.toThrow(/never creates one/);
    expect(fs.existsSync(path.join(dep.data, 'ca.key'))).toBe(false);
  });
});

describe('mcp-tunnel renew-cert (CLI)', () => {
  it(`exits ${RENEW_NOT_NEEDED_EXIT_CODE} when not needed, 0 when renewed, 2 on bad input; documents them in --help`, async () => {
    const dep = await deployment();
    const notNeeded = await runCli(['renew-cert', '--dir', dep.dir]);
    expect(notNeeded.exitCode).toBe(RENEW_NOT_NEEDED_EXIT_CODE);
    expect(notNeeded.stdout).toMatch(/^not needed: data\/tls\.crt is valid until \S+ \(\d+ days left; renews when less than 720h remains\); pass --force to renew now$/);
    expect(notNeeded.stderr).toBe('');

    const forced = await runCli(['renew-cert', '--dir', dep.dir, '--force', '--cert-duration', '30d']);
    expect(forced.exitCode).toBe(0);
    expect(forced.stdout).toContain(`renewed data/tls.crt for ${DOMAIN} and *.${DOMAIN} (forced)`);
    expect(forced.stdout).toContain('kept as data/tls.crt.previous and data/tls.key.previous');
    const left = inspectCertificate(read(path.join(dep.data, 'tls.crt'))).notAfter.getTime() - Date.now();
    expect(Math.round(left / DAY)).toBe(30);

    const json = await runCli(['renew-cert', '--dir', dep.dir, '--renew-before', '31d', '--json']);
    expect(json.exitCode).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'renewed', reason: 'expires-soon', domain: DOMAIN });

    for (const args of [['--renew-before', '30 days'], ['--cert-duration', '-5h'], ['--every', '10s'], ['--dir', path.join(work, 'nope')]]) {
      const bad = await runCli(['renew-cert', '--dir', dep.dir, ...args]);
      expect([args.join(' '), bad.exitCode]).toEqual([args.join(' '), 2]);
      expect(bad.stderr.split('\n')[0]).toMatch(/^error: /);
      expect(bad.stderr).not.toMatch(/\n\s+at /);
    }

    const help = await runCli(['renew-cert', '--help']);
    expect(help.stdout).toContain(`${RENEW_NOT_NEEDED_EXIT_CODE}  not needed`);
    expect(help.stdout).toContain('SuccessExitStatus=10');
  });

  it('--every loops, logs one line per run and exits 0 on SIGTERM', async () => {
    const dep = await deployment({ notAfter: new Date(Date.now() + 3 * DAY) });
    const { execa } = await import('execa');
    const { CLI } = await import('../helpers/cli.js');
    const child = execa(process.execPath, [CLI, 'renew-cert', '--dir', dep.dir, '--every', '1m'], { reject: false, env: { ...process.env, CI: 'true', NO_COLOR: '1' } });
    let out = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor(() => /renewed data\/tls\.crt/.test(out), 'the first run', 30_000);
    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode).toBe(0);
    expect(out).toMatch(/checking .* every 1m/);
    expect(out).toMatch(/SIGTERM received, stopping/);
    expect(out).toMatch(/next check \d{4}-/);
  });
});

describe('the running builtin proxy picks up the renewed certificate without a restart', () => {
  let mcp: SampleMcpServer;
  let plain: http.Server;
  let plainOrigin: string;

  beforeAll(async () => {
    mcp = await startSampleMcpServer();
    plain = http.createServer((req, res) => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' }).end('hello'));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    plainOrigin = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await mcp.close();
    await new Promise((r) => plain.close(r));
  });

  it('new probes get the new serial, the established connection keeps serving on the old one', async () => {
    const extra = [`  echo: "${mcp.origin}"`, `  plain: "${plainOrigin}"`, 'upstream:', '  allowed_ips: ["127.0.0.1/32"]', 'admin:', '  listen_addr: "127.0.0.1:0"'].join('\n');
    const dep = await deployment({}, extra);
    const configPath = path.join(dep.dir, 'config', 'mcp-proxy.yaml');
    let logText = '';
    const logger = createJsonLogger({ level: 'debug', batch: false, write: (c) => void (logText += c) });
    const proxy = await startProxy({ config: parseProxyConfig(read(configPath)), configPath, logger, certPollIntervalMs: 50, defaultMetrics: false });
    try {
      const proxyUrl = `ws://127.0.0.1:${proxy.address().port}/`;
      const oldSerial = serialOf(dep.server.certPem);

      // An established tunnel connection (WebSocket + inner TLS) from before the renewal.
      const old = await openTunnel({ proxyUrl, servername: `plain.${DOMAIN}`, caPem: dep.ca.certPem });
      expect(old.peerCertificate.serialNumber.toLowerCase()).toBe(oldSerial);
      const request = `GET /before HTTP/1.1\r\nHost: plain.${DOMAIN}\r\n\r\n`;
      expect(await rawExchange(old.socket, request, hasCompleteResponse)).toMatch(/^HTTP\/1\.1 200[\s\S]*hello$/);

      const before = await runProbe({ route: 'echo', proxyUrl, domain: DOMAIN, caPem: dep.ca.certPem });
      expect(before.ok).toBe(true);

      const result = await renewServerCertificate({ dir: dep.dir, renewBeforeMs: 0, certDurationMs: 2160 * 3_600_000, force: true });
      if (result.status !== 'renewed') throw new Error('expected a renewal');
      const newSerial = result.current.serial;
      expect(newSerial).not.toBe(oldSerial);

      // A NEW client gets the new certificate, from the same proxy process (no restart).
      await waitFor(async () => {
        const t = await openTunnel({ proxyUrl, servername: `echo.${DOMAIN}`, caPem: dep.ca.certPem });
        const serial = t.peerCertificate.serialNumber.toLowerCase();
        t.close();
        return serial === newSerial;
      }, 'the proxy to serve the new certificate', 10_000);
      const after = await runProbe({ route: 'echo', proxyUrl, domain: DOMAIN, caPem: dep.ca.certPem });
      expect(after.ok).toBe(true);
      expect(after.tls?.certificate.fingerprintSha256).toBe(result.current.fingerprint);
      expect(proxy.certificates.certificate.serialNumber).toBe(newSerial);

      // The old connection still works, on its old session and certificate.
      const again = await rawExchange(old.socket, `GET /after HTTP/1.1\r\nHost: plain.${DOMAIN}\r\n\r\n`, hasCompleteResponse);
      expect(again).toMatch(/^HTTP\/1\.1 200[\s\S]*hello$/);
      // ... on the TLS session negotiated before the renewal (same socket, never re-handshaken).
      expect(old.socket.destroyed).toBe(false);
      old.close();

      // The reloader never saw a mismatched pair.
      expect(logText).toContain('"certificate reloaded"');
      expect(logText).not.toContain('certificate reload failed');
    } finally {
      await proxy.close();
    }
  });
});

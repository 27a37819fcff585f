import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { issueServerCert } from '../../src/pki/index.js';
import { CertReloader, CertificatePairError, buildCertificatePair } from '../../src/proxy/cert-reloader.js';
import { createJsonLogger, type Logger } from '../../src/proxy/logger.js';
import { ProxyMetrics } from '../../src/proxy/metrics.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';

let pki: TestPki;
const dirs: string[] = [];

beforeAll(async () => {
  pki = await makeTestPki();
});

afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

function capture(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, logger: createJsonLogger({ level: 'debug', batch: false, write: (c) => lines.push(JSON.parse(c) as Record<string, unknown>) }) };
}

async function files(cert: string, key: string): Promise<{ certFile: string; keyFile: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'reloader-'));
  dirs.push(dir);
  const certFile = path.join(dir, 'tls.crt');
  const keyFile = path.join(dir, 'tls.key');
  await writeFile(certFile, cert);
  await writeFile(keyFile, key);
  return { certFile, keyFile };
}

describe('buildCertificatePair', () => {
  it('reads a matching pair', () => {
    const pair = buildCertificatePair(pki.server.certPem, pki.server.keyPem);
    expect(pair.certificate.notAfter.getTime()).toBeGreaterThan(Date.now());
    expect(pair.certificate.serialNumber).toMatch(/^[0-9a-f]+$/);
  });

  it('refuses a mismatched key, a non-certificate and a non-key without quoting them', () => {
    expect(() => buildCertificatePair(pki.server.certPem, pki.ca.keyPem, 'tls.crt', 'tls.key')).toThrow(/tls\.key does not match the certificate in tls\.crt/);
    expect(() => buildCertificatePair('garbage', pki.server.keyPem, 'tls.crt')).toThrow(CertificatePairError);
    try {
      buildCertificatePair(pki.server.certPem, 'not a key SECRETSECRET', 'tls.crt', 'tls.key');
    } catch (err) {
      expect((err as Error).message).toBe('tls.key is not a PEM private key');
    }
  });
});

describe('CertReloader', () => {
  it('swaps at the first poll that sees a complete pair, and counts the reload', async () => {
    const { certFile, keyFile } = await files(pki.server.certPem, pki.server.keyPem);
    const { logger, lines } = capture();
    const metrics = new ProxyMetrics({ defaultMetrics: false });
    const reloader = await CertReloader.load({ certFile, keyFile, logger, metrics });
    const first = reloader.secureContext;
    expect(await reloader.checkNow()).toBe('unchanged');

    const renewed = await issueServerCert({ ca: pki.ca, domain: pki.domain });
    // Half replaced (the writer is between the two files): not served, not reported either.
    await writeFile(certFile, renewed.certPem);
    expect(await reloader.checkNow()).toBe('pending');
    expect(reloader.secureContext).toBe(first);
    await writeFile(keyFile, renewed.keyPem);
    expect(await reloader.checkNow()).toBe('reloaded');
    expect(reloader.secureContext).not.toBe(first);
    expect(reloader.certificate.serialNumber).toBe(buildCertificatePair(renewed.certPem, renewed.keyPem).certificate.serialNumber);
    expect(lines.some((l) => l.msg === 'certificate reloaded')).toBe(true);
    expect(lines.some((l) => l.msg === 'certificate reload failed')).toBe(false);
    expect(await metrics.registry.getSingleMetricAsString('mcp_tunnel_proxy_certificate_reloads_total')).toMatch(/result="success"} 1/);
  });

  it('serves the newest pair within two polls while renewals never stop', async () => {
    const { certFile, keyFile } = await files(pki.server.certPem, pki.server.keyPem);
    const reloader = await CertReloader.load({ certFile, keyFile, logger: capture().logger });
    const pairs = await Promise.all(Array.from({ length: 4 }, () => issueServerCert({ ca: pki.ca, domain: pki.domain })));
    // A renewal between every two polls (26 renewals a minute against a 2 s poll is this pattern): the old
    // "unchanged for two polls" rule never reloaded anything here.
    for (let round = 0; round < 8; round++) {
      const next = pairs[round % pairs.length]!;
      await writeFile(keyFile, next.keyPem);
      await writeFile(certFile, next.certPem);
      expect(await reloader.checkNow()).toBe('reloaded');
      expect(reloader.certificate.serialNumber).toBe(buildCertificatePair(next.certPem, next.keyPem).certificate.serialNumber);
    }
  });

  it('keeps the old pair on a broken one, logs once, and retries only when the files change again', async () => {
    const { certFile, keyFile } = await files(pki.server.certPem, pki.server.keyPem);
    const { logger, lines } = capture();
    const reloader = await CertReloader.load({ certFile, keyFile, logger });
    const serial = reloader.certificate.serialNumber;
    await writeFile(certFile, 'broken');
    expect(await reloader.checkNow(true)).toBe('failed');
    expect(await reloader.checkNow(true)).toBe('unchanged');
    expect(reloader.certificate.serialNumber).toBe(serial);
    expect(lines.filter((l) => l.msg === 'certificate reload failed')).toHaveLength(1);
    await writeFile(certFile, pki.server.certPem);
    expect(await reloader.checkNow(true)).toBe('reloaded');
  });

  it('refuses to start on an unusable pair', async () => {
    const { certFile, keyFile } = await files(pki.server.certPem, pki.ca.keyPem);
    await expect(CertReloader.load({ certFile, keyFile, logger: capture().logger })).rejects.toThrow(/does not match/);
    await expect(CertReloader.load({ certFile: `${certFile}.missing`, keyFile, logger: capture().logger })).rejects.toThrow(/cannot read .*ENOENT/);
  });
});

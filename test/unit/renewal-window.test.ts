import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveServerCert } from '../../src/deployment/credentials.js';
import { deploymentPaths } from '../../src/deployment/layout.js';
import { parseDuration } from '../../src/deployment/duration.js';
import { readCertificate } from '../../src/docker/status.js';
import { checkCertificates } from '../../src/ops/doctor/certificates.js';
import { DEFAULT_CERT_DURATION, DEFAULT_RENEW_BEFORE, renewServerCertificate } from '../../src/ops/renew-cert.js';
import { issueServerCert } from '../../src/pki/index.js';
import { makeTestPki } from '../helpers/pki.js';

/*
 * "Renew when less than 30 days remain" is one rule: init (re-issue instead of keeping), renew-cert (its default
 * --renew-before), doctor (the expiry warning) and status (the problem line) decide alike on each side of it.
 */

const DAY = 86_400_000;
const MIN = 60_000;
const DOMAIN = 'abcd1234.tunnel.example.com';
const NOT_AFTER = new Date('2031-06-01T00:00:00Z');
let root: string;
let n = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mcp-tunnel-window-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function deployment(): Promise<string> {
  const { ca } = await makeTestPki(DOMAIN);
  const server = await issueServerCert({ ca, domain: DOMAIN, notBefore: new Date(NOT_AFTER.getTime() - 90 * DAY), notAfter: NOT_AFTER });
  const dir = join(root, `d${n++}`);
  const paths = deploymentPaths(dir);
  await import('node:fs/promises').then((fs) => fs.mkdir(paths.dataDir, { recursive: true }));
  for (const [file, text, mode] of [
    [paths.caCert, ca.certPem, 0o644],
    [paths.caKey, ca.keyPem, 0o600],
    [paths.tlsCert, server.certPem, 0o644],
    [paths.tlsKey, server.keyPem, 0o600],
    [paths.tunnelDomain, `${DOMAIN}\n`, 0o644],
  ] as const) {
    await writeFile(file, text, { mode });
  }
  return dir;
}

async function decisions(now: Date): Promise<Record<string, boolean>> {
  const dir = await deployment();
  const paths = deploymentPaths(dir);
  const { ca } = await makeTestPki(DOMAIN);
  const init = (await resolveServerCert(paths, ca, DOMAIN, now)).reason === 'expiring';
  const doctor = (await checkCertificates({ paths, domain: DOMAIN, domainSource: 'test', now, renewerScheduled: false })).find((f) => f.id === 'cert.expiry')?.status === 'warn';
  const status = (await readCertificate(dir, now)).certificate?.renewalDue === true;
  const renew = await renewServerCertificate({ dir, now, renewBeforeMs: parseDuration(DEFAULT_RENEW_BEFORE, '--renew-before'), certDurationMs: parseDuration(DEFAULT_CERT_DURATION, '--cert-duration') });
  return { init, 'renew-cert': renew.status === 'renewed', doctor, status };
}

describe('the renewal window (30 days) decides the same in init, renew-cert, doctor and status', () => {
  it.each([
    ['30 days - 1 minute left: due', 30 * DAY - MIN, true],
    ['exactly 30 days left: due', 30 * DAY, true],
    ['30 days + 1 minute left: not due', 30 * DAY + MIN, false],
  ] as const)('%s', async (_, remaining, due) => {
    const all = await decisions(new Date(NOT_AFTER.getTime() - remaining));
    expect(all).toEqual({ init: due, 'renew-cert': due, doctor: due, status: due });
  });
});

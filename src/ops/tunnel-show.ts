import fs from 'node:fs/promises';
import { readTextIfExists } from '../deployment/atomic-file.js';
import { parseEnvFile } from '../deployment/env-file.js';
import { deploymentPaths } from '../deployment/layout.js';
import { getTunnel, listAllCertificates, readWifSettings, type TunnelsApi } from '../anthropic/index.js';
import { ValidationError } from '../errors.js';
import { inspectCertificate, isRenewalDue, verifySignedBy, type CertInfo } from '../pki/index.js';
import { rotationFiles } from './ca-rotate.js';

/** `tunnel show`: what this directory knows about its tunnel, and (programmatic flow) what the API says. */
export interface TunnelReport {
  dir: string;
  flow: 'manual' | 'wif';
  tunnel: { id: string | null; domain: string | null; displayName?: string | null; createdAt?: string; archivedAt?: string | null };
  token: { present: boolean; source: string | null; modifiedAt: string | null; ageDays: number | null };
  localCa: LocalCert | null;
  serverCertificate: (LocalCert & { signedByLocalCa: boolean; renewalDue: boolean; dnsNames: string[] }) | null;
  /** The tunnel's CA certificates from the API (programmatic flow), newest first; `local` names the file that matches. */
  certificates: Array<{ id: string; fingerprint: string; createdAt: string; expiresAt: string | null; archivedAt: string | null; local: 'ca.crt' | 'ca.next.crt' | 'ca.previous.crt' | null }> | null;
  /** A CA rotation in progress (data/ca-rotation.json). */
  rotation: { step: string } | null;
}

interface LocalCert {
  fingerprint: string;
  subject: string;
  notAfter: string;
  key: string;
}

const firstLine = (t: string | undefined): string | null => t?.split('\n')[0]?.trim() || null;

function describeKey(info: CertInfo): string {
  const k = info.publicKey;
  if (k.type === 'ec') return `ECDSA ${k.curve === 'prime256v1' ? 'P-256' : k.curve === 'secp384r1' ? 'P-384' : k.curve === 'secp521r1' ? 'P-521' : (k.curve ?? '?')}`;
  if (k.type === 'rsa') return `RSA ${k.bits ?? '?'}`;
  return 'other';
}

function local(info: CertInfo): LocalCert {
  return { fingerprint: info.fingerprintSha256, subject: info.subject, notAfter: info.notAfter.toISOString(), key: describeKey(info) };
}

function tryInspect(pem: string | undefined, label: string): CertInfo | null {
  if (pem === undefined) return null;
  try {
    return inspectCertificate(pem, label);
  } catch {
    return null;
  }
}

export async function showTunnel(options: { dir: string; api?: TunnelsApi; now?: Date }): Promise<TunnelReport> {
  const now = options.now ?? new Date();
  const paths = deploymentPaths(options.dir);
  const st = await fs.stat(paths.dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new ValidationError(`deployment directory ${paths.dir} does not exist`, 'pass --dir to the directory mcp-tunnel init wrote', 'DIR_NOT_FOUND');
  const files = rotationFiles(paths);
  const [envText, idText, domainText, tokenText, caPem, tlsPem, nextPem, prevPem, stateText] = await Promise.all(
    [paths.env, paths.tunnelId, paths.tunnelDomain, paths.tunnelToken, paths.caCert, paths.tlsCert, files.nextCert, files.prevCert, files.state].map((f) => readTextIfExists(f).catch(() => undefined)),
  );
  if (envText === undefined && idText === undefined && caPem === undefined) {
    // A --dir typo would otherwise be a report of "missing" everything, and exit 0.
    throw new ValidationError(`${paths.dir} is not a deployment (no .env, no data/tunnel-id, no data/ca.crt)`, 'pass --dir to the directory mcp-tunnel init wrote (or set MCP_TUNNEL_DIR)', 'DEPLOYMENT_NOT_FOUND');
  }
  const env = parseEnvFile(envText ?? '');
  const flow = readWifSettings(envText).flow ?? 'manual';

  const tokenSource = env.TUNNEL_TOKEN ? '.env' : firstLine(tokenText) ? 'data/tunnel-token' : null;
  const tokenStat = tokenSource === null ? undefined : await fs.stat(tokenSource === '.env' ? paths.env : paths.tunnelToken).catch(() => undefined);
  const ca = tryInspect(caPem, 'data/ca.crt');
  const tls = tryInspect(tlsPem, 'data/tls.crt');

  const report: TunnelReport = {
    dir: paths.dir,
    flow,
    tunnel: { id: firstLine(idText), domain: firstLine(domainText) },
    token: {
      present: tokenSource !== null,
      source: tokenSource,
      modifiedAt: tokenStat ? tokenStat.mtime.toISOString() : null,
      ageDays: tokenStat ? Math.floor((now.getTime() - tokenStat.mtime.getTime()) / 86_400_000) : null,
    },
    localCa: ca ? local(ca) : null,
    serverCertificate: tls
      ? { ...local(tls), signedByLocalCa: caPem !== undefined && verifySignedBy(tlsPem!, caPem), renewalDue: isRenewalDue(tls.notAfter, now), dnsNames: tls.dnsNames }
      : null,
    certificates: null,
    rotation: stateText ? { step: String((JSON.parse(stateText) as { step?: unknown }).step ?? 'unknown') } : null,
  };

  if (options.api && report.tunnel.id) {
    const t = await getTunnel(options.api, report.tunnel.id);
    report.tunnel = { id: t.id, domain: t.domain, displayName: t.displayName, createdAt: t.createdAt, archivedAt: t.archivedAt };
    const byFp = new Map<string, 'ca.crt' | 'ca.next.crt' | 'ca.previous.crt'>();
    for (const [pem, name] of [[prevPem, 'ca.previous.crt'], [nextPem, 'ca.next.crt'], [caPem, 'ca.crt']] as const) {
      const info = tryInspect(pem, name);
      if (info) byFp.set(info.fingerprintSha256, name);
    }
    report.certificates = (await listAllCertificates(options.api, t.id)).map((c) => ({
      id: c.id,
      fingerprint: c.fingerprint,
      createdAt: c.createdAt,
      expiresAt: c.expiresAt,
      archivedAt: c.archivedAt,
      local: byFp.get(c.fingerprint) ?? null,
    }));
  }
  return report;
}

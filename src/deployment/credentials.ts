import { ValidationError } from '../errors.js';
import {
  checkCaCertificate,
  checkServerCertificate,
  countPemCertificates,
  createCa,
  inspectCertificate,
  isRenewalDue,
  issueServerCert,
  keyMatchesCertificate,
  verifySignedBy,
  type CaKeyType,
  type PemPair,
} from '../pki/index.js';
import { readTextIfExists } from './atomic-file.js';
import type { DeploymentPaths } from './layout.js';

export interface CaResolution {
  pair: PemPair;
  reused: boolean;
  fingerprint: string;
}

/**
 * The CA is created once and then only ever reused: a second CA would have to be registered in the
 * Console again, and a tunnel holds at most two. So a half-present or unusable CA is an error for the
 * user to resolve, never a reason to make a new one.
 */
export async function resolveCa(paths: DeploymentPaths, now: Date, keyType?: CaKeyType): Promise<CaResolution> {
  const [certPem, keyPem] = await Promise.all([readTextIfExists(paths.caCert), readTextIfExists(paths.caKey)]);
  if (certPem === undefined && keyPem === undefined) {
    const pair = await createCa({ now, keyType });
    return { pair, reused: false, fingerprint: inspectCertificate(pair.certPem).fingerprintSha256 };
  }
  if (certPem === undefined || keyPem === undefined) {
    const [have, missing] = certPem === undefined ? ['data/ca.key', 'data/ca.crt'] : ['data/ca.crt', 'data/ca.key'];
    throw new ValidationError(
      `${have} exists but ${missing} is missing: refusing to create a second CA by accident`,
      `restore ${missing} from your backup, or move both away to start with a new CA (which must then be registered in the Console; a tunnel holds at most two CAs)`,
      'CA_PAIR_INCOMPLETE',
    );
  }
  const info = inspectCertificate(certPem);
  if (!keyMatchesCertificate(certPem, keyPem)) {
    throw new ValidationError('data/ca.key does not belong to data/ca.crt', 'restore the matching pair from your backup', 'CA_KEY_MISMATCH');
  }
  const failed = checkCaCertificate(info, now, { pemCount: countPemCertificates(certPem) }).find((f) => !f.ok && !f.advisory);
  if (failed) throw new ValidationError(`data/ca.crt cannot be used: ${failed.message}`, failed.hint, 'CA_CERT_INVALID');
  return { pair: { certPem, keyPem }, reused: true, fingerprint: info.fingerprintSha256 };
}

export type ServerCertReason = 'reused' | 'created' | 'domain-changed' | 'expiring' | 'other-ca' | 'invalid';

export interface ServerCertResolution {
  pair: PemPair;
  reason: ServerCertReason;
  notAfter: Date;
}

/** Keeps the existing server certificate while it is valid for this CA and domain; otherwise issues one. */
export async function resolveServerCert(paths: DeploymentPaths, ca: PemPair, domain: string, now: Date): Promise<ServerCertResolution> {
  const [certPem, keyPem] = await Promise.all([readTextIfExists(paths.tlsCert), readTextIfExists(paths.tlsKey)]);
  let reason: ServerCertReason = 'created';
  if (certPem !== undefined && keyPem !== undefined) {
    reason = keepOrWhy(certPem, keyPem, ca, domain, now);
    if (reason === 'reused') return { pair: { certPem, keyPem }, reason, notAfter: inspectCertificate(certPem).notAfter };
  }
  const pair = await issueServerCert({ ca, domain, now });
  return { pair, reason, notAfter: inspectCertificate(pair.certPem).notAfter };
}

function keepOrWhy(certPem: string, keyPem: string, ca: PemPair, domain: string, now: Date): ServerCertReason {
  let info;
  try {
    info = inspectCertificate(certPem);
  } catch {
    return 'invalid';
  }
  if (!keyMatchesCertificate(certPem, keyPem)) return 'invalid';
  const signedByCa = verifySignedBy(certPem, ca.certPem);
  if (!signedByCa) return 'other-ca';
  const findings = checkServerCertificate(info, inspectCertificate(ca.certPem), { domain, now, signedByCa });
  if (findings.some((f) => !f.ok && f.rule === 'server.san')) return 'domain-changed';
  if (findings.some((f) => !f.ok && !f.advisory)) return 'invalid';
  if (isRenewalDue(info.notAfter, now)) return 'expiring';
  return 'reused';
}

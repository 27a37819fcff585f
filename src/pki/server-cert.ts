import forge from 'node-forge';
import { ValidationError } from '../errors.js';
import { BACKDATE_MS, certificateToPem, nameAttributes, randomSerialHex, signSha256, wholeSeconds } from './forge-cert.js';
import { inspectCertificate, keyMatchesCertificate } from './inspect.js';
import { forgeRsaKeyFromPem, generateRsaKeyPair } from './keys.js';
import type { PemPair } from './types.js';

/** 90 days: the docs' server certificate lifetime and the setup component's --cert-duration 2160h. */
export const DEFAULT_SERVER_CERT_VALIDITY_MS = 2160 * 3_600_000;

export interface IssueServerCertOptions {
  ca: PemPair;
  /** The tunnel domain, e.g. "abcd1234.tunnel.anthropic.com"; the certificate covers it and *.domain. */
  domain: string;
  validityMs?: number;
  now?: Date;
  /** Overrides for tests and for reproducing a user's certificate (e.g. an expired one). */
  notBefore?: Date;
  notAfter?: Date;
}

// LDH labels; the wildcard is added by us, so the input must be the bare domain
const DOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;

/**
 * The inner-TLS server certificate, signed directly by the registered CA (the tunnel accepts no intermediates).
 * RSA-2048: the proxy does a handshake per tunnel connection, and 2048 meets the SPEC's "RSA >= 2048".
 */
export async function issueServerCert(opts: IssueServerCertOptions): Promise<PemPair> {
  const domain = normaliseDomain(opts.domain);
  const { notBefore, notAfter } = validity(opts);

  // Everything about the CA is checked before the (comparatively slow) key generation.
  const caInfo = inspectCertificate(opts.ca.certPem, 'the CA certificate');
  const caKey = forgeRsaKeyFromPem(opts.ca.keyPem, 'the CA key');
  if (!keyMatchesCertificate(opts.ca.certPem, opts.ca.keyPem)) {
    throw new ValidationError(
      'the CA key does not belong to the CA certificate',
      'ca.key and ca.crt must be the pair registered with the tunnel; restore the original ca.key',
    );
  }
  if (caInfo.subjectKeyId === undefined) {
    throw new ValidationError(
      'the CA certificate has no subjectKeyIdentifier, which the tunnel requires',
      'create a new CA (mcp-tunnel init) or add subjectKeyIdentifier=hash when making it with openssl',
    );
  }
  const caCert = forgeCertificate(opts.ca.certPem);

  const keys = await generateRsaKeyPair(2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  cert.setSubject(nameAttributes({ commonName: domain }));
  // copied from the parsed CA so the string types survive and the issuer is byte-equal to the CA's subject
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: domain }, { type: 2, value: `*.${domain}` }] },
    { name: 'subjectKeyIdentifier' },
    // the CA's own SKI bytes, not a recomputation: the tunnel compares AKI to the registered CA's SKI exactly
    { name: 'authorityKeyIdentifier', keyIdentifier: forge.util.hexToBytes(caInfo.subjectKeyId) },
  ]);
  signSha256(cert, caKey);
  return { certPem: certificateToPem(cert), keyPem: keys.keyPem };
}

function normaliseDomain(input: string): string {
  const domain = input.trim().toLowerCase().replace(/\.$/, '');
  if (domain.startsWith('*.')) {
    throw new ValidationError(`invalid tunnel domain "${input}": give it without "*."`, 'the certificate covers the domain and *.domain by itself');
  }
  if (!DOMAIN.test(domain)) {
    throw new ValidationError(`invalid tunnel domain "${input}"`, 'use the domain shown in the Console, e.g. abcd1234.tunnel.anthropic.com');
  }
  return domain;
}

function validity(opts: IssueServerCertOptions): { notBefore: Date; notAfter: Date } {
  const validityMs = opts.validityMs ?? DEFAULT_SERVER_CERT_VALIDITY_MS;
  if (!Number.isFinite(validityMs) || validityMs <= 0) {
    throw new ValidationError(`invalid certificate duration: ${validityMs} ms`, 'use a positive duration, e.g. --cert-duration 2160h');
  }
  const now = opts.now ?? new Date();
  const notBefore = wholeSeconds(opts.notBefore ?? new Date(now.getTime() - BACKDATE_MS));
  const notAfter = wholeSeconds(opts.notAfter ?? new Date(notBefore.getTime() + validityMs));
  if (notAfter.getTime() <= notBefore.getTime()) {
    throw new ValidationError(
      `invalid certificate validity: notAfter ${notAfter.toISOString()} is not after notBefore ${notBefore.toISOString()}`,
      'give a notAfter later than notBefore',
    );
  }
  return { notBefore, notAfter };
}

function forgeCertificate(certPem: string): forge.pki.Certificate {
  try {
    return forge.pki.certificateFromPem(certPem);
  } catch (err) {
    throw new ValidationError(
      `the CA certificate cannot be used for signing (${err instanceof Error ? err.message : String(err)})`,
      'mcp-tunnel signs with RSA CAs it can read; sign with openssl instead, or create a new CA with mcp-tunnel init',
    );
  }
}

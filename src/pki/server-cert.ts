import { ValidationError } from '../errors.js';
import { BACKDATE_MS, signCertificate, subjectKeyIdExtension, utf8Name, wholeSeconds } from './certificate-builder.js';
import { inspectCertificate, keyMatchesCertificate } from './inspect.js';
import { generateKey, readPrivateKey, type KeyKind } from './keys.js';
import { firstCertificateDer } from './pem.js';
import { x509 } from './x509-library.js';
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
 * ECDSA P-256 for the server key whatever the CA's type: the proxy does one handshake per tunnel connection and
 * P-256 signs them several times faster than RSA-2048 (and RSA-4096 by far), its key is made in a millisecond, and
 * the tunnel's rules take it (ECDSA >= P-256). README "Decisions" has the reasoning.
 */
export const SERVER_KEY_KIND: KeyKind = 'ecdsa-p256';

/** The inner-TLS server certificate, signed directly by the registered CA (the tunnel accepts no intermediates). */
export async function issueServerCert(opts: IssueServerCertOptions): Promise<PemPair> {
  const domain = normaliseDomain(opts.domain);
  const { notBefore, notAfter } = validity(opts);

  // Everything about the CA is checked before the key generation.
  const caInfo = inspectCertificate(opts.ca.certPem, 'the CA certificate');
  const caKey = readPrivateKey(opts.ca.keyPem, 'the CA key');
  if (!keyMatchesCertificate(opts.ca.certPem, opts.ca.keyPem)) {
    throw new ValidationError(
      'the CA key does not belong to the CA certificate',
      'ca.key and ca.crt must be the pair registered with the tunnel; restore the original ca.key',
      'CA_KEY_MISMATCH',
    );
  }
  if (caInfo.subjectKeyId === undefined) {
    throw new ValidationError(
      'the CA certificate has no subjectKeyIdentifier, which the tunnel requires',
      'create a new CA (mcp-tunnel ca rotate) or add subjectKeyIdentifier=hash when making it with openssl',
      'CA_NO_SUBJECT_KEY_ID',
    );
  }
  // the CA's subject as it is encoded, so the issuer is byte-equal to it whatever string types the CA used
  const caSubject = new x509.Name(new x509.X509Certificate(firstCertificateDer(opts.ca.certPem, 'the CA certificate')).subjectName.toArrayBuffer());

  const key = await generateKey(SERVER_KEY_KIND);
  const certPem = await signCertificate({
    subject: utf8Name({ commonName: domain }),
    issuer: caSubject,
    subjectKey: key.privateKey,
    signer: { key: caKey, label: 'the CA key' },
    notBefore,
    notAfter,
    extensions: [
      new x509.BasicConstraintsExtension(false),
      // digitalSignature alone: keyEncipherment means RSA key transport, which an ECDSA key cannot do
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: domain },
        { type: 'dns', value: `*.${domain}` },
      ]),
      await subjectKeyIdExtension(key.privateKey),
      // the CA's own SKI bytes, not a recomputation: the tunnel compares AKI to the registered CA's SKI exactly
      new x509.AuthorityKeyIdentifierExtension(caInfo.subjectKeyId),
    ],
  });
  return { certPem, keyPem: key.keyPem };
}

function normaliseDomain(input: string): string {
  const domain = input.trim().toLowerCase().replace(/\.$/, '');
  if (domain.startsWith('*.')) {
    throw new ValidationError(`invalid tunnel domain "${input}": give it without "*."`, 'the certificate covers the domain and *.domain by itself', 'TUNNEL_DOMAIN_INVALID');
  }
  if (!DOMAIN.test(domain)) {
    throw new ValidationError(`invalid tunnel domain "${input}"`, 'use the domain shown in the Console, e.g. abcd1234.tunnel.anthropic.com', 'TUNNEL_DOMAIN_INVALID');
  }
  return domain;
}

function validity(opts: IssueServerCertOptions): { notBefore: Date; notAfter: Date } {
  const validityMs = opts.validityMs ?? DEFAULT_SERVER_CERT_VALIDITY_MS;
  if (!Number.isFinite(validityMs) || validityMs <= 0) {
    throw new ValidationError(`invalid certificate duration: ${validityMs} ms`, 'use a positive duration, e.g. --cert-duration 2160h', 'CERT_VALIDITY_INVALID');
  }
  const now = opts.now ?? new Date();
  const notBefore = wholeSeconds(opts.notBefore ?? new Date(now.getTime() - BACKDATE_MS));
  const notAfter = wholeSeconds(opts.notAfter ?? new Date(notBefore.getTime() + validityMs));
  if (notAfter.getTime() <= notBefore.getTime()) {
    throw new ValidationError(
      `invalid certificate validity: notAfter ${notAfter.toISOString()} is not after notBefore ${notBefore.toISOString()}`,
      'give a notAfter later than notBefore',
      'CERT_VALIDITY_INVALID',
    );
  }
  return { notBefore, notAfter };
}

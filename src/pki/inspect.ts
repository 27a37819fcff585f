import { X509Certificate } from 'node:crypto';
import { ValidationError } from '../errors.js';
import { firstCertificateDer } from './pem.js';
import { readPrivateKey } from './keys.js';
import { readDerCertificate } from './x509-der.js';

export { countPemCertificates, pemContainsPrivateKey } from './pem.js';

export interface CertInfo {
  /** RFC 2253 form: most specific first ("CN=..., O=..."), as `openssl -nameopt RFC2253` and Go print it. */
  subject: string;
  issuer: string;
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  /** The cA flag of basicConstraints (false when the extension is absent). */
  isCa: boolean;
  basicConstraintsCritical: boolean;
  /** e.g. ['keyCertSign', 'cRLSign']; empty when the extension is absent. */
  keyUsage: string[];
  keyUsageCritical: boolean;
  /** undefined when the extension is absent, which the tunnel treats as "any usage". */
  extKeyUsage: string[] | undefined;
  /** Lower-case hex. */
  subjectKeyId: string | undefined;
  /** Lower-case hex of the keyIdentifier field. */
  authorityKeyId: string | undefined;
  dnsNames: string[];
  publicKey: { type: 'rsa' | 'ec' | 'other'; bits?: number; curve?: string };
  /** OpenSSL's name, e.g. 'sha256WithRSAEncryption' or 'ecdsa-with-SHA256'. */
  signatureAlgorithm: string;
  /** Lower-case hex SHA-256 of the DER: the Tunnels API's certificate fingerprint. */
  fingerprintSha256: string;
  /** Size of the PEM text as given; the Console refuses CA uploads over 8 kB. */
  pemBytes: number;
}

// Node reports OpenSSL curve names; these are the NIST curves the contract means by "P-256" and up.
const CURVE_BITS: Record<string, number> = { prime256v1: 256, secp384r1: 384, secp521r1: 521, secp256k1: 256 };

/**
 * Reads the first certificate of a PEM text. node:crypto supplies what it parses natively (it reads ECDSA and
 * anything else OpenSSL does); the extension details come from a small DER read (x509-der.ts).
 * `label` names the input in errors, e.g. "data/ca.crt".
 */
export function inspectCertificate(pem: string, label = 'the input'): CertInfo {
  const der = firstCertificateDer(pem, label);
  const x509 = parseX509(der, label);
  let fields;
  try {
    fields = readDerCertificate(der);
  } catch (err) {
    throw notACertificate(label, err);
  }
  return {
    subject: oneLineName(x509.subject),
    issuer: oneLineName(x509.issuer),
    serialHex: x509.serialNumber.toLowerCase(),
    notBefore: x509.validFromDate,
    notAfter: x509.validToDate,
    isCa: fields.basicConstraints?.ca ?? false,
    basicConstraintsCritical: fields.basicConstraints?.critical ?? false,
    keyUsage: fields.keyUsage?.usages ?? [],
    keyUsageCritical: fields.keyUsage?.critical ?? false,
    extKeyUsage: fields.extKeyUsage,
    subjectKeyId: fields.subjectKeyId,
    authorityKeyId: fields.authorityKeyId,
    dnsNames: fields.dnsNames,
    publicKey: publicKeyInfo(x509),
    signatureAlgorithm: fields.signatureAlgorithm,
    fingerprintSha256: x509.fingerprint256.replace(/:/g, '').toLowerCase(),
    pemBytes: Buffer.byteLength(pem, 'utf8'),
  };
}

/** True when `keyPem` is the private key of the certificate. Throws ValidationError if either cannot be read. */
export function keyMatchesCertificate(certPem: string, keyPem: string): boolean {
  const x509 = parseX509(firstCertificateDer(certPem, 'the certificate'), 'the certificate');
  return x509.checkPrivateKey(readPrivateKey(keyPem, 'the private key'));
}

/**
 * True when the CA's key made the certificate's signature: "signed directly by the CA", no chain involved.
 * Name matching is a separate rule (issuer == CA subject) so a failure can say which of the two is wrong.
 */
export function verifySignedBy(certPem: string, caPem: string): boolean {
  const cert = parseX509(firstCertificateDer(certPem, 'the certificate'), 'the certificate');
  const ca = parseX509(firstCertificateDer(caPem, 'the CA certificate'), 'the CA certificate');
  try {
    return cert.verify(ca.publicKey);
  } catch {
    // OpenSSL raises rather than answering false for a key type that cannot have made the signature
    return false;
  }
}

function parseX509(der: Buffer, label: string): X509Certificate {
  try {
    return new X509Certificate(der);
  } catch (err) {
    throw notACertificate(label, err);
  }
}

function notACertificate(label: string, cause: unknown): ValidationError {
  const err = new ValidationError(`${label} is not a PEM certificate (it does not parse as X.509)`, 're-copy the certificate text in full; check it with: openssl x509 -noout -text -in FILE', 'CERT_INVALID');
  (err as { cause?: unknown }).cause = cause;
  return err;
}

function oneLineName(multiline: string): string {
  // node prints one attribute per line, in certificate order, with RFC 2253 escaping (so a bare newline is
  // always a separator); RFC 2253 strings list the RDNs in reverse
  return multiline.split('\n').filter((s) => s.length > 0).reverse().join(', ');
}

function publicKeyInfo(x509: X509Certificate): CertInfo['publicKey'] {
  const key = x509.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    return details.modulusLength === undefined ? { type: 'rsa' } : { type: 'rsa', bits: details.modulusLength };
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = details.namedCurve;
    const bits = curve === undefined ? undefined : CURVE_BITS[curve];
    return { type: 'ec', ...(curve === undefined ? {} : { curve }), ...(bits === undefined ? {} : { bits }) };
  }
  return { type: 'other' };
}

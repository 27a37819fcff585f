import { ValidationError } from '../errors.js';

// Tolerates CRLF, surrounding text (openssl's `-text` output, bundles) and trailing whitespace; the base64
// body is checked by the DER parser later, so this only has to find the armour.
const CERT_BLOCK = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
const KEY_BLOCK = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;

/** How many certificates a PEM text holds. The Console takes exactly one for a CA. */
export function countPemCertificates(pem: string): number {
  return [...pem.matchAll(CERT_BLOCK)].length;
}

/** True when the text carries a private key: a CA upload must never do that (docs/contract.md §4). */
export function pemContainsPrivateKey(pem: string): boolean {
  return KEY_BLOCK.test(pem);
}

/** The DER of the first certificate in `pem`, or a ValidationError a user can act on. */
export function firstCertificateDer(pem: string, label: string): Buffer {
  const match = new RegExp(CERT_BLOCK.source).exec(pem); // a non-global copy: no lastIndex state between calls
  if (match === null) {
    if (pemContainsPrivateKey(pem)) {
      throw new ValidationError(
        `${label} holds a private key, not a certificate`,
        'point it at the .crt file (the one starting with -----BEGIN CERTIFICATE-----)',
        'CERT_IS_KEY',
      );
    }
    throw new ValidationError(
      `${label} is not a PEM certificate`,
      'expected text starting with -----BEGIN CERTIFICATE----- (convert DER with: openssl x509 -inform der -in FILE -out FILE.pem)',
      'CERT_INVALID',
    );
  }
  const body = (match[1] ?? '').replace(/\s+/g, '');
  if (body.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) {
    throw new ValidationError(`${label} is not a PEM certificate (its base64 body is damaged)`, 're-copy the certificate text in full', 'CERT_INVALID');
  }
  return Buffer.from(body, 'base64');
}

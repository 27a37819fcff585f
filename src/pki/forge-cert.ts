import { randomBytes } from 'node:crypto';
import forge from 'node-forge';

/** Clock-skew allowance: a certificate made now must already be valid on a peer whose clock runs a little behind. */
export const BACKDATE_MS = 5 * 60_000;

/**
 * 16 random bytes, positive and minimally encoded: forge writes the hex as the INTEGER's bytes verbatim, so a
 * set top bit would make a negative serial and a zero first byte a non-minimal one, both of which OpenSSL 3
 * refuses to parse.
 */
export function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f || 0x01;
  return bytes.toString('hex');
}

/** X.509 times have whole seconds; truncating here keeps the Date we return equal to what the certificate says. */
export function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

/** UTF8String, as openssl writes names; forge's default PrintableString cannot hold e.g. "_" or "@". */
export function nameAttributes(fields: { commonName: string; organizationName?: string }): forge.pki.CertificateField[] {
  const attrs: forge.pki.CertificateField[] = [];
  if (fields.organizationName !== undefined) attrs.push(utf8('organizationName', fields.organizationName));
  attrs.push(utf8('commonName', fields.commonName));
  return attrs;
}

function utf8(name: string, value: string): forge.pki.CertificateField {
  // @types/node-forge declares valueTagClass as an asn1.Class; forge actually reads it as the value's asn1.Type
  return { name, value, valueTagClass: forge.asn1.Type.UTF8 as unknown as forge.asn1.Class };
}

export function signSha256(cert: forge.pki.Certificate, key: forge.pki.rsa.PrivateKey): void {
  cert.sign(key, forge.md.sha256.create());
}

/** forge writes CRLF line endings; files in data/ use LF like openssl's. */
export function certificateToPem(cert: forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}

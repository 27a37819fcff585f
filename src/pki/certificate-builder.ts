import { randomBytes, type KeyObject } from 'node:crypto';
import { x509 } from './x509-library.js';
import { publicKeyDer, signingKeyFor } from './keys.js';

/*
 * The one certificate-signing path (CA and server certificates alike), for RSA and ECDSA signing keys:
 * @peculiar/x509 builds the DER, node's WebCrypto signs it.
 */

/** Clock-skew allowance: a certificate made now must already be valid on a peer whose clock runs a little behind. */
export const BACKDATE_MS = 5 * 60_000;

/** X.509 times have whole seconds; truncating here keeps the Date we return equal to what the certificate says. */
export function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

/** 16 random bytes, top bit clear and first byte non-zero: a positive, minimally encoded INTEGER (OpenSSL 3 refuses others). */
function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f || 0x01;
  return bytes.toString('hex');
}

/** UTF8String attributes, as openssl writes names (PrintableString cannot hold e.g. "_" or "@"). */
export function utf8Name(fields: { commonName: string; organizationName?: string }): x509.Name {
  const rdns: Array<Record<string, Array<{ utf8String: string }>>> = [];
  if (fields.organizationName !== undefined) rdns.push({ '2.5.4.10': [{ utf8String: fields.organizationName }] });
  rdns.push({ '2.5.4.3': [{ utf8String: fields.commonName }] });
  return new x509.Name(rdns);
}

export interface SignParams {
  subject: x509.Name;
  /** The issuer's subject exactly as its certificate encodes it (the tunnel compares names byte for byte). */
  issuer: x509.Name;
  subjectKey: KeyObject;
  signer: { key: KeyObject; label: string };
  notBefore: Date;
  notAfter: Date;
  extensions: x509.Extension[];
}

/** Signs a certificate; returns PEM with LF line endings, like openssl's files in data/. */
export async function signCertificate(p: SignParams): Promise<string> {
  const signing = await signingKeyFor(p.signer.key, p.signer.label);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: p.subject,
    issuer: p.issuer,
    notBefore: p.notBefore,
    notAfter: p.notAfter,
    publicKey: publicKeyDer(p.subjectKey),
    signingKey: signing.key,
    signingAlgorithm: signing.algorithm,
    extensions: p.extensions,
  });
  return `${cert.toString('pem').replace(/\r\n/g, '\n').trimEnd()}\n`;
}

/** SHA-1 of the subjectPublicKey bits: the same method as openssl's subjectKeyIdentifier=hash. */
export async function subjectKeyIdExtension(key: KeyObject): Promise<x509.SubjectKeyIdentifierExtension> {
  return x509.SubjectKeyIdentifierExtension.create(publicKeyDer(key));
}

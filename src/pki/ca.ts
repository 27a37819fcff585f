import forge from 'node-forge';
import { ValidationError } from '../errors.js';
import { BACKDATE_MS, certificateToPem, nameAttributes, randomSerialHex, signSha256, wholeSeconds } from './forge-cert.js';
import { generateRsaKeyPair } from './keys.js';
import type { PemPair } from './types.js';

const DAY_MS = 86_400_000;

export interface CreateCaOptions {
  commonName?: string;
  /** Default 3650 (10 years), as the manual flow's docs do. */
  validityDays?: number;
  now?: Date;
}

/**
 * A self-signed RSA-3072 CA meeting SPEC 4: CA:TRUE critical, keyCertSign + cRLSign critical, SKI present.
 * The CA is registered with the tunnel and signs every server certificate (renewals reuse it), so it lives long.
 */
export async function createCa(opts: CreateCaOptions = {}): Promise<PemPair> {
  const commonName = opts.commonName ?? 'mcp-tunnel CA';
  const validityDays = opts.validityDays ?? 3650;
  if (!Number.isFinite(validityDays) || validityDays <= 0) {
    throw new ValidationError(`invalid CA validity: ${validityDays} days`, 'use a positive number of days, e.g. 3650');
  }
  if (commonName.trim().length === 0) {
    throw new ValidationError('the CA common name is empty', 'omit it to use "mcp-tunnel CA"');
  }

  const keys = await generateRsaKeyPair(3072);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerialHex();
  const notBefore = wholeSeconds(new Date((opts.now ?? new Date()).getTime() - BACKDATE_MS));
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = new Date(notBefore.getTime() + validityDays * DAY_MS);

  const name = nameAttributes({ commonName, organizationName: 'mcp-tunnel' });
  cert.setSubject(name);
  cert.setIssuer(name);
  // forge fills subjectKeyIdentifier from cert.publicKey: SHA-1 of the key bits, the same method openssl uses
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  signSha256(cert, keys.privateKey);
  return { certPem: certificateToPem(cert), keyPem: keys.keyPem };
}

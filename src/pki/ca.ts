import { ValidationError } from '../errors.js';
import { BACKDATE_MS, signCertificate, subjectKeyIdExtension, utf8Name, wholeSeconds } from './certificate-builder.js';
import { generateKey, type KeyKind } from './keys.js';
import { x509 } from './x509-library.js';
import type { PemPair } from './types.js';

const DAY_MS = 86_400_000;

/** `--ca-key`: ECDSA P-256 like Anthropic's setup component (the default), or RSA-3072. */
export type CaKeyType = 'ecdsa' | 'rsa';
export const CA_KEY_TYPES: readonly CaKeyType[] = ['ecdsa', 'rsa'];
const CA_KEY_KINDS: Record<CaKeyType, KeyKind> = { ecdsa: 'ecdsa-p256', rsa: 'rsa-3072' };

export interface CreateCaOptions {
  commonName?: string;
  /** Default 'ecdsa' (P-256). */
  keyType?: CaKeyType;
  /** Default 3650 (10 years), as the manual flow's docs do. */
  validityDays?: number;
  now?: Date;
}

/**
 * A self-signed CA meeting the tunnel's rules (docs/contract.md): CA:TRUE critical, keyCertSign + cRLSign
 * critical, SKI present. It is registered with the tunnel and signs every server certificate, so it lives long.
 */
export async function createCa(opts: CreateCaOptions = {}): Promise<PemPair> {
  const commonName = opts.commonName ?? 'mcp-tunnel CA';
  const validityDays = opts.validityDays ?? 3650;
  if (!Number.isFinite(validityDays) || validityDays <= 0) {
    throw new ValidationError(`invalid CA validity: ${validityDays} days`, 'use a positive number of days, e.g. 3650', 'CA_VALIDITY_INVALID');
  }
  if (commonName.trim().length === 0) {
    throw new ValidationError('the CA common name is empty', 'omit it to use "mcp-tunnel CA"', 'CA_NAME_EMPTY');
  }
  const keyType = opts.keyType ?? 'ecdsa';
  const kind = CA_KEY_KINDS[keyType];
  if (kind === undefined) {
    throw new ValidationError(`invalid CA key type "${String(keyType)}"`, `use one of: ${CA_KEY_TYPES.join(', ')}`, 'CA_KEY_TYPE_INVALID');
  }

  const key = await generateKey(kind);
  const notBefore = wholeSeconds(new Date((opts.now ?? new Date()).getTime() - BACKDATE_MS));
  const name = utf8Name({ commonName, organizationName: 'mcp-tunnel' });
  const certPem = await signCertificate({
    subject: name,
    issuer: name,
    subjectKey: key.privateKey,
    signer: { key: key.privateKey, label: 'the new CA key' },
    notBefore,
    notAfter: new Date(notBefore.getTime() + validityDays * DAY_MS),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await subjectKeyIdExtension(key.privateKey),
    ],
  });
  return { certPem, keyPem: key.keyPem };
}

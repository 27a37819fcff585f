import { createPrivateKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { ValidationError } from '../errors.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface RsaKeyPair {
  /** PKCS#8 PEM, what `openssl genpkey` writes and what Go's tls.X509KeyPair and Node's tls both read. */
  keyPem: string;
  privateKey: forge.pki.rsa.PrivateKey;
  publicKey: forge.pki.rsa.PublicKey;
}

/**
 * Key generation runs in node:crypto (OpenSSL, off the main thread) because forge's pure-JS prime search takes
 * seconds for 3072 bits; forge only gets the finished key, since forge is what signs the certificates.
 * RSA only: node-forge cannot produce ECDSA X.509 signatures.
 */
export async function generateRsaKeyPair(bits: 2048 | 3072 | 4096): Promise<RsaKeyPair> {
  const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: bits, publicExponent: 0x10001 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { keyPem, ...toForgeRsa(privateKey) };
}

/** Reads a PEM private key (PKCS#1 or PKCS#8, unencrypted) as a node KeyObject, or explains why it cannot. */
export function readPrivateKey(keyPem: string, label: string): KeyObject {
  try {
    return createPrivateKey({ key: keyPem, format: 'pem' });
  } catch (err) {
    const encrypted = /ENCRYPTED/.test(keyPem);
    throw new ValidationError(
      encrypted ? `${label} is encrypted with a passphrase` : `${label} is not a PEM private key`,
      encrypted
        ? 'decrypt it first: openssl pkey -in KEYFILE -out KEYFILE.plain (mcp-tunnel reads unencrypted keys only)'
        : 'expected an unencrypted PEM private key (PKCS#8 "BEGIN PRIVATE KEY" or PKCS#1 "BEGIN RSA PRIVATE KEY")',
    );
  }
}

/** A forge RSA key for signing; refuses non-RSA keys with a message that says why (forge signs RSA only). */
export function forgeRsaKeyFromPem(keyPem: string, label: string): forge.pki.rsa.PrivateKey {
  const key = readPrivateKey(keyPem, label);
  if (key.asymmetricKeyType !== 'rsa') {
    throw new ValidationError(
      `${label} is an ${key.asymmetricKeyType ?? 'unknown'} key; mcp-tunnel can only sign with RSA keys`,
      'sign the server certificate with openssl instead, or create a new RSA CA with mcp-tunnel init',
    );
  }
  return toForgeRsa(key).privateKey;
}

function toForgeRsa(key: KeyObject): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey } {
  // Re-export as PKCS#8 so forge sees one format whatever the file held (PKCS#1 from older openssl, PKCS#8 from newer).
  const pem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  const privateKey = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  const publicKey = forge.pki.setRsaPublicKey(privateKey.n, privateKey.e);
  return { privateKey, publicKey };
}

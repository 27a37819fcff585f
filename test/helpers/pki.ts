import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createCa, issueServerCert, type CaKeyType, type PemPair } from '../../src/pki/index.js';

export interface TestPki {
  ca: PemPair;
  server: PemPair;
  domain: string;
}

const DEFAULT_DOMAIN = 'abcd1234.tunnel.example.com';

// Key generation costs hundreds of ms; every test in a worker shares one CA + server cert per domain.
const cache = new Map<string, Promise<TestPki>>();

/** A real CA and a server certificate for `domain` signed by it, made once per process per domain. */
export function makeTestPki(domain = DEFAULT_DOMAIN, keyType: CaKeyType = 'ecdsa'): Promise<TestPki> {
  const cacheKey = `${keyType} ${domain}`;
  let pki = cache.get(cacheKey);
  if (pki === undefined) {
    pki = (async () => {
      const ca = await createCa({ keyType });
      const server = await issueServerCert({ ca, domain });
      return { ca, server, domain };
    })();
    // a failure must not poison later tests with the same rejected promise
    pki.catch(() => cache.delete(cacheKey));
    cache.set(cacheKey, pki);
  }
  return pki;
}

/** Writes ca.crt, ca.key, tls.crt, tls.key into `dir` (created if missing) as the data/ layout has them; keys 0600. */
export async function writeTestPki(dir: string, domain?: string, keyType?: CaKeyType): Promise<TestPki> {
  const pki = await makeTestPki(domain, keyType);
  await mkdir(dir, { recursive: true });
  const files: Array<[string, string, number]> = [
    ['ca.crt', pki.ca.certPem, 0o644],
    ['ca.key', pki.ca.keyPem, 0o600],
    ['tls.crt', pki.server.certPem, 0o644],
    ['tls.key', pki.server.keyPem, 0o600],
  ];
  for (const [name, content, mode] of files) {
    const path = join(dir, name);
    await writeFile(path, content, { mode });
    await chmod(path, mode); // mode only applies when the file is created, and the umask may narrow it
  }
  return pki;
}

import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkServerCertificate,
  createCa,
  inspectCertificate,
  issueServerCert,
  verifySignedBy,
  blockingFailures,
  checkCaCertificate,
  countPemCertificates,
} from '../../src/pki/index.js';
import { writeTestPki, type TestPki } from '../helpers/pki.js';
import { openssl, opensslOk } from '../helpers/pki-openssl.js';

/*
 * What we write is judged by the real openssl CLI, the tool the manual flow's docs use and the closest thing to
 * the tunnel's own verifier we can run locally.
 */

const DAY = 86_400_000;
let dir: string;
let pki: TestPki;

function x509Text(file: string): Promise<string> {
  return opensslOk(['x509', '-in', file, '-noout', '-text'], { cwd: dir });
}

/** The lines under an extension heading in `openssl x509 -text`, e.g. "X509v3 Subject Key Identifier". */
function extension(text: string, heading: string): { critical: boolean; value: string } {
  const m = new RegExp(`${heading}:( critical)?\\s*\\n\\s*(.+)`).exec(text);
  if (m === null) throw new Error(`no "${heading}" in:\n${text}`);
  return { critical: m[1] !== undefined, value: (m[2] ?? '').trim() };
}

function keyId(value: string): string {
  // OpenSSL 3 prints the AKI as bare hex, 1.1 as "keyid:HEX"
  return value.replace(/^keyid:/, '').trim();
}

async function validityDays(file: string): Promise<number> {
  const out = await opensslOk(['x509', '-in', file, '-noout', '-startdate', '-enddate'], { cwd: dir });
  const start = /notBefore=(.+)/.exec(out)?.[1];
  const end = /notAfter=(.+)/.exec(out)?.[1];
  return (Date.parse(end ?? '') - Date.parse(start ?? '')) / DAY;
}

const KEY_TYPES = [
  { keyType: 'ecdsa', caKey: ['Public-Key: (256 bit)', 'NIST CURVE: P-256'], caSig: 'ecdsa-with-SHA256' },
  { keyType: 'rsa', caKey: ['Public-Key: (3072 bit)'], caSig: 'sha256WithRSAEncryption' },
] as const;

describe.each(KEY_TYPES)('$keyType CA: certificates read back by openssl', ({ keyType, caKey, caSig }) => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `mcp-tunnel-pki-${keyType}-`));
    pki = await writeTestPki(dir, undefined, keyType);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the data/ layout with private keys readable only by the owner', async () => {
    for (const [name, mode] of [['ca.crt', 0o644], ['ca.key', 0o600], ['tls.crt', 0o644], ['tls.key', 0o600]] as const) {
      expect((await stat(join(dir, name))).mode & 0o777, name).toBe(mode);
    }
    expect(await readFile(join(dir, 'tls.crt'), 'utf8')).toBe(pki.server.certPem);
  });

  it('openssl verifies the server certificate against the CA, strictly, for TLS server use and both host names', async () => {
    const out = await opensslOk(['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', 'ca.crt', 'tls.crt'], { cwd: dir });
    expect(out.trim()).toBe('tls.crt: OK');
    for (const host of [pki.domain, `mcp.${pki.domain}`]) {
      const r = await openssl(['verify', '-CAfile', 'ca.crt', '-verify_hostname', host, 'tls.crt'], { cwd: dir });
      expect(r.code, `${host}: ${r.stderr}`).toBe(0);
    }
    const wrongHost = await openssl(['verify', '-CAfile', 'ca.crt', '-verify_hostname', 'other.example.com', 'tls.crt'], { cwd: dir });
    expect(wrongHost.code).not.toBe(0);
  });

  it('the CA has CA:TRUE critical, keyCertSign + cRLSign critical, an SKI, its key type, SHA-256 and ~10 years', async () => {
    const text = await x509Text('ca.crt');
    expect(extension(text, 'X509v3 Basic Constraints')).toEqual({ critical: true, value: 'CA:TRUE' });
    expect(extension(text, 'X509v3 Key Usage')).toEqual({ critical: true, value: 'Certificate Sign, CRL Sign' });
    expect(keyId(extension(text, 'X509v3 Subject Key Identifier').value)).toMatch(/^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
    for (const line of caKey) expect(text).toContain(line);
    expect(text).toContain(`Signature Algorithm: ${caSig}`);
    expect(text).toMatch(/Subject: O = mcp-tunnel, CN = mcp-tunnel CA/);
    expect(await validityDays('ca.crt')).toBe(3650);
  });

  it('the server certificate carries what the tunnel checks, with AKI equal to the CA SKI', async () => {
    const ca = await x509Text('ca.crt');
    const text = await x509Text('tls.crt');
    expect(keyId(extension(text, 'X509v3 Authority Key Identifier').value)).toBe(keyId(extension(ca, 'X509v3 Subject Key Identifier').value));
    expect(extension(text, 'X509v3 Subject Alternative Name').value).toBe(`DNS:${pki.domain}, DNS:*.${pki.domain}`);
    expect(extension(text, 'X509v3 Extended Key Usage').value).toBe('TLS Web Server Authentication');
    expect(extension(text, 'X509v3 Basic Constraints').value).toBe('CA:FALSE');
    expect(extension(text, 'X509v3 Key Usage')).toEqual({ critical: true, value: 'Digital Signature' });
    // the server key is ECDSA P-256 whatever the CA (README "Decisions"); the signature is the CA's kind
    expect(text).toContain('Public-Key: (256 bit)');
    expect(text).toContain('NIST CURVE: P-256');
    expect(text).toContain(`Signature Algorithm: ${caSig}`);
    expect(text).toMatch(/Issuer: O = mcp-tunnel, CN = mcp-tunnel CA/);
    expect(text).toMatch(new RegExp(`Subject: CN = ${pki.domain.replace(/\./g, '\\.')}`));
    expect(await validityDays('tls.crt')).toBe(90);
  });

  it('-checkend: valid for the next day, gone in 91 days', async () => {
    expect((await openssl(['x509', '-in', 'tls.crt', '-noout', '-checkend', String(86_400)], { cwd: dir })).code).toBe(0);
    expect((await openssl(['x509', '-in', 'tls.crt', '-noout', '-checkend', String(91 * 86_400)], { cwd: dir })).code).toBe(1);
  });

  it('each private key belongs to its certificate (same public key)', async () => {
    const pub = async (args: string[]): Promise<string> => (await opensslOk(args, { cwd: dir })).trim();
    for (const [crt, key] of [['ca.crt', 'ca.key'], ['tls.crt', 'tls.key']] as const) {
      const certPub = await pub(['x509', '-in', crt, '-noout', '-pubkey']);
      expect(certPub).toMatch(/^-----BEGIN PUBLIC KEY-----/);
      expect(await pub(['pkey', '-in', key, '-pubout']), crt).toBe(certPub);
    }
    expect(await pub(['pkey', '-in', 'ca.key', '-pubout'])).not.toBe(await pub(['x509', '-in', 'tls.crt', '-noout', '-pubkey']));
  });

  it('inspectCertificate agrees with openssl on serial and SHA-256 fingerprint', async () => {
    const info = inspectCertificate(pki.server.certPem);
    const serial = await opensslOk(['x509', '-in', 'tls.crt', '-noout', '-serial'], { cwd: dir });
    expect(serial.trim()).toBe(`serial=${info.serialHex.toUpperCase()}`);
    const fp = await opensslOk(['x509', '-in', 'tls.crt', '-noout', '-fingerprint', '-sha256'], { cwd: dir });
    expect(fp.trim().split('=')[1]?.replace(/:/g, '').toLowerCase()).toBe(info.fingerprintSha256);
  });
});

describe.each(KEY_TYPES)('$keyType CA: failures openssl agrees with', ({ keyType }) => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `mcp-tunnel-pki-${keyType}-`));
    pki = await writeTestPki(dir, undefined, keyType);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('fails openssl verify, and checkServerCertificate names the rule', async () => {
    // the realistic accident: init re-run made a second CA with the same name, tls.crt came from the new one
    const otherCa = await createCa({ keyType });
    const stray = await issueServerCert({ ca: otherCa, domain: pki.domain });
    await writeFile(join(dir, 'stray.crt'), stray.certPem);

    const r = await openssl(['verify', '-CAfile', 'ca.crt', 'stray.crt'], { cwd: dir });
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/unable to get local issuer certificate|certificate signature failure/);

    const findings = checkServerCertificate(inspectCertificate(stray.certPem), inspectCertificate(pki.ca.certPem), {
      domain: pki.domain,
      now: new Date(),
      signedByCa: verifySignedBy(stray.certPem, pki.ca.certPem),
    });
    const failed = blockingFailures(findings).map((f) => f.rule);
    expect(failed).toEqual(['server.signed-by-ca', 'server.authority-key-id']);
    expect(findings.find((f) => f.rule === 'server.signed-by-ca')?.message).toContain('not signed by the CA "CN=mcp-tunnel CA, O=mcp-tunnel"');
  });

  it('an expired certificate: openssl -checkend 0 reports it expired and verify refuses it', async () => {
    const now = Date.now();
    const old = await issueServerCert({ ca: pki.ca, domain: pki.domain, notBefore: new Date(now - 100 * DAY), notAfter: new Date(now - 10 * DAY) });
    await writeFile(join(dir, 'old.crt'), old.certPem);
    expect((await openssl(['x509', '-in', 'old.crt', '-noout', '-checkend', '0'], { cwd: dir })).code).toBe(1);
    const r = await openssl(['verify', '-CAfile', 'ca.crt', 'old.crt'], { cwd: dir });
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('certificate has expired');
  });
});

describe('a CA made with openssl the way the manual flow does it', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcp-tunnel-pki-manual-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  // the docs' commands; renew-cert must be able to sign with such a CA (and its PKCS#1 or PKCS#8 key)
  it.each([['PKCS#8', []], ['PKCS#1', ['-traditional']]] as const)('signs a server certificate with it (%s key)', async (_, keyFlags) => {
    const sub = await mkdtemp(join(dir, 'manual-'));
    await opensslOk(['genrsa', ...keyFlags, '-out', 'ca.key', '3072'], { cwd: sub });
    await opensslOk(
      ['req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '3650', '-subj', '/O=Example Corp/CN=Example MCP Tunnel CA',
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.crt'],
      { cwd: sub },
    );
    const caPem = await readFile(join(sub, 'ca.crt'), 'utf8');
    const keyPem = await readFile(join(sub, 'ca.key'), 'utf8');
    expect(keyPem.startsWith(keyFlags.length === 0 ? '-----BEGIN PRIVATE KEY-----' : '-----BEGIN RSA PRIVATE KEY-----')).toBe(true);
    const caInfo = inspectCertificate(caPem);
    expect(blockingFailures(checkCaCertificate(caInfo, new Date(), { pemCount: countPemCertificates(caPem) }))).toEqual([]);

    const server = await issueServerCert({ ca: { certPem: caPem, keyPem }, domain: 'wxyz9876.tunnel.example.com' });
    await writeFile(join(sub, 'tls.crt'), server.certPem);
    expect((await opensslOk(['verify', '-x509_strict', '-CAfile', 'ca.crt', 'tls.crt'], { cwd: sub })).trim()).toBe('tls.crt: OK');
    const info = inspectCertificate(server.certPem);
    expect(info.issuer).toBe('CN=Example MCP Tunnel CA, O=Example Corp');
    expect(info.authorityKeyId).toBe(caInfo.subjectKeyId);
  });
});

describe("a directory made the way Anthropic's setup component does it (ECDSA P-256 CA, 5 years)", () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcp-tunnel-pki-setup-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([['SEC1', ['-traditional']], ['PKCS#8', []]] as const)('signs a server certificate openssl verifies (%s CA key, P-256 and P-384)', async (_, keyFlags) => {
    for (const curve of ['P-256', 'P-384']) {
      const sub = await mkdtemp(join(dir, 'setup-'));
      await opensslOk(['genpkey', '-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${curve}`, '-out', 'ca.p8'], { cwd: sub });
      await opensslOk(['pkey', '-in', 'ca.p8', ...keyFlags, '-out', 'ca.key'], { cwd: sub });
      await opensslOk(
        ['req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '1825', '-subj', '/CN=MCP Tunnel CA',
          '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.crt'],
        { cwd: sub },
      );
      const caPem = await readFile(join(sub, 'ca.crt'), 'utf8');
      const keyPem = await readFile(join(sub, 'ca.key'), 'utf8');
      expect(keyPem.startsWith(keyFlags.length === 0 ? '-----BEGIN PRIVATE KEY-----' : '-----BEGIN EC PRIVATE KEY-----')).toBe(true);
      const server = await issueServerCert({ ca: { certPem: caPem, keyPem }, domain: 'wxyz9876.tunnel.example.com' });
      await writeFile(join(sub, 'tls.crt'), server.certPem);
      const ok = await opensslOk(['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', 'ca.crt', '-verify_hostname', 'mcp.wxyz9876.tunnel.example.com', 'tls.crt'], { cwd: sub });
      expect(ok.trim(), curve).toBe('tls.crt: OK');
      const text = await opensslOk(['x509', '-in', 'tls.crt', '-noout', '-text'], { cwd: sub });
      expect(text, curve).toContain(`Signature Algorithm: ${curve === 'P-256' ? 'ecdsa-with-SHA256' : 'ecdsa-with-SHA384'}`);
      const caInfo = inspectCertificate(caPem);
      expect(blockingFailures(checkServerCertificate(inspectCertificate(server.certPem), caInfo, { domain: 'wxyz9876.tunnel.example.com', now: new Date(), signedByCa: verifySignedBy(server.certPem, caPem) }))).toEqual([]);
    }
  });
});

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  blockingFailures,
  checkCaCertificate,
  checkServerCertificate,
  countPemCertificates,
  createCa,
  inspectCertificate,
  issueServerCert,
  pemContainsPrivateKey,
  verifySignedBy,
  type CertInfo,
  type Finding,
  type PemPair,
} from '../../src/pki/index.js';
import { writeTestPki, type TestPki } from '../helpers/pki.js';
import { opensslOk } from '../helpers/pki-openssl.js';

/* The docs/contract.md §4 rules judged against real certificates: ours, and ones openssl makes the way users do. */

const DOMAIN = 'abcd1234.tunnel.example.com';
let dir: string;
let pki: TestPki;
let caInfo: CertInfo;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcp-tunnel-rules-'));
  pki = await writeTestPki(dir, DOMAIN);
  caInfo = inspectCertificate(pki.ca.certPem);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const failedRules = (findings: Finding[]): string[] => blockingFailures(findings).map((f) => f.rule);
const finding = (findings: Finding[], rule: string): Finding => {
  const f = findings.find((x) => x.rule === rule);
  if (f === undefined) throw new Error(`no finding ${rule} in ${JSON.stringify(findings)}`);
  return f;
};

function checkServer(server: PemPair | string, ca: PemPair | string = pki.ca, domain = DOMAIN, now = new Date()): Finding[] {
  const serverPem = typeof server === 'string' ? server : server.certPem;
  const caPem = typeof ca === 'string' ? ca : ca.certPem;
  return checkServerCertificate(inspectCertificate(serverPem), inspectCertificate(caPem), { domain, now, signedByCa: verifySignedBy(serverPem, caPem) });
}

let n = 0;
/** A self-signed CA made by `openssl req -x509` with the given key options and extension lines. */
async function opensslCa(keyArgs: string[], extLines: string[], extra: string[] = []): Promise<PemPair & { id: string }> {
  const id = `ca${n++}`;
  await writeFile(join(dir, `${id}.cnf`), ['[req]', 'distinguished_name=dn', 'prompt=no', '[dn]', `CN=${id}`, '[ext]', ...extLines, ''].join('\n'));
  await opensslOk(['req', '-x509', '-config', `${id}.cnf`, '-extensions', 'ext', ...keyArgs, '-nodes', '-keyout', `${id}.key`, '-out', `${id}.crt`, '-days', '365', ...extra], { cwd: dir });
  return { id, certPem: await readFile(join(dir, `${id}.crt`), 'utf8'), keyPem: await readFile(join(dir, `${id}.key`), 'utf8') };
}

/** A server certificate signed by openssl with a CA from `dir` (files `<ca>.crt/.key`) and the given extensions. */
async function opensslServer(ca: string, extLines: string[], subject = `/CN=${DOMAIN}`): Promise<string> {
  const id = `srv${n++}`;
  await writeFile(join(dir, `${id}.ext`), [...extLines, ''].join('\n'));
  await opensslOk(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${id}.key`, '-subj', subject, '-out', `${id}.csr`], { cwd: dir });
  await opensslOk(['x509', '-req', '-in', `${id}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-set_serial', `0x${(1000 + n).toString(16)}`, '-days', '30', '-sha256', '-extfile', `${id}.ext`, '-out', `${id}.crt`], { cwd: dir });
  return readFile(join(dir, `${id}.crt`), 'utf8');
}

const SERVER_EXT = [`subjectAltName=DNS:${DOMAIN},DNS:*.${DOMAIN}`, 'authorityKeyIdentifier=keyid', 'subjectKeyIdentifier=hash', 'basicConstraints=CA:FALSE'];

describe('checkCaCertificate', () => {
  it('passes our CA on every rule, advisories included', () => {
    const findings = checkCaCertificate(caInfo, new Date(), { pemCount: 1, containsPrivateKey: false });
    expect(findings.map((f) => [f.rule, f.ok])).toEqual([
      ['ca.no-private-key', true],
      ['ca.single-certificate', true],
      ['ca.size', true],
      ['ca.basic-constraints', true],
      ['ca.subject-key-id', true],
      ['ca.key-usage', true],
      ['ca.crl-sign', true],
      ['ca.key-usage-critical', true],
      ['ca.validity', true],
      ['ca.key', true],
      ['ca.signature', true],
    ]);
    expect(finding(findings, 'ca.validity').message).toMatch(/^valid until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(36\d\d days left\)$/);
  });

  it('reads an ECDSA P-256 CA made by openssl and passes it', async () => {
    const ec = await opensslCa(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-sha256'], [
      'basicConstraints=critical,CA:TRUE',
      'keyUsage=critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier=hash',
    ]);
    const info = inspectCertificate(ec.certPem);
    expect(info.publicKey).toEqual({ type: 'ec', curve: 'prime256v1', bits: 256 });
    expect(info.signatureAlgorithm).toBe('ecdsa-with-SHA256');
    expect(info).toMatchObject({ isCa: true, basicConstraintsCritical: true, keyUsage: ['keyCertSign', 'cRLSign'], keyUsageCritical: true });
    const findings = checkCaCertificate(info, new Date(), { pemCount: 1 });
    expect(failedRules(findings)).toEqual([]);
    expect(finding(findings, 'ca.key').message).toBe('ECDSA P-256 key');
    // an ECDSA CA signs server certificates like an RSA one (Anthropic's setup component makes such CAs)
    const server = await issueServerCert({ ca: ec, domain: DOMAIN });
    expect(failedRules(checkServer(server, ec))).toEqual([]);
  });

  it('fails an ECDSA key on a curve the tunnel does not take (secp256k1)', async () => {
    const k1 = await opensslCa(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1', '-sha256'], ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash']);
    const findings = checkCaCertificate(inspectCertificate(k1.certPem), new Date());
    expect(failedRules(findings)).toEqual(['ca.key']);
    expect(finding(findings, 'ca.key').message).toBe('the CA has an ECDSA key on curve secp256k1; the tunnel needs RSA >= 2048 or ECDSA P-256/P-384/P-521');
  });

  it('fails RSA-1024 and SHA-1, each with its own rule', async () => {
    const weak = await opensslCa(['-newkey', 'rsa:1024', '-sha1'], ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash']);
    const findings = checkCaCertificate(inspectCertificate(weak.certPem), new Date());
    expect(failedRules(findings)).toEqual(['ca.key', 'ca.signature']);
    expect(finding(findings, 'ca.key').message).toContain('RSA 1024-bit key; the tunnel needs at least 2048 bits');
    expect(finding(findings, 'ca.signature').message).toContain('signed with sha1WithRSAEncryption');
  });

  it('fails a non-critical CA:TRUE and a missing SKI; a missing cRLSign and non-critical keyUsage only warn', async () => {
    const lax = await opensslCa(['-newkey', 'rsa:2048', '-sha256'], ['basicConstraints=CA:TRUE', 'keyUsage=keyCertSign', 'subjectKeyIdentifier=none', 'authorityKeyIdentifier=none']);
    const info = inspectCertificate(lax.certPem);
    expect(info.subjectKeyId).toBeUndefined();
    const findings = checkCaCertificate(info, new Date());
    expect(failedRules(findings)).toEqual(['ca.basic-constraints', 'ca.subject-key-id']);
    expect(finding(findings, 'ca.basic-constraints').message).toBe('the CA certificate has CA:TRUE but basicConstraints is not marked critical');
    expect(findings.filter((f) => !f.ok && f.advisory === true).map((f) => f.rule)).toEqual(['ca.crl-sign', 'ca.key-usage-critical']);
    // and our issuer refuses to sign with a CA the tunnel would reject for lack of an SKI
    await expect(issueServerCert({ ca: lax, domain: DOMAIN })).rejects.toThrow(/no subjectKeyIdentifier/);
  });

  it('fails a leaf certificate offered as the CA', () => {
    const findings = checkCaCertificate(inspectCertificate(pki.server.certPem), new Date());
    expect(failedRules(findings)).toEqual(['ca.basic-constraints', 'ca.key-usage']);
    expect(finding(findings, 'ca.basic-constraints').message).toContain('is not marked as a CA');
  });

  it('fails an expired CA and says when it expired', async () => {
    const old = await createCa({ now: new Date('2015-01-01T00:00:00Z'), validityDays: 365 });
    const findings = checkCaCertificate(inspectCertificate(old.certPem), new Date('2016-06-01T00:00:00Z'));
    expect(failedRules(findings)).toEqual(['ca.validity']);
    expect(finding(findings, 'ca.validity').message).toBe('the CA certificate expired on 2015-12-31T23:55:00Z (152 days ago)');
  });

  it('fails an oversized PEM (over 8192 bytes) even though the certificate itself parses', () => {
    const padded = `${'# generated by our PKI team\n'.repeat(300)}${pki.ca.certPem}`;
    const info = inspectCertificate(padded);
    expect(info.pemBytes).toBeGreaterThan(8192);
    const findings = checkCaCertificate(info, new Date(), { pemCount: countPemCertificates(padded) });
    expect(failedRules(findings)).toEqual(['ca.size']);
    expect(finding(findings, 'ca.size').message).toBe(`the CA PEM is ${info.pemBytes} bytes; the Console takes at most 8192`);
    // exactly 8192 bytes is still fine
    expect(failedRules(checkCaCertificate({ ...info, pemBytes: 8192 }, new Date()))).toEqual([]);
  });

  it('fails a PEM holding two certificates, and one holding the private key', () => {
    const two = pki.ca.certPem + pki.server.certPem;
    const withKey = pki.ca.certPem + pki.ca.keyPem;
    const findings = checkCaCertificate(inspectCertificate(two), new Date(), { pemCount: countPemCertificates(two), containsPrivateKey: pemContainsPrivateKey(two) });
    expect(failedRules(findings)).toEqual(['ca.single-certificate']);
    expect(finding(findings, 'ca.single-certificate').message).toBe('the CA file holds 2 certificates; the tunnel takes exactly one');
    const keyFindings = checkCaCertificate(inspectCertificate(withKey), new Date(), { pemCount: 1, containsPrivateKey: pemContainsPrivateKey(withKey) });
    expect(failedRules(keyFindings)).toEqual(['ca.no-private-key']);
  });
});

describe('checkServerCertificate', () => {
  it('passes our server certificate on every rule', () => {
    const findings = checkServer(pki.server);
    expect(findings.map((f) => [f.rule, f.ok])).toEqual([
      ['server.signed-by-ca', true],
      ['server.issuer', true],
      ['server.authority-key-id', true],
      ['server.san', true],
      ['server.ext-key-usage', true],
      ['server.validity', true],
      ['server.key', true],
      ['server.signature', true],
    ]);
  });

  it('fails an expired certificate, with the date and "renew-cert" as the fix', async () => {
    const expired = await issueServerCert({ ca: pki.ca, domain: DOMAIN, notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2020-02-01T00:00:00Z') });
    const findings = checkServer(expired, pki.ca, DOMAIN, new Date('2020-02-03T00:00:00Z'));
    expect(failedRules(findings)).toEqual(['server.validity']);
    expect(finding(findings, 'server.validity')).toEqual({
      rule: 'server.validity',
      ok: false,
      message: 'the server certificate expired on 2020-02-01T00:00:00Z (2 days ago)',
      hint: 'run mcp-tunnel renew-cert',
    });
  });

  it('fails a certificate that is not valid yet and points at the clock', async () => {
    const future = await issueServerCert({ ca: pki.ca, domain: DOMAIN, now: new Date(Date.now() + 86_400_000) });
    const findings = checkServer(future);
    expect(failedRules(findings)).toEqual(['server.validity']);
    expect(finding(findings, 'server.validity').hint).toMatch(/clock/);
  });

  it('fails a certificate for another domain and names what is missing', async () => {
    const findings = checkServer(pki.server, pki.ca, 'zzzz9999.tunnel.example.com');
    expect(failedRules(findings)).toEqual(['server.san']);
    const san = finding(findings, 'server.san');
    expect(san.message).toBe(`the server certificate does not cover zzzz9999.tunnel.example.com and *.zzzz9999.tunnel.example.com (it has ${DOMAIN}, *.${DOMAIN})`);
    expect(san.hint).toContain('re-run init with the right --tunnel-domain');
    // the domain as the user may type it still matches
    expect(failedRules(checkServer(pki.server, pki.ca, `${DOMAIN.toUpperCase()}.`))).toEqual([]);
  });

  it('fails a SAN without the wildcard', async () => {
    const pem = await opensslServer('ca', [`subjectAltName=DNS:${DOMAIN}`, 'authorityKeyIdentifier=keyid']);
    const findings = checkServer(pem);
    expect(failedRules(findings)).toEqual(['server.san']);
    expect(finding(findings, 'server.san').message).toMatch(new RegExp(`^the server certificate does not cover \\*\\.${DOMAIN.replace(/\./g, '\\.')} \\(`));
  });

  it('passes an openssl-signed certificate with no extendedKeyUsage', async () => {
    const pem = await opensslServer('ca', SERVER_EXT);
    const info = inspectCertificate(pem);
    expect(info.extKeyUsage).toBeUndefined();
    const findings = checkServer(pem);
    expect(failedRules(findings)).toEqual([]);
    expect(finding(findings, 'server.ext-key-usage').message).toBe('no extendedKeyUsage (any use allowed)');
  });

  it('fails an extendedKeyUsage without serverAuth', async () => {
    const pem = await opensslServer('ca', [...SERVER_EXT, 'extendedKeyUsage=clientAuth']);
    const findings = checkServer(pem);
    expect(failedRules(findings)).toEqual(['server.ext-key-usage']);
    expect(finding(findings, 'server.ext-key-usage').message).toBe("the server certificate's extendedKeyUsage (clientAuth) lacks serverAuth");
  });

  it('fails a certificate without an authorityKeyIdentifier', async () => {
    const pem = await opensslServer('ca', [`subjectAltName=DNS:${DOMAIN},DNS:*.${DOMAIN}`, 'authorityKeyIdentifier=none', 'subjectKeyIdentifier=none']);
    expect(inspectCertificate(pem).authorityKeyId).toBeUndefined();
    expect(failedRules(checkServer(pem))).toEqual(['server.authority-key-id']);
  });

  it('fails a certificate signed by another CA with the same name: signature and AKI, not issuer', async () => {
    const other = await createCa();
    const stray = await issueServerCert({ ca: other, domain: DOMAIN });
    const findings = checkServer(stray);
    expect(failedRules(findings)).toEqual(['server.signed-by-ca', 'server.authority-key-id']);
    expect(finding(findings, 'server.signed-by-ca').hint).toBe('run mcp-tunnel renew-cert --force to issue a new one from data/ca.key');
  });

  it('fails an issuer name that is not the CA subject', async () => {
    const renamed = await createCa({ commonName: 'Some Other CA' });
    const stray = await issueServerCert({ ca: renamed, domain: DOMAIN });
    const findings = checkServer(stray);
    expect(failedRules(findings)).toEqual(['server.signed-by-ca', 'server.issuer', 'server.authority-key-id']);
    expect(finding(findings, 'server.issuer').message).toBe(`the server certificate's issuer "CN=Some Other CA, O=mcp-tunnel" is not the CA's subject "CN=mcp-tunnel CA, O=mcp-tunnel"`);
  });

  it('judges a leaf signed by an ECDSA P-384 CA (ecdsa-with-SHA256) as good', async () => {
    const ecCa = await opensslCa(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-sha384'], ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash']);
    expect(inspectCertificate(ecCa.certPem).publicKey).toEqual({ type: 'ec', curve: 'secp384r1', bits: 384 });
    expect(inspectCertificate(ecCa.certPem).signatureAlgorithm).toBe('ecdsa-with-SHA384');
    const pem = await opensslServer(ecCa.id, [...SERVER_EXT, 'extendedKeyUsage=serverAuth']);
    expect(inspectCertificate(pem).signatureAlgorithm).toBe('ecdsa-with-SHA256');
    expect(failedRules(checkServer(pem, ecCa))).toEqual([]);
  });
});

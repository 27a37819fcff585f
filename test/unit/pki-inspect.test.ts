import { createHash, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import {
  countPemCertificates,
  createCa,
  inspectCertificate,
  issueServerCert,
  keyMatchesCertificate,
  pemContainsPrivateKey,
  verifySignedBy,
} from '../../src/pki/index.js';
import { makeTestPki } from '../helpers/pki.js';

const DAY = 86_400_000;
// whole seconds, so what we pass in must come back exactly from the certificate
const now = new Date('2031-03-04T05:06:07Z');

function derOf(pem: string): Buffer {
  const body = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem)?.[1] ?? '';
  return Buffer.from(body.replace(/\s+/g, ''), 'base64');
}

describe('createCa + inspectCertificate', () => {
  it('makes an ECDSA P-256 CA by default (like the setup component), RSA-3072 on request', async () => {
    const rsa = inspectCertificate((await createCa({ now, keyType: 'rsa' })).certPem);
    expect(rsa).toMatchObject({ publicKey: { type: 'rsa', bits: 3072 }, signatureAlgorithm: 'sha256WithRSAEncryption', isCa: true, subjectKeyId: expect.stringMatching(/^[0-9a-f]{40}$/) });
  });

  it('makes the CA the tunnel asks for, backdated 5 minutes, 10 years long', async () => {
    const ca = await createCa({ now });
    const info = inspectCertificate(ca.certPem);
    expect(info).toMatchObject({
      subject: 'CN=mcp-tunnel CA, O=mcp-tunnel',
      issuer: 'CN=mcp-tunnel CA, O=mcp-tunnel',
      isCa: true,
      basicConstraintsCritical: true,
      keyUsage: ['keyCertSign', 'cRLSign'],
      keyUsageCritical: true,
      extKeyUsage: undefined,
      authorityKeyId: undefined,
      dnsNames: [],
      publicKey: { type: 'ec', curve: 'prime256v1', bits: 256 },
      signatureAlgorithm: 'ecdsa-with-SHA256',
    });
    expect(info.notBefore.toISOString()).toBe('2031-03-04T05:01:07.000Z');
    expect(info.notAfter.getTime() - info.notBefore.getTime()).toBe(3650 * DAY);
    expect(info.subjectKeyId).toMatch(/^[0-9a-f]{40}$/);
    // a positive 16-byte serial, minimally encoded (OpenSSL 3 rejects anything else)
    expect(info.serialHex).toMatch(/^[0-7][0-9a-f]{31}$/);
    expect(info.serialHex.startsWith('00')).toBe(false);
    expect(info.pemBytes).toBe(Buffer.byteLength(ca.certPem));
    expect(ca.certPem).not.toContain('\r');
    expect(ca.keyPem.startsWith('-----BEGIN PRIVATE KEY-----')).toBe(true);
  });

  it('honours a custom common name (UTF-8, including characters PrintableString forbids) and validity', async () => {
    const ca = await createCa({ commonName: 'ops_team@acme — CA', validityDays: 30, now });
    const info = inspectCertificate(ca.certPem);
    expect(info.subject).toBe('CN=ops_team@acme — CA, O=mcp-tunnel');
    expect(info.notAfter.getTime() - info.notBefore.getTime()).toBe(30 * DAY);
  });

  it('refuses a non-positive validity', async () => {
    await expect(createCa({ validityDays: 0 })).rejects.toMatchObject({ code: 'CA_VALIDITY_INVALID', exitCode: 2 });
  });

  it('fingerprintSha256 is the SHA-256 of the DER (the Tunnels API fingerprint)', async () => {
    const { ca } = await makeTestPki();
    expect(inspectCertificate(ca.certPem).fingerprintSha256).toBe(createHash('sha256').update(derOf(ca.certPem)).digest('hex'));
  });

  it('two CAs never share a serial or key', async () => {
    const [a, b] = await Promise.all([createCa(), createCa()]);
    expect(inspectCertificate(a.certPem).serialHex).not.toBe(inspectCertificate(b.certPem).serialHex);
    expect(inspectCertificate(a.certPem).subjectKeyId).not.toBe(inspectCertificate(b.certPem).subjectKeyId);
  });
});

describe('issueServerCert', () => {
  it('signs a 90-day ECDSA P-256 certificate for the domain and its wildcard, AKI = the CA SKI', async () => {
    const { ca } = await makeTestPki();
    const server = await issueServerCert({ ca, domain: 'AbCd1234.Tunnel.Example.com.', now });
    const info = inspectCertificate(server.certPem);
    const caInfo = inspectCertificate(ca.certPem);
    expect(info).toMatchObject({
      subject: 'CN=abcd1234.tunnel.example.com',
      issuer: caInfo.subject,
      isCa: false,
      keyUsage: ['digitalSignature'],
      keyUsageCritical: true,
      extKeyUsage: ['serverAuth'],
      dnsNames: ['abcd1234.tunnel.example.com', '*.abcd1234.tunnel.example.com'],
      publicKey: { type: 'ec', curve: 'prime256v1', bits: 256 },
      signatureAlgorithm: 'ecdsa-with-SHA256',
      authorityKeyId: caInfo.subjectKeyId,
    });
    expect(info.subjectKeyId).toMatch(/^[0-9a-f]{40}$/);
    expect(info.subjectKeyId).not.toBe(caInfo.subjectKeyId);
    expect(info.notBefore.toISOString()).toBe('2031-03-04T05:01:07.000Z');
    expect(info.notAfter.getTime() - info.notBefore.getTime()).toBe(90 * DAY);
    expect(verifySignedBy(server.certPem, ca.certPem)).toBe(true);
    expect(new X509Certificate(server.certPem).checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(keyMatchesCertificate(server.certPem, server.keyPem)).toBe(true);
  });

  it('takes explicit notBefore/notAfter (e.g. an already expired certificate) and a custom duration', async () => {
    const { ca } = await makeTestPki();
    const expired = await issueServerCert({ ca, domain: 'abcd1234.tunnel.example.com', notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2020-02-01T00:00:00Z') });
    expect(inspectCertificate(expired.certPem).notAfter.toISOString()).toBe('2020-02-01T00:00:00.000Z');
    const short = await issueServerCert({ ca, domain: 'abcd1234.tunnel.example.com', now, validityMs: 3_600_000 });
    const info = inspectCertificate(short.certPem);
    expect(info.notAfter.getTime() - info.notBefore.getTime()).toBe(3_600_000);
  });

  it('can issue past 2049 (GeneralizedTime) and node reads it back', async () => {
    const { ca } = await makeTestPki();
    const far = await issueServerCert({ ca, domain: 'abcd1234.tunnel.example.com', notBefore: new Date('2049-12-01T00:00:00Z'), notAfter: new Date('2050-03-01T00:00:00Z') });
    expect(inspectCertificate(far.certPem).notAfter.toISOString()).toBe('2050-03-01T00:00:00.000Z');
  });

  it('refuses a CA whose key is not the CA certificate key', async () => {
    const { ca, server } = await makeTestPki();
    const err = await issueServerCert({ ca: { certPem: ca.certPem, keyPem: server.keyPem }, domain: 'abcd1234.tunnel.example.com' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect(err).toMatchObject({ code: 'CA_KEY_MISMATCH', exitCode: 2 });
    expect((err as ValidationError).hint).toMatch(/ca\.key/);
  });

  it.each([
    ['', /invalid tunnel domain/],
    ['not a domain', /invalid tunnel domain/],
    ['localhost', /invalid tunnel domain/],
    ['*.abcd1234.tunnel.example.com', /without "\*\."/],
  ])('refuses the domain %j', async (domain, message) => {
    const { ca } = await makeTestPki();
    await expect(issueServerCert({ ca, domain })).rejects.toThrow(message);
  });

  it('refuses notAfter not after notBefore, and a non-positive duration', async () => {
    const { ca } = await makeTestPki();
    const t = new Date('2030-01-01T00:00:00Z');
    await expect(issueServerCert({ ca, domain: 'a.example.com', notBefore: t, notAfter: t })).rejects.toMatchObject({ code: 'CERT_VALIDITY_INVALID', exitCode: 2 });
    await expect(issueServerCert({ ca, domain: 'a.example.com', validityMs: 0 })).rejects.toMatchObject({ code: 'CERT_VALIDITY_INVALID', exitCode: 2 });
  });
});

describe('inspectCertificate on bad input', () => {
  it.each([
    ['empty text', '', /^ca\.crt is not a PEM certificate$/],
    ['random text', 'hello world', /^ca\.crt is not a PEM certificate$/],
    ['damaged base64', '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n', /base64 body is damaged/],
    ['valid base64 that is not X.509', `-----BEGIN CERTIFICATE-----\n${Buffer.from('not der at all').toString('base64')}\n-----END CERTIFICATE-----\n`, /does not parse as X\.509/],
  ])('%s: ValidationError with a hint', (_, pem, message) => {
    let err: unknown;
    try {
      inspectCertificate(pem, 'ca.crt');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).message).toMatch(message);
    expect((err as ValidationError).hint).toBeTruthy();
  });

  it('says so when handed the private key instead of the certificate', async () => {
    const { ca } = await makeTestPki();
    expect(() => inspectCertificate(ca.keyPem, 'ca.crt')).toThrow(expect.objectContaining({ code: 'CERT_IS_KEY', exitCode: 2 }));
  });

  it('reads the first certificate of a bundle, tolerates CRLF and surrounding text, and counts the certificates', async () => {
    const { ca, server } = await makeTestPki();
    const bundle = `subject=CN=whatever\r\n${server.certPem.replace(/\n/g, '\r\n')}\n${ca.certPem}`;
    expect(countPemCertificates(bundle)).toBe(2);
    expect(countPemCertificates(ca.certPem)).toBe(1);
    expect(countPemCertificates('nothing')).toBe(0);
    expect(inspectCertificate(bundle).subject).toBe('CN=abcd1234.tunnel.example.com');
    expect(pemContainsPrivateKey(ca.certPem + ca.keyPem)).toBe(true);
    expect(pemContainsPrivateKey(bundle)).toBe(false);
  });
});

describe('keyMatchesCertificate / verifySignedBy', () => {
  it('tells matching from mismatched keys, and refuses a non-key', async () => {
    const { ca, server } = await makeTestPki();
    expect(keyMatchesCertificate(ca.certPem, ca.keyPem)).toBe(true);
    expect(keyMatchesCertificate(ca.certPem, server.keyPem)).toBe(false);
    expect(() => keyMatchesCertificate(ca.certPem, 'garbage')).toThrow(expect.objectContaining({ code: 'KEY_INVALID' }));
  });

  it('a certificate is not "signed by" an unrelated CA, nor by itself when it is a leaf', async () => {
    const { ca, server } = await makeTestPki();
    const other = await createCa();
    expect(verifySignedBy(server.certPem, ca.certPem)).toBe(true);
    expect(verifySignedBy(server.certPem, other.certPem)).toBe(false);
    expect(verifySignedBy(server.certPem, server.certPem)).toBe(false);
    expect(verifySignedBy(ca.certPem, ca.certPem)).toBe(true);
  });
});

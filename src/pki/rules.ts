import type { CertInfo } from './inspect.js';

/*
 * docs/contract.md §4 ("Certificate requirements") as data. Pure: no I/O, no clock (callers pass `now`), so init, probe and
 * doctor all judge a certificate the same way and tests can pin every boundary.
 */

export interface Finding {
  /** Stable id, e.g. "ca.basic-constraints" or "server.san": for --json output and for tests. */
  rule: string;
  ok: boolean;
  /** One line a user understands, whether ok or not. */
  message: string;
  /** The fix, present on failures. */
  hint?: string;
  /** A recommendation from the docs, not a requirement: a failed advisory finding is a warning, not an error. */
  advisory?: boolean;
}

/** The Console refuses larger CA uploads. */
export const MAX_CA_PEM_BYTES = 8192;

const GOOD_SIGNATURES = new Set([
  'sha256WithRSAEncryption',
  'sha384WithRSAEncryption',
  'sha512WithRSAEncryption',
  'ecdsa-with-SHA256',
  'ecdsa-with-SHA384',
  'ecdsa-with-SHA512',
]);
// OpenSSL's names for the NIST curves that "ECDSA >= P-256" admits
const GOOD_CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

const RENEW_SERVER = 'run mcp-tunnel renew-cert --force to issue a new one from data/ca.key';
const NEW_CA = 'create a new CA and register it with the tunnel (register the new one, switch the proxy, then archive the old one)';

/** The failures that block: failed findings that are not advisory. */
export function blockingFailures(findings: readonly Finding[]): Finding[] {
  return findings.filter((f) => !f.ok && f.advisory !== true);
}

export function checkCaCertificate(ca: CertInfo, now: Date, opts: { pemCount?: number; containsPrivateKey?: boolean } = {}): Finding[] {
  const findings: Finding[] = [];
  if (opts.containsPrivateKey !== undefined) {
    findings.push(
      opts.containsPrivateKey
        ? fail('ca.no-private-key', 'the CA file also holds a private key, which must never be uploaded', 'register ca.crt alone; keep ca.key on this host')
        : pass('ca.no-private-key', 'the CA file holds no private key'),
    );
  }
  if (opts.pemCount !== undefined) {
    findings.push(
      opts.pemCount === 1
        ? pass('ca.single-certificate', 'the CA file holds exactly one certificate')
        : fail('ca.single-certificate', `the CA file holds ${opts.pemCount} certificates; the tunnel takes exactly one`, 'register the CA certificate alone, without a chain or bundle'),
    );
  }
  findings.push(
    ca.pemBytes <= MAX_CA_PEM_BYTES
      ? pass('ca.size', `the CA PEM is ${ca.pemBytes} bytes (limit ${MAX_CA_PEM_BYTES})`)
      : fail('ca.size', `the CA PEM is ${ca.pemBytes} bytes; the Console takes at most ${MAX_CA_PEM_BYTES}`, 'upload only the -----BEGIN CERTIFICATE----- block, without comments, chain or text dump'),
  );
  if (!ca.isCa) {
    findings.push(fail('ca.basic-constraints', 'the CA certificate is not marked as a CA (basicConstraints CA:TRUE is missing)', `${NEW_CA}; openssl needs basicConstraints=critical,CA:TRUE`));
  } else if (!ca.basicConstraintsCritical) {
    findings.push(fail('ca.basic-constraints', 'the CA certificate has CA:TRUE but basicConstraints is not marked critical', `${NEW_CA}; openssl needs basicConstraints=critical,CA:TRUE`));
  } else {
    findings.push(pass('ca.basic-constraints', 'basicConstraints CA:TRUE, critical'));
  }
  findings.push(
    ca.subjectKeyId !== undefined
      ? pass('ca.subject-key-id', `subjectKeyIdentifier ${ca.subjectKeyId}`)
      : fail('ca.subject-key-id', 'the CA certificate has no subjectKeyIdentifier', `${NEW_CA}; openssl needs subjectKeyIdentifier=hash`),
  );
  findings.push(
    ca.keyUsage.includes('keyCertSign')
      ? pass('ca.key-usage', `keyUsage ${ca.keyUsage.join(', ')}`)
      : fail('ca.key-usage', `the CA certificate may not sign certificates (keyUsage lacks keyCertSign${ca.keyUsage.length === 0 ? '; no keyUsage at all' : ''})`, `${NEW_CA}; openssl needs keyUsage=critical,keyCertSign,cRLSign`),
  );
  findings.push(
    advisory(ca.keyUsage.includes('cRLSign'), 'ca.crl-sign', 'keyUsage includes cRLSign', 'keyUsage lacks cRLSign, which the docs set (not required)', 'next time the CA is made, add cRLSign to keyUsage'),
    advisory(ca.keyUsageCritical, 'ca.key-usage-critical', 'keyUsage is critical', 'keyUsage is not marked critical, as the docs set it (not required)', 'next time the CA is made, mark keyUsage critical'),
  );
  findings.push(validityFinding('ca.validity', 'the CA certificate', ca, now, NEW_CA));
  findings.push(keyFinding('ca.key', 'the CA', ca, `${NEW_CA} with an RSA-3072 or ECDSA P-256 key`));
  findings.push(signatureFinding('ca.signature', 'the CA certificate', ca, `${NEW_CA}, signed with SHA-256`));
  return findings;
}

export function checkServerCertificate(server: CertInfo, ca: CertInfo, opts: { domain: string; now: Date; signedByCa: boolean }): Finding[] {
  const findings: Finding[] = [];
  findings.push(
    opts.signedByCa
      ? pass('server.signed-by-ca', `signed by the CA "${ca.subject}"`)
      : fail('server.signed-by-ca', `the server certificate was not signed by the CA "${ca.subject}" (the tunnel accepts no intermediates)`, RENEW_SERVER),
  );
  findings.push(
    sameName(server.issuer, ca.subject)
      ? pass('server.issuer', `issuer "${server.issuer}" is the CA's subject`)
      : fail('server.issuer', `the server certificate's issuer "${server.issuer}" is not the CA's subject "${ca.subject}"`, RENEW_SERVER),
  );
  if (server.authorityKeyId === undefined) {
    findings.push(fail('server.authority-key-id', 'the server certificate has no authorityKeyIdentifier', RENEW_SERVER));
  } else if (ca.subjectKeyId === undefined || server.authorityKeyId !== ca.subjectKeyId) {
    findings.push(fail('server.authority-key-id', `the server certificate's authorityKeyIdentifier ${server.authorityKeyId} is not the CA's subjectKeyIdentifier ${ca.subjectKeyId ?? '(none)'}`, RENEW_SERVER));
  } else {
    findings.push(pass('server.authority-key-id', "authorityKeyIdentifier matches the CA's subjectKeyIdentifier"));
  }
  findings.push(sanFinding(server, opts.domain));
  if (server.extKeyUsage === undefined) {
    findings.push(pass('server.ext-key-usage', 'no extendedKeyUsage (any use allowed)'));
  } else if (server.extKeyUsage.includes('serverAuth')) {
    findings.push(pass('server.ext-key-usage', `extendedKeyUsage ${server.extKeyUsage.join(', ')}`));
  } else {
    findings.push(fail('server.ext-key-usage', `the server certificate's extendedKeyUsage (${server.extKeyUsage.join(', ') || 'empty'}) lacks serverAuth`, RENEW_SERVER));
  }
  findings.push(validityFinding('server.validity', 'the server certificate', server, opts.now, 'run mcp-tunnel renew-cert'));
  findings.push(keyFinding('server.key', 'the server certificate', server, RENEW_SERVER));
  findings.push(signatureFinding('server.signature', 'the server certificate', server, RENEW_SERVER));
  return findings;
}

function sanFinding(server: CertInfo, rawDomain: string): Finding {
  const domain = rawDomain.trim().toLowerCase().replace(/\.$/, '');
  const have = new Set(server.dnsNames.map((n) => n.toLowerCase()));
  const missing = [domain, `*.${domain}`].filter((n) => !have.has(n));
  if (missing.length === 0) return pass('server.san', `covers ${domain} and *.${domain}`);
  const has = server.dnsNames.length === 0 ? 'no DNS names' : server.dnsNames.join(', ');
  return fail(
    'server.san',
    `the server certificate does not cover ${missing.join(' and ')} (it has ${has})`,
    `if ${domain} is the tunnel domain, run mcp-tunnel renew-cert --force; otherwise re-run init with the right --tunnel-domain`,
  );
}

function validityFinding(rule: string, what: string, cert: CertInfo, now: Date, renewHint: string): Finding {
  const t = now.getTime();
  if (t < cert.notBefore.getTime()) {
    return fail(rule, `${what} is not valid until ${iso(cert.notBefore)}`, "check this machine's clock; if it is right, wait or issue the certificate again");
  }
  if (t > cert.notAfter.getTime()) {
    return fail(rule, `${what} expired on ${iso(cert.notAfter)} (${days(t - cert.notAfter.getTime())} ago)`, renewHint);
  }
  return pass(rule, `valid until ${iso(cert.notAfter)} (${days(cert.notAfter.getTime() - t)} left)`);
}

function keyFinding(rule: string, what: string, cert: CertInfo, hint: string): Finding {
  const k = cert.publicKey;
  if (k.type === 'rsa' && k.bits !== undefined) {
    return k.bits >= 2048 ? pass(rule, `RSA ${k.bits}-bit key`) : fail(rule, `${what} has an RSA ${k.bits}-bit key; the tunnel needs at least 2048 bits`, hint);
  }
  if (k.type === 'ec' && k.curve !== undefined && GOOD_CURVES[k.curve] !== undefined) {
    return pass(rule, `ECDSA ${GOOD_CURVES[k.curve]} key`);
  }
  const desc = k.type === 'ec' ? `an ECDSA key on curve ${k.curve ?? 'unknown'}` : k.type === 'rsa' ? 'an RSA key of unknown size' : 'a key that is neither RSA nor ECDSA';
  return fail(rule, `${what} has ${desc}; the tunnel needs RSA >= 2048 or ECDSA P-256/P-384/P-521`, hint);
}

function signatureFinding(rule: string, what: string, cert: CertInfo, hint: string): Finding {
  return GOOD_SIGNATURES.has(cert.signatureAlgorithm)
    ? pass(rule, `signature ${cert.signatureAlgorithm}`)
    : fail(rule, `${what} is signed with ${cert.signatureAlgorithm}; the tunnel needs SHA-256 or stronger (RSA or ECDSA)`, hint);
}

// RFC 2253 strings from the same printer: equal names print equally, modulo case in the values (OpenSSL's
// name comparison ignores case and runs of spaces, so we do too)
function sameName(a: string, b: string): boolean {
  const canon = (s: string): string => s.toLowerCase().replace(/\s+/g, ' ').trim();
  return canon(a) === canon(b);
}

function iso(d: Date): string {
  return d.toISOString().replace(/\.000Z$/, 'Z');
}

function days(ms: number): string {
  const d = Math.floor(ms / 86_400_000);
  if (d >= 1) return `${d} day${d === 1 ? '' : 's'}`;
  const h = Math.floor(ms / 3_600_000);
  return h >= 1 ? `${h} hour${h === 1 ? '' : 's'}` : 'under an hour';
}

function pass(rule: string, message: string): Finding {
  return { rule, ok: true, message };
}

function fail(rule: string, message: string, hint: string): Finding {
  return { rule, ok: false, message, hint };
}

function advisory(ok: boolean, rule: string, okMessage: string, failMessage: string, hint: string): Finding {
  return ok ? { rule, ok, message: okMessage, advisory: true } : { rule, ok, message: failMessage, hint, advisory: true };
}

import fs from 'node:fs/promises';
import type { DeploymentPaths } from '../../deployment/layout.js';
import {
  blockingFailures,
  checkCaCertificate,
  checkServerCertificate,
  countPemCertificates,
  inspectCertificate,
  isRenewalDue,
  keyMatchesCertificate,
  pemContainsPrivateKey,
  verifySignedBy,
  type CertInfo,
  type Finding,
} from '../../pki/index.js';
import { fail, ok, skip, warn, type DoctorFinding } from './types.js';
import { logsCommand } from '../../docker/compose-command.js';


export interface CertificateContext {
  paths: DeploymentPaths;
  /** The tunnel domain the proxy serves (tunnel_domain), when known. */
  domain: string | undefined;
  domainSource: string;
  now: Date;
  /** compose.yaml has the cert-renewer service. */
  renewerScheduled: boolean;
}

type Read = { text: string } | { missing: true } | { error: string };

async function read(file: string): Promise<Read> {
  try {
    return { text: await fs.readFile(file, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { missing: true };
    return { error: code ?? (err as Error).message };
  }
}

const days = (ms: number): string => {
  const d = Math.floor(Math.abs(ms) / 86_400_000);
  return d >= 1 ? `${d} day${d === 1 ? '' : 's'}` : `${Math.floor(Math.abs(ms) / 3_600_000)} hours`;
};

export async function checkCertificates(ctx: CertificateContext): Promise<DoctorFinding[]> {
  const out: DoctorFinding[] = [];
  const [caRead, certRead, keyRead] = await Promise.all([read(ctx.paths.caCert), read(ctx.paths.tlsCert), read(ctx.paths.tlsKey)]);
  const unreadable = (label: string, r: Read): DoctorFinding | undefined => {
    if ('missing' in r) return fail(`files.${label}`, `data/${label} is missing`, label.startsWith('ca') ? 'restore the CA from your backup (a new CA must be registered in the Console): mcp-tunnel init creates one only when both CA files are absent' : 'issue a new pair: mcp-tunnel renew-cert --force');
    if ('error' in r) return fail(`files.${label}`, `data/${label} cannot be read by doctor (${r.error})`, 'run mcp-tunnel doctor as the user who ran init (root if init ran as root)');
    return undefined;
  };
  const problems = [unreadable('ca.crt', caRead), unreadable('tls.crt', certRead), unreadable('tls.key', keyRead)].filter((f): f is DoctorFinding => f !== undefined);
  out.push(...problems);

  let ca: CertInfo | undefined;
  if ('text' in caRead) {
    try {
      ca = inspectCertificate(caRead.text, 'data/ca.crt');
      const failed = blockingFailures(checkCaCertificate(ca, ctx.now, { pemCount: countPemCertificates(caRead.text), containsPrivateKey: pemContainsPrivateKey(caRead.text) }));
      out.push(failed[0] ? fail('ca.valid', `data/ca.crt: ${failed[0].message}`, failed[0].hint ?? '') : ok('ca.valid', `data/ca.crt is a usable CA, valid until ${ca.notAfter.toISOString()}`));
    } catch (err) {
      out.push(fail('ca.valid', `data/ca.crt is not a certificate (${(err as Error).message})`, 'restore the CA certificate registered with the tunnel'));
    }
  }

  if (!('text' in certRead)) {
    for (const id of ['cert.key-match', 'cert.chain', 'cert.san', 'cert.expiry']) out.push(skip(id, 'no readable data/tls.crt'));
    return out;
  }
  let server: CertInfo;
  try {
    server = inspectCertificate(certRead.text, 'data/tls.crt');
  } catch (err) {
    out.push(fail('cert.parse', `data/tls.crt is not a certificate (${(err as Error).message})`, 'issue a new pair: mcp-tunnel renew-cert --force'));
    return out;
  }

  if ('text' in keyRead) {
    let matches = false;
    try {
      matches = keyMatchesCertificate(certRead.text, keyRead.text);
    } catch {
      matches = false;
    }
    out.push(
      matches
        ? ok('cert.key-match', 'data/tls.key belongs to data/tls.crt')
        : fail('cert.key-match', 'data/tls.key does not belong to data/tls.crt: the proxy cannot serve the pair', 'restore the matching pair (data/tls.crt.previous and data/tls.key.previous if renew-cert left them), or issue a new one: mcp-tunnel renew-cert --force'),
    );
  } else {
    out.push(skip('cert.key-match', 'no readable data/tls.key'));
  }

  if (!ca || !('text' in caRead)) {
    out.push(skip('cert.chain', 'no usable data/ca.crt to check the chain against'));
  } else {
    const signedByCa = verifySignedBy(certRead.text, caRead.text);
    const findings = checkServerCertificate(server, ca, { domain: ctx.domain ?? server.dnsNames.find((n) => !n.startsWith('*.')) ?? 'unknown.invalid', now: ctx.now, signedByCa });
    const byRule = (rule: string): Finding | undefined => findings.find((f) => f.rule === rule);
    const chain = ['server.signed-by-ca', 'server.issuer', 'server.authority-key-id'].map(byRule).find((f) => f && !f.ok);
    out.push(
      chain
        ? fail('cert.chain', `${chain.message} (the tunnel checks that the certificate is signed directly by the registered CA, with AKI = the CA's SKI)`, chain.hint ?? 'mcp-tunnel renew-cert --force')
        : ok('cert.chain', "signed directly by data/ca.crt; authorityKeyIdentifier = the CA's subjectKeyIdentifier"),
    );
    const other = ['server.ext-key-usage', 'server.key', 'server.signature'].map(byRule).find((f) => f && !f.ok && !f.advisory);
    if (other) out.push(fail('cert.rules', other.message, other.hint ?? 'mcp-tunnel renew-cert --force'));
  }

  if (ctx.domain === undefined) {
    out.push(skip('cert.san', 'the tunnel domain is unknown (no tunnel_domain in the config, no data/tunnel-domain)', 'set tunnel_domain in config/mcp-proxy.yaml'));
  } else {
    const want = [ctx.domain, `*.${ctx.domain}`];
    const have = new Set(server.dnsNames.map((n) => n.toLowerCase()));
    const missing = want.filter((n) => !have.has(n));
    out.push(
      missing.length === 0
        ? ok('cert.san', `covers ${ctx.domain} and *.${ctx.domain} (${ctx.domainSource})`)
        : fail(
            'cert.san',
            `data/tls.crt does not cover ${missing.join(' and ')} (${ctx.domainSource}); it has ${server.dnsNames.join(', ') || 'no DNS names'}: every TLS handshake through the tunnel fails`,
            `if ${ctx.domain} is right, issue a matching certificate: mcp-tunnel renew-cert --force; otherwise fix tunnel_domain in config/mcp-proxy.yaml`,
          ),
    );
  }

  const left = server.notAfter.getTime() - ctx.now.getTime();
  const renewFix = ctx.renewerScheduled ? `the cert-renewer service should have renewed it: ${logsCommand('cert-renewer')}; renew now with mcp-tunnel renew-cert` : 'mcp-tunnel renew-cert (and schedule it: mcp-tunnel schedule-renewal)';
  if (ctx.now.getTime() < server.notBefore.getTime()) {
    out.push(fail('cert.expiry', `data/tls.crt is not valid before ${server.notBefore.toISOString()}`, "check this host's clock; then mcp-tunnel renew-cert --force"));
  } else if (left < 0) {
    out.push(fail('cert.expiry', `data/tls.crt expired on ${server.notAfter.toISOString()} (${days(left)} ago): the tunnel refuses it`, renewFix));
  } else if (isRenewalDue(server.notAfter, ctx.now)) {
    out.push(warn('cert.expiry', `data/tls.crt expires on ${server.notAfter.toISOString()} (in ${days(left)})`, renewFix));
  } else {
    out.push(
      ok('cert.expiry', `valid until ${server.notAfter.toISOString()} (${days(left)} left)${ctx.renewerScheduled ? '; renewed automatically by cert-renewer' : ''}`),
    );
  }
  return out;
}

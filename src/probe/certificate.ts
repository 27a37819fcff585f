import { blockingFailures, checkServerCertificate, inspectCertificate, verifySignedBy, type Finding } from '../pki/index.js';

export interface CertificateCheck {
  ok: boolean;
  /** Every docs/contract.md §4 server rule, passed or not (advisory ones included, flagged by the pki module). */
  findings: Finding[];
  /** The first blocking failure, if any. */
  failure: Finding | undefined;
  subject: string;
  issuer: string;
  dnsNames: string[];
  notAfter: string;
  fingerprintSha256: string;
}

/**
 * docs/contract.md §4's rules for the certificate the proxy presented, against the CA the user registered: signed
 * DIRECTLY by it (no intermediates), AKI == the CA's SKI, SAN has the domain and *.domain, EKU serverAuth if
 * present, valid now, key and signature strength. Node's chain check in openTunnel is necessary but not
 * sufficient (it accepts intermediates and ignores AKI); this is what the tunnel's backend demands.
 */
export function checkTunnelCertificate(opts: { peerPem: string; caPem: string; domain: string; now?: Date }): CertificateCheck {
  const server = inspectCertificate(opts.peerPem, "the proxy's certificate");
  const ca = inspectCertificate(opts.caPem, 'the CA certificate');
  const findings = checkServerCertificate(server, ca, {
    domain: opts.domain,
    now: opts.now ?? new Date(),
    signedByCa: verifySignedBy(opts.peerPem, opts.caPem),
  });
  const failure = blockingFailures(findings)[0];
  return {
    ok: failure === undefined,
    findings,
    failure,
    subject: server.subject,
    issuer: server.issuer,
    dnsNames: server.dnsNames,
    notAfter: server.notAfter.toISOString(),
    fingerprintSha256: server.fingerprintSha256,
  };
}

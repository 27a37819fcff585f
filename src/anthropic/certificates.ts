import type { BetaTunnelCertificate } from '@anthropic-ai/sdk/resources/beta/tunnels/certificates';
import type { FederationSettings, TunnelsClient } from './client.js';
import type { ApiErrorContext } from './errors.js';
import { call, ensureCertificate, listActiveCertificates, summarizeCertificate, type CertificateAction, type CertificateSummary } from './provision.js';

/*
 * A tunnel's CA certificates through the Tunnels API: read the tunnel, list (archived included on request),
 * register (idempotent, the two-slot cap refused with code CA_SLOTS_FULL) and archive. Calls only; the use
 * cases (ca rotate, tunnel show) live in src/ops.
 */

export interface TunnelsApi {
  client: TunnelsClient;
  /** For messages. */
  apiUrl: string;
  federation?: FederationSettings;
  maxRetries?: number;
  retryBaseDelayMs?: number;
}

export interface TunnelCertificate extends CertificateSummary {
  archivedAt: string | null;
}

export interface TunnelInfo {
  id: string;
  domain: string;
  displayName: string | null;
  createdAt: string;
  archivedAt: string | null;
}

const ctx = (api: TunnelsApi, tunnelId: string): Omit<ApiErrorContext, 'operation'> => ({ apiUrl: api.apiUrl, federation: api.federation, tunnelId, tunnelIdOrigin: 'data/tunnel-id', maxRetries: api.maxRetries });

const withArchived = (c: BetaTunnelCertificate): TunnelCertificate => ({ ...summarizeCertificate(c), archivedAt: c.archived_at });

export async function getTunnel(api: TunnelsApi, tunnelId: string): Promise<TunnelInfo> {
  const t = await call({ ...ctx(api, tunnelId), operation: 'get-tunnel' }, () => api.client.beta.tunnels.retrieve(tunnelId));
  return { id: t.id, domain: t.domain, displayName: t.display_name, createdAt: t.created_at, archivedAt: t.archived_at };
}

/** Every certificate of the tunnel, archived ones too, newest first. */
export async function listAllCertificates(api: TunnelsApi, tunnelId: string): Promise<TunnelCertificate[]> {
  return call({ ...ctx(api, tunnelId), operation: 'list-certificates' }, async () => {
    const out: TunnelCertificate[] = [];
    for await (const c of api.client.beta.tunnels.certificates.list(tunnelId, { limit: 100, include_archived: true })) out.push(withArchived(c));
    return out;
  });
}

export async function listActive(api: TunnelsApi, tunnelId: string): Promise<CertificateSummary[]> {
  return listActiveCertificates(api.client, tunnelId, ctx(api, tunnelId));
}

/** Registers the CA unless the tunnel already trusts it; a lost answer is looked up, never sent twice. */
export async function registerCa(api: TunnelsApi, tunnelId: string, ca: { certPem: string; fingerprint: string }): Promise<{ certificate: CertificateSummary; action: CertificateAction }> {
  const r = await ensureCertificate(api, tunnelId, { pair: { certPem: ca.certPem }, fingerprint: ca.fingerprint }, ctx(api, tunnelId));
  return { certificate: r.certificate, action: r.certificateAction };
}

/** Archiving is idempotent on the API side: an archived certificate answers with itself. */
export async function archiveCertificate(api: TunnelsApi, tunnelId: string, certificateId: string): Promise<TunnelCertificate> {
  const c = await call({ ...ctx(api, tunnelId), operation: 'archive-certificate' }, () => api.client.beta.tunnels.certificates.archive(certificateId, { tunnel_id: tunnelId }));
  return withArchived(c);
}

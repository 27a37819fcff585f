import { APIConnectionError, APIError, ConflictError } from '@anthropic-ai/sdk';
import type { BetaTunnel, BetaTunnelToken } from '@anthropic-ai/sdk/resources/beta/tunnels/tunnels';
import type { BetaTunnelCertificate } from '@anthropic-ai/sdk/resources/beta/tunnels/certificates';
import { readTextIfExists } from '../deployment/atomic-file.js';
import { resolveCa, type CaResolution } from '../deployment/credentials.js';
import { applyChanges, classifyFiles, type PlannedFile } from '../deployment/file-plan.js';
import type { DeploymentPaths } from '../deployment/layout.js';
import { tunnelTokenProblem, validateTunnelId } from '../deployment/validate.js';
import { EnvironmentError, ExitCode, isUserError, UserError, ValidationError } from '../errors.js';
import { DEFAULT_MAX_RETRIES, type FederationSettings, type TunnelsClient } from './client.js';
import { explainApiError, type ApiErrorContext, type ApiOperation } from './errors.js';

/**
 * The setup component's semantics (docs/contract.md §4 point 4), over a deployment directory:
 *
 * - data/ is the memory. The tunnel ID in data/tunnel-id is reused: a tunnel is created only when
 *   neither --tunnel-id nor data/tunnel-id names one, and never a second time.
 * - The CA in data/ is reused (deployment/credentials.ts resolveCa); it is registered on the tunnel only
 *   when its fingerprint is not among the tunnel's active certificates, and never past the cap of two.
 * - The token is revealed (the current one; reveal does not rotate).
 *
 * Order, so that an interruption anywhere leaves a state the re-run completes without a second tunnel
 * or a second registration: data/tunnel-id is written as soon as the tunnel exists; the CA is on disk
 * before it is registered; the registration is found again by fingerprint. The caller writes the rest
 * (token, .env, certificates, compose.yaml) with the same planInit/applyInit as the manual flow.
 */

export interface TunnelSummary {
  id: string;
  domain: string;
  displayName: string | null;
  createdAt: string;
}

export interface CertificateSummary {
  id: string;
  fingerprint: string;
  expiresAt: string | null;
  createdAt: string;
}

export type TunnelAction = 'created' | 'adopted' | 'attached' | 'reused';
export type CertificateAction = 'registered' | 'already-registered';

export type ProvisionEvent =
  | { type: 'tunnel'; action: TunnelAction; tunnel: TunnelSummary }
  | { type: 'ca'; action: 'created' | 'reused'; fingerprint: string }
  | { type: 'certificate'; action: CertificateAction; certificate: CertificateSummary; others: CertificateSummary[] }
  | { type: 'token'; tokenId: string };

export interface ProvisionOptions {
  client: TunnelsClient;
  paths: DeploymentPaths;
  /** For messages. */
  apiUrl: string;
  federation?: FederationSettings;
  /** --tunnel-id: attach to this tunnel. Without it, data/tunnel-id; without that, a new tunnel. */
  tunnelId?: string;
  /** A --tunnel-id that differs from data/tunnel-id is refused unless this is set (--force, or a yes). */
  allowTunnelChange?: boolean;
  /** display_name of a new tunnel; also how a create whose answer was lost is found again. */
  displayName: string;
  now: Date;
  /** Mode of data/ when it has to be made (deployment/ownership.ts). */
  dataDirMode: number;
  /** Retries of an ambiguous create (see createTunnel); the other calls use the client's. */
  maxRetries?: number;
  retryBaseDelayMs?: number;
  onProgress?: (event: ProvisionEvent) => void;
}

export interface ProvisionResult {
  tunnel: TunnelSummary & { action: TunnelAction };
  ca: { fingerprint: string; created: boolean };
  certificate: CertificateSummary & { action: CertificateAction };
  /** The tunnel's active CA certificates after the run. */
  certificates: CertificateSummary[];
  token: { id: string; value: string };
}

export const MAX_ACTIVE_CERTIFICATES = 2;
/** How far back a tunnel may have been created (server clock) to count as "ours" after a lost answer. */
const ADOPT_WINDOW_MS = 120_000;

const summarizeTunnel = (t: BetaTunnel): TunnelSummary => ({ id: t.id, domain: t.domain, displayName: t.display_name, createdAt: t.created_at });
export const summarizeCertificate = (c: BetaTunnelCertificate): CertificateSummary => ({
  id: c.id,
  fingerprint: c.fingerprint.toLowerCase().replace(/:/g, ''),
  expiresAt: c.expires_at,
  createdAt: c.created_at,
});

/** "tcrt_1 (fingerprint ab12…, expires 2035-01-01)": for the cap message. */
export function describeCertificates(certs: CertificateSummary[]): string {
  return certs
    .map((c) => `${c.id} (fingerprint ${c.fingerprint}, ${c.expiresAt ? `expires ${c.expiresAt.slice(0, 10)}` : 'no expiry'})`)
    .join(', ');
}

export async function readStoredTunnelId(paths: DeploymentPaths): Promise<string | undefined> {
  const text = await readTextIfExists(paths.tunnelId);
  const first = text?.split('\n')[0]?.trim();
  if (!first) return undefined;
  try {
    return validateTunnelId(first);
  } catch {
    throw new ValidationError(`data/tunnel-id holds "${first.slice(0, 40)}", which is not a tunnel ID (tnl_...)`, 'fix or remove data/tunnel-id, or pass --tunnel-id', 'TUNNEL_ID_INVALID');
  }
}

export async function provisionTunnel(options: ProvisionOptions): Promise<ProvisionResult> {
  const { client, paths } = options;
  const emit = options.onProgress ?? (() => undefined);
  const base: Omit<ApiErrorContext, 'operation'> = { apiUrl: options.apiUrl, federation: options.federation, maxRetries: options.maxRetries ?? DEFAULT_MAX_RETRIES };

  // Everything local first: a bad data/ fails before any request.
  const stored = await readStoredTunnelId(paths);
  const requested = options.tunnelId === undefined ? undefined : validateTunnelId(options.tunnelId);
  if (requested && stored && requested !== stored && !options.allowTunnelChange) {
    throw new ValidationError(
      `--tunnel-id ${requested} differs from ${stored} in data/tunnel-id`,
      `pass --force to move this deployment to ${requested} (the CA is kept and registered there), or use --dir for a separate deployment`,
      'TUNNEL_ID_CONFLICT',
    );
  }
  const ca = await resolveCa(paths, options.now);

  // 1. The tunnel: attach, reuse or create; its ID is on disk before anything else happens.
  const target = requested ?? stored;
  let tunnel: BetaTunnel;
  let action: TunnelAction;
  if (target) {
    const ctx: ApiErrorContext = { ...base, operation: 'get-tunnel', tunnelId: target, tunnelIdOrigin: requested ? '--tunnel-id' : 'data/tunnel-id' };
    tunnel = await call(ctx, () => client.beta.tunnels.retrieve(target));
    if (tunnel.archived_at) {
      throw new EnvironmentError(
        `tunnel ${target} is archived (since ${tunnel.archived_at}) and cannot be used again`,
        requested
          ? 'pass the ID of an active tunnel, or leave --tunnel-id out to create a new one'
          : 'move data/tunnel-id away to create a new tunnel (the CA is kept and registered on it), or pass --tunnel-id of an active tunnel',
          undefined, 'TUNNEL_ARCHIVED',
      );
    }
    action = requested && requested !== stored ? 'attached' : 'reused';
  } else {
    ({ tunnel, action } = await createTunnel(options, base));
  }
  await writeData(options, [
    { path: paths.tunnelId, content: `${tunnel.id}\n` },
    { path: paths.tunnelDomain, content: `${tunnel.domain}\n` },
  ]);
  emit({ type: 'tunnel', action, tunnel: summarizeTunnel(tunnel) });

  // 2. The CA is on disk before it is registered: a CA registered but lost locally would cost a slot.
  if (!ca.reused) await writeCa(options, ca);
  emit({ type: 'ca', action: ca.reused ? 'reused' : 'created', fingerprint: ca.fingerprint });

  // 3. Register it unless the tunnel already trusts it.
  const certCtx = { ...base, tunnelId: tunnel.id };
  const { certificate, certificateAction, active } = await ensureCertificate(options, tunnel.id, ca, certCtx);
  emit({ type: 'certificate', action: certificateAction, certificate, others: active.filter((c) => c.id !== certificate.id) });

  // 4. The current token (reveal does not rotate it).
  const token: BetaTunnelToken = await call({ ...certCtx, operation: 'reveal-token' }, () => client.beta.tunnels.revealToken(tunnel.id));
  const value = checkApiToken(token.tunnel_token, 'reveal_token');
  emit({ type: 'token', tokenId: token.id });

  return {
    tunnel: { ...summarizeTunnel(tunnel), action },
    ca: { fingerprint: ca.fingerprint, created: !ca.reused },
    certificate: { ...certificate, action: certificateAction },
    certificates: active,
    token: { id: token.id, value },
  };
}

/** A token from the API must look like one before it goes anywhere near .env. */
export function checkApiToken(raw: string, operation: string): string {
  const why = tunnelTokenProblem(raw);
  if (why !== undefined) {
    throw new EnvironmentError(
      `the Tunnels API's ${operation} answer holds a tunnel token that does not look like one (it ${why})`,
      'check --api-url: it must be the Anthropic API',
      undefined,
      'API_TOKEN_MALFORMED',
    );
  }
  return raw.trim();
}

export async function call<T>(ctx: ApiErrorContext, fn: () => PromiseLike<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw explainApiError(err, ctx);
  }
}

async function writeData(options: ProvisionOptions, files: Array<{ path: string; content: string; mode?: number }>): Promise<void> {
  const planned: PlannedFile[] = files.map((f) => ({
    path: f.path,
    label: f.path.slice(options.paths.dir.length + 1),
    content: f.content,
    mode: f.mode ?? 0o644,
  }));
  await applyChanges([{ path: options.paths.dir, mode: 0o755 }, { path: options.paths.dataDir, mode: options.dataDirMode }], await classifyFiles(planned));
}

async function writeCa(options: ProvisionOptions, ca: CaResolution): Promise<void> {
  // Same files, modes and order as planInit: key first, so a cert never exists without its key.
  await writeData(options, [
    { path: options.paths.caKey, content: ca.pair.keyPem, mode: 0o600 },
    { path: options.paths.caCert, content: ca.pair.certPem, mode: 0o644 },
  ]);
}

/**
 * POST /v1/tunnels and POST .../certificates change state, so the SDK's automatic retry is off for them
 * and this loop retries instead. A refusal (429) is simply retried. When the answer is lost (5xx,
 * timeout, broken connection) the request may have taken effect all the same: `recover` looks for its
 * result first, and only when there is none is the request sent again.
 */
async function sendOnce<T>(
  options: Pick<ProvisionOptions, 'maxRetries' | 'retryBaseDelayMs'>,
  attempt: () => Promise<T>,
  recover: (startedAt: number) => Promise<T | undefined>,
  explain: (err: unknown) => unknown,
): Promise<{ value: T; recovered: boolean }> {
  const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
  for (let n = 0; ; n++) {
    const startedAt = Date.now();
    try {
      return { value: await attempt(), recovered: false };
    } catch (err) {
      const status = err instanceof APIError ? err.status : undefined;
      const lost = err instanceof APIConnectionError || status === 408 || (typeof status === 'number' && status >= 500);
      if (!lost && status !== 429) throw explain(err);
      if (lost) {
        let found: T | undefined;
        try {
          found = await recover(startedAt);
        } catch (recoverErr) {
          throw new UserError(
            `${(explain(err) as Error).message}; whether the request took effect could not be checked (${(explain(recoverErr) as Error).message})`,
            { hint: 'check the tunnel in the Console before re-running', exitCode: ExitCode.environment, code: 'API_OUTCOME_UNKNOWN' },
          );
        }
        if (found !== undefined) return { value: found, recovered: true };
      }
      if (n >= maxRetries) throw explain(err);
      await sleep(backoffMs(n, options.retryBaseDelayMs));
    }
  }
}

async function createTunnel(options: ProvisionOptions, base: Omit<ApiErrorContext, 'operation'>): Promise<{ tunnel: BetaTunnel; action: TunnelAction }> {
  const { client, displayName } = options;
  const ctx: ApiErrorContext = { ...base, operation: 'create-tunnel' };
  try {
    const { value, recovered } = await sendOnce(
      options,
      () => client.beta.tunnels.create({ display_name: displayName }, { maxRetries: 0 }),
      (startedAt) => findCreatedSince(options, startedAt - ADOPT_WINDOW_MS),
      (err) => explainApiError(err, ctx),
    );
    return { tunnel: value, action: recovered ? 'adopted' : 'created' };
  } catch (err) {
    if (isUserError(err) && err.code === 'API_OUTCOME_UNKNOWN') {
      throw new UserError(err.message, { exitCode: err.exitCode, code: err.code, hint: `look in the Console for a tunnel named "${displayName}" created just now: pass its ID with --tunnel-id (or archive it), then re-run` });
    }
    throw err;
  }
}

/** A tunnel with our display name created since `sinceMs` (server clock); the list is newest first. */
async function findCreatedSince(options: ProvisionOptions, sinceMs: number): Promise<BetaTunnel | undefined> {
  for await (const t of options.client.beta.tunnels.list({ limit: 20 })) {
    if (Date.parse(t.created_at) < sinceMs) break;
    if (t.display_name === options.displayName && !t.archived_at) return t;
  }
  return undefined;
}

export async function listActiveCertificates(client: TunnelsClient, tunnelId: string, ctx: Omit<ApiErrorContext, 'operation'>): Promise<CertificateSummary[]> {
  return call({ ...ctx, operation: 'list-certificates' }, async () => {
    const out: CertificateSummary[] = [];
    for await (const c of client.beta.tunnels.certificates.list(tunnelId, { limit: 100 })) {
      if (!c.archived_at) out.push(summarizeCertificate(c));
    }
    return out;
  });
}

export function capError(tunnelId: string, active: CertificateSummary[], fingerprint: string, label = 'data/ca.crt'): UserError {
  return new UserError(
    `tunnel ${tunnelId} already has ${active.length} active CA certificates, the most it can hold, and ${label} (fingerprint ${fingerprint}) is not one of them: ${describeCertificates(active)}`,
    {
      hint: 'archive the one you no longer use (Console, or POST /v1/tunnels/{id}/certificates/{cid}/archive) and re-run; or restore the data/ca.crt and data/ca.key that match a registered one',
      code: 'CA_SLOTS_FULL',
      exitCode: ExitCode.environment,
    },
  );
}

export async function ensureCertificate(
  options: Pick<ProvisionOptions, 'client' | 'maxRetries' | 'retryBaseDelayMs'>,
  tunnelId: string,
  ca: { pair: { certPem: string }; fingerprint: string },
  ctx: Omit<ApiErrorContext, 'operation'>,
): Promise<{ certificate: CertificateSummary; certificateAction: CertificateAction; active: CertificateSummary[] }> {
  const { client } = options;
  const fingerprint = ca.fingerprint.toLowerCase();
  const active = await listActiveCertificates(client, tunnelId, ctx);
  const mine = active.find((c) => c.fingerprint === fingerprint);
  if (mine) return { certificate: mine, certificateAction: 'already-registered', active };
  if (active.length >= MAX_ACTIVE_CERTIFICATES) throw capError(tunnelId, active, fingerprint);

  const registerCtx: ApiErrorContext = { ...ctx, operation: 'register-certificate' };
  const lookAgain = async (): Promise<{ found?: CertificateSummary; now: CertificateSummary[] }> => {
    const now = await listActiveCertificates(client, tunnelId, ctx);
    return { found: now.find((c) => c.fingerprint === fingerprint), now };
  };
  try {
    const { value } = await sendOnce(
      options,
      async () => summarizeCertificate(await client.beta.tunnels.certificates.create(tunnelId, { ca_certificate_pem: ca.pair.certPem }, { maxRetries: 0 })),
      async () => (await lookAgain()).found,
      (err) => (err instanceof ConflictError ? err : explainApiError(err, registerCtx)),
    );
    const others = active.filter((c) => c.id !== value.id);
    return { certificate: value, certificateAction: 'registered', active: [...others, value] };
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
    // Registered meanwhile (by another host sharing data/, or a lost answer), or the cap was reached.
    const { found, now } = await lookAgain();
    if (found) return { certificate: found, certificateAction: 'already-registered', active: now };
    if (now.length >= MAX_ACTIVE_CERTIFICATES) throw capError(tunnelId, now, fingerprint);
    throw explainApiError(err, registerCtx);
  }
}

function backoffMs(attempt: number, baseDelayMs = 500): number {
  return Math.min(baseDelayMs * 2 ** attempt, Math.max(baseDelayMs, 8_000)) * (1 - Math.random() * 0.25);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export type { ApiOperation };

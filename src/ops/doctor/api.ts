import { createTunnelsClient, defaultApiUrl, fileSource, commandSource, type IdentityTokenSource } from '../../anthropic/index.js';
import { readWifSettings } from '../../anthropic/settings.js';
import { inspectCertificate } from '../../pki/index.js';
import { UserError } from '../../errors.js';
import { fail, ok, skip, warn, type DoctorFinding } from './types.js';
import { connectTcp } from './upstreams.js';

/**
 * The programmatic flow's own dependencies: the Anthropic API must be reachable from this host (token
 * exchange, rotate-token, renewals of the registration), and data/ca.crt must be one of the tunnel's
 * active CA certificates, or Anthropic's side refuses every inner TLS handshake ("unknown certificate
 * authority"). The manual flow has neither: its CA is registered in the Console by hand.
 */
export interface ApiCheckContext {
  envText: string | undefined;
  tunnelId: string | undefined;
  caPem: string | undefined;
  timeoutMs: number;
  offline: boolean;
  processEnv: NodeJS.ProcessEnv;
}

export async function checkApi(ctx: ApiCheckContext): Promise<DoctorFinding[]> {
  const wif = readWifSettings(ctx.envText);
  if (wif.flow !== 'wif') return [];
  const apiUrl = wif.apiUrl ?? defaultApiUrl(ctx.processEnv);
  if (ctx.offline) return [skip('api.reachable', `${apiUrl}: not checked (--offline)`), skip('api.ca-registered', 'not checked (--offline)')];
  const url = new URL(apiUrl);
  const port = Number(url.port || (url.protocol === 'http:' ? 80 : 443));
  const tcp = await connectTcp(url.hostname, port, ctx.timeoutMs);
  if (!tcp.ok) {
    return [
      fail('api.reachable', `${url.hostname}:${port} is not reachable from this host (${tcp.reason}): token exchange, rotate-token and CA registration fail`, `allow outbound HTTPS to ${url.hostname} (port ${port}) from this host`),
      skip('api.ca-registered', 'not checked: the API is not reachable'),
    ];
  }
  const out: DoctorFinding[] = [ok('api.reachable', `${url.hostname}:${port} answers (TCP connect in ${tcp.ms} ms)`)];

  const identity: IdentityTokenSource | undefined = ctx.processEnv.ANTHROPIC_IDENTITY_TOKEN
    ? { kind: 'value', value: ctx.processEnv.ANTHROPIC_IDENTITY_TOKEN, origin: 'ANTHROPIC_IDENTITY_TOKEN' }
    : wif.identityTokenFile
      ? fileSource(wif.identityTokenFile, 'ANTHROPIC_IDENTITY_TOKEN_FILE in .env')
      : wif.identityTokenCommand
        ? commandSource(wif.identityTokenCommand, 'the identity token command in .env')
        : undefined;
  if (!wif.federationRuleId || !wif.organizationId || !identity || !ctx.tunnelId || !ctx.caPem) {
    out.push(skip('api.ca-registered', 'not checked: the federation settings, the identity token source, data/tunnel-id or data/ca.crt is missing', 'mcp-tunnel init --flow wif writes them'));
    return out;
  }
  let fingerprint: string;
  try {
    fingerprint = inspectCertificate(ctx.caPem, 'data/ca.crt').fingerprintSha256;
  } catch {
    out.push(skip('api.ca-registered', 'data/ca.crt does not parse (see the certificate checks)'));
    return out;
  }
  try {
    const client = createTunnelsClient({
      apiUrl,
      identityToken: identity,
      federationRuleId: wif.federationRuleId,
      organizationId: wif.organizationId,
      workspaceId: wif.workspaceId,
      maxRetries: 0,
      timeoutMs: Math.max(ctx.timeoutMs, 5_000),
    });
    const active: string[] = [];
    for await (const c of client.beta.tunnels.certificates.list(ctx.tunnelId, { limit: 100 })) if (!c.archived_at) active.push(c.fingerprint.toLowerCase());
    if (active.includes(fingerprint)) out.push(ok('api.ca-registered', `data/ca.crt (${fingerprint.slice(0, 16)}...) is an active CA certificate of ${ctx.tunnelId}`));
    else {
      out.push(
        fail(
          'api.ca-registered',
          `data/ca.crt (${fingerprint.slice(0, 16)}...) is not among the ${active.length} active CA certificates of ${ctx.tunnelId}: Anthropic's side refuses the proxy's certificate`,
          'register it: mcp-tunnel init --flow wif (reuses the CA and registers it), or restore the data/ca.* that is registered',
        ),
      );
    }
  } catch (err) {
    const message = err instanceof UserError ? err.message : err instanceof Error ? err.message.split('\n')[0] : String(err);
    out.push(warn('api.ca-registered', `could not list the tunnel's CA certificates: ${message}`, 'check the federation settings in .env (mcp-tunnel rotate-token uses the same)'));
  }
  return out;
}

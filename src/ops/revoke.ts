import { APIError, APIConnectionError } from '@anthropic-ai/sdk';
import { WorkloadIdentityError } from '@anthropic-ai/sdk/lib/credentials/types';
import type { FederationSettings, TunnelsClient } from '../anthropic/client.js';
import { explainApiError } from '../anthropic/errors.js';
import { readWifSettings, type CredentialFlow, type StoredWifSettings } from '../anthropic/settings.js';
import { readTextIfExists } from '../deployment/atomic-file.js';
import { deploymentPaths, type DeploymentPaths } from '../deployment/layout.js';
import { EnvironmentError, ValidationError } from '../errors.js';
import { detectComposeCommand } from '../docker/compose-command.js';

/**
 * Breach response (docs/contract.md §5): stop the stack at once (`mcp-tunnel down --timeout 0`), archive the tunnel
 * (the Tunnels API in the programmatic flow, the Console in the manual one), rotate the downstream
 * credentials, review the logs; teardown deletes data/. Archiving is irreversible: the hostname is
 * retired, the tunnel's CA certificates are archived with it and the token stops working.
 */
export interface RevokeContext {
  paths: DeploymentPaths;
  flow: CredentialFlow;
  tunnelId?: string;
  domain?: string;
  wif: StoredWifSettings;
}

const firstLine = (t: string | undefined): string | undefined => t?.split('\n')[0]?.trim() || undefined;

export async function readRevokeContext(dir: string): Promise<RevokeContext> {
  const paths = deploymentPaths(dir);
  const [envText, tunnelId, domain] = await Promise.all([readTextIfExists(paths.env), readTextIfExists(paths.tunnelId), readTextIfExists(paths.tunnelDomain)]);
  if (envText === undefined && tunnelId === undefined) {
    throw new ValidationError(`${paths.dir} is not a deployment (no .env, no data/tunnel-id)`, 'pass --dir to the deployment directory', 'DEPLOYMENT_NOT_FOUND');
  }
  const wif = readWifSettings(envText);
  return { paths, flow: wif.flow ?? 'manual', tunnelId: firstLine(tunnelId), domain: firstLine(domain), wif };
}

/** The confirmation: what the user typed (or passed with --tunnel-id) must be the deployment's tunnel ID. */
export function checkConfirmation(expected: string, typed: string | undefined): void {
  if (typed === undefined || typed.trim() !== expected) {
    throw new ValidationError(
      typed === undefined ? `archiving tunnel ${expected} needs a confirmation` : `"${typed.trim()}" is not this deployment's tunnel (${expected}); nothing was archived`,
      `type the tunnel ID when asked, or pass --yes --tunnel-id ${expected}`,
      'REVOKE_NOT_CONFIRMED',
    );
  }
}

export function stopStep(dir: string): string {
  const compose = detectComposeCommand();
  return `Stop the stack now (drops every tunnel connection at once; the containers' logs are saved to ${dir}/logs/ first): mcp-tunnel down --dir ${dir} --timeout 0${compose ? `   (or: ${compose} down --timeout 0, which keeps no logs)` : ''}`;
}

/** The docs' step two: Claude must stop calling the servers, whatever happens to the tunnel. */
export function detachStep(): string {
  return "Detach the servers from Claude: remove this tunnel's URLs from your Managed Agents (agents and sessions) and stop passing them in mcp_servers of Messages API calls.";
}

/** What to click in the Console (manual flow). */
export function consoleArchiveSteps(ctx: Pick<RevokeContext, 'tunnelId' | 'domain'>): string[] {
  const which = ctx.tunnelId ? `${ctx.tunnelId}${ctx.domain ? ` (${ctx.domain})` : ''}` : 'this deployment\'s tunnel (its ID is in data/tunnel-id)';
  return [
    `Archive the tunnel in the Claude Console: MCP tunnels -> open ${which} -> Archive -> confirm.`,
    'Archiving is irreversible: the hostname is retired, the tunnel\'s CA certificates are archived with it and the tunnel token stops working.',
  ];
}

/** After the archive, whatever the flow (the security page's breach playbook, steps four to six, then teardown). */
export function remainingSteps(dir: string): string[] {
  return [
    'Contact Anthropic support: say which tunnel, when it happened and what you saw.',
    'Rotate the credentials your MCP servers accept (OAuth clients, API keys, service tokens): assume whoever held the tunnel could call them.',
    `Review the logs for the window before restoring service: the proxy's and cloudflared's, saved by mcp-tunnel down in ${dir}/logs/ (each "request started" line names the host and path), and your MCP servers' own logs.`,
    `Tear down: mcp-tunnel teardown --dir ${dir} (stops the stack, keeps the logs, deletes data/ and .env: the CA key and the tunnel token); re-run mcp-tunnel init with a new tunnel to start again.`,
  ];
}

export interface ArchiveResult {
  tunnelId: string;
  domain?: string;
  archivedAt: string;
  alreadyArchived: boolean;
}

function explainArchive(err: unknown, tunnelId: string, apiUrl: string, federation?: FederationSettings): unknown {
  if (err instanceof WorkloadIdentityError || err instanceof APIConnectionError) return explainApiError(err, { operation: 'exchange', apiUrl, federation, tunnelId });
  if (err instanceof APIError) {
    const status = err.status;
    if (status === 404) return new EnvironmentError(`tunnel ${tunnelId} was not found by the Tunnels API (HTTP 404)`, 'it may live in another workspace (ANTHROPIC_WORKSPACE_ID in .env) or organization; archive it in the Console instead', undefined, 'TUNNEL_NOT_FOUND');
    if (status === 403) return new EnvironmentError(`the Tunnels API refused to archive ${tunnelId} (HTTP 403)`, 'the federation rule needs the scope workspace:manage_tunnels and the tunnel\'s workspace; or archive it in the Console', undefined, 'API_FORBIDDEN');
    return new EnvironmentError(`archiving ${tunnelId} failed: HTTP ${status} ${err.message}`, 'retry, or archive it in the Console (tunnel -> Archive)', undefined, 'API_REQUEST_FAILED');
  }
  return err;
}

/** GET the tunnel (to report an earlier archive), then POST /v1/tunnels/{id}/archive. */
export async function archiveTunnel(client: TunnelsClient, tunnelId: string, ctx: { apiUrl: string; federation?: FederationSettings }): Promise<ArchiveResult> {
  let current;
  try {
    current = await client.beta.tunnels.retrieve(tunnelId);
  } catch (err) {
    throw explainArchive(err, tunnelId, ctx.apiUrl, ctx.federation);
  }
  if (current.archived_at) return { tunnelId, domain: current.domain, archivedAt: current.archived_at, alreadyArchived: true };
  try {
    const archived = await client.beta.tunnels.archive(tunnelId);
    return { tunnelId, domain: archived.domain, archivedAt: archived.archived_at ?? new Date().toISOString(), alreadyArchived: false };
  } catch (err) {
    throw explainArchive(err, tunnelId, ctx.apiUrl, ctx.federation);
  }
}

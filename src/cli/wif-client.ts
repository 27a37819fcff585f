import {
  checkFileSource,
  createTunnelsClient,
  defaultApiUrl,
  readWifSettings,
  validateApiUrl,
  validateFederationRuleId,
  validateOrganizationId,
  validateWorkspaceId,
  type TunnelsApi,
} from '../anthropic/index.js';
import { Option, type Command } from 'commander';
import { ValidationError } from '../errors.js';
import { apiTuning, resolveIdentitySource } from './commands/init-wif.js';

/** The identity/API flags every programmatic-flow command after init takes (rotate-token, ca rotate, tunnel show). */
export interface WifClientFlags {
  identityTokenFile?: string;
  identityTokenCommand?: string;
  apiUrl?: string;
}

/** Adds the WifClientFlags to a command, each with its environment twin. */
export function addWifClientOptions(command: Command): Command {
  return command
    .addOption(new Option('--identity-token-file <file>', 'wif: override the identity token file stored in .env').env('ANTHROPIC_IDENTITY_TOKEN_FILE'))
    .addOption(new Option('--identity-token-command <cmd>', 'wif: override the identity token command stored in .env').env('MCP_TUNNEL_IDENTITY_TOKEN_COMMAND'))
    .addOption(new Option('--api-url <url>', 'wif: override the API base URL stored in .env').env('MCP_TUNNEL_API_URL'));
}

/**
 * A Tunnels API client from the federation settings init stored in .env, the flags overriding the identity
 * token source and the API URL. Fails with a hint naming the flag or the re-init when something is missing.
 */
export async function tunnelsApiFromDeployment(flags: WifClientFlags, envText: string | undefined, dir: string): Promise<TunnelsApi> {
  const stored = readWifSettings(envText);
  const apiUrl = validateApiUrl(flags.apiUrl || stored.apiUrl || defaultApiUrl());
  const reinit = `re-run mcp-tunnel init --flow wif --dir ${dir} with the federation flags`;
  if (!stored.federationRuleId) throw new ValidationError('.env has no ANTHROPIC_FEDERATION_RULE_ID', reinit, 'WIF_SETTINGS_MISSING');
  if (!stored.organizationId) throw new ValidationError('.env has no ANTHROPIC_ORGANIZATION_ID', reinit, 'WIF_SETTINGS_MISSING');
  const federation = {
    federationRuleId: validateFederationRuleId(stored.federationRuleId),
    organizationId: validateOrganizationId(stored.organizationId),
    workspaceId: stored.workspaceId ? validateWorkspaceId(stored.workspaceId) : undefined,
  };
  const identity = resolveIdentitySource(flags, stored);
  if (!identity) {
    throw new ValidationError(
      'no identity token source: .env has neither ANTHROPIC_IDENTITY_TOKEN_FILE nor MCP_TUNNEL_IDENTITY_TOKEN_COMMAND',
      'pass --identity-token-file FILE or --identity-token-command CMD, or set ANTHROPIC_IDENTITY_TOKEN',
      'IDENTITY_TOKEN_SOURCE_MISSING',
    );
  }
  await checkFileSource(identity);
  const tuning = apiTuning();
  const client = createTunnelsClient({ ...federation, apiUrl, identityToken: identity, ...tuning });
  return { client, apiUrl, federation, ...tuning };
}

import { parseEnvFile, updateEnvFile, type EnvEntry } from '../deployment/env-file.js';
import { DEFAULT_API_URL } from './ids.js';

/**
 * Where a deployment keeps its programmatic-flow settings: in its .env, beside TUNNEL_TOKEN, under the
 * names the SDK and Anthropic's setup component use (docs/contract.md §4), plus two of ours. So `init --flow wif`
 * again and `rotate-token` need no flags, `docker compose` ignores them (compose.yaml does not read
 * them), and `set -a; . ./.env` gives the SDK's own credential chain the same settings.
 *
 * The identity token itself is never stored: only where to get it (a file path or a command).
 */
export const WIF_ENV_KEYS = {
  flow: 'MCP_TUNNEL_FLOW',
  apiUrl: 'MCP_TUNNEL_API_URL',
  federationRuleId: 'ANTHROPIC_FEDERATION_RULE_ID',
  organizationId: 'ANTHROPIC_ORGANIZATION_ID',
  workspaceId: 'ANTHROPIC_WORKSPACE_ID',
  identityTokenFile: 'ANTHROPIC_IDENTITY_TOKEN_FILE',
  identityTokenCommand: 'MCP_TUNNEL_IDENTITY_TOKEN_COMMAND',
} as const;

export type CredentialFlow = 'manual' | 'wif';

export interface StoredWifSettings {
  flow?: CredentialFlow;
  apiUrl?: string;
  federationRuleId?: string;
  organizationId?: string;
  workspaceId?: string;
  identityTokenFile?: string;
  identityTokenCommand?: string;
}

export function readWifSettings(envText: string | undefined): StoredWifSettings {
  if (envText === undefined) return {};
  const env = parseEnvFile(envText);
  const get = (key: string): string | undefined => (env[key]?.trim() ? env[key]!.trim() : undefined);
  const flow = get(WIF_ENV_KEYS.flow);
  return {
    flow: flow === 'wif' || flow === 'manual' ? flow : undefined,
    apiUrl: get(WIF_ENV_KEYS.apiUrl),
    federationRuleId: get(WIF_ENV_KEYS.federationRuleId),
    organizationId: get(WIF_ENV_KEYS.organizationId),
    workspaceId: get(WIF_ENV_KEYS.workspaceId),
    identityTokenFile: get(WIF_ENV_KEYS.identityTokenFile),
    identityTokenCommand: get(WIF_ENV_KEYS.identityTokenCommand),
  };
}

export interface WifSettingsToStore {
  apiUrl: string;
  federationRuleId: string;
  organizationId: string;
  workspaceId?: string;
  /** Exactly one, or neither when the token came from ANTHROPIC_IDENTITY_TOKEN (then the stored source is kept). */
  identityTokenFile?: string;
  identityTokenCommand?: string;
}

/** Lines without a value for `keys` (first-class removal; updateEnvFile only sets). */
export function removeEnvKeys(text: string, keys: readonly string[]): string {
  if (keys.length === 0) return text;
  const pattern = new RegExp(`^\\s*(export\\s+)?(${keys.join('|')})\\s*=`);
  const kept = text.split('\n').filter((line) => !pattern.test(line));
  return kept.join('\n');
}

/** `existing` .env text with the WIF settings set (and a replaced identity source removed). */
export function withWifSettings(existing: string | undefined, s: WifSettingsToStore): string {
  let text = existing;
  const drop: string[] = [];
  if (!s.workspaceId) drop.push(WIF_ENV_KEYS.workspaceId);
  if (s.identityTokenFile) drop.push(WIF_ENV_KEYS.identityTokenCommand);
  if (s.identityTokenCommand) drop.push(WIF_ENV_KEYS.identityTokenFile);
  // The caller merges the stored settings with the flags first, so an absent value here means "none".
  if (text !== undefined && drop.length) text = removeEnvKeys(text, drop);
  const entries: EnvEntry[] = [
    {
      key: WIF_ENV_KEYS.flow,
      value: 'wif',
      comment: 'Programmatic flow (Workload Identity Federation): `mcp-tunnel init` and `rotate-token` read these; docker compose ignores them.',
    },
    { key: WIF_ENV_KEYS.apiUrl, value: s.apiUrl || DEFAULT_API_URL },
    { key: WIF_ENV_KEYS.federationRuleId, value: s.federationRuleId },
    { key: WIF_ENV_KEYS.organizationId, value: s.organizationId },
  ];
  if (s.workspaceId) entries.push({ key: WIF_ENV_KEYS.workspaceId, value: s.workspaceId });
  if (s.identityTokenFile) entries.push({ key: WIF_ENV_KEYS.identityTokenFile, value: s.identityTokenFile, comment: 'Re-read on every token exchange; holds the OIDC JWT (not stored here).' });
  if (s.identityTokenCommand) entries.push({ key: WIF_ENV_KEYS.identityTokenCommand, value: s.identityTokenCommand, comment: 'Run (without a shell) on every token exchange; prints the OIDC JWT.' });
  return updateEnvFile(text, entries);
}

import { ValidationError } from '../errors.js';

/**
 * Local checks of the identifiers the programmatic flow takes, so a typo fails at once with one line and
 * a hint (exit 2), before any file is written or any request is sent. The server checks them again
 * (a malformed ID there is a 400 invalid_request_error).
 */

export const DEFAULT_API_URL = 'https://api.anthropic.com';

/**
 * The API base URL when neither --api-url (MCP_TUNNEL_API_URL) nor .env names one: ANTHROPIC_BASE_URL, the
 * variable @anthropic-ai/sdk itself honours (our client passes its base URL explicitly, which would ignore
 * it), else the public API.
 */
export function defaultApiUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.ANTHROPIC_BASE_URL?.trim() || DEFAULT_API_URL;
}
/**
 * The anthropic-version docs/contract.md §4 documents for the Tunnels API. Sent explicitly: @anthropic-ai/sdk
 * 1.11 would otherwise send its own newer default, which the documented API need not accept.
 */
export const TUNNELS_API_VERSION = '2023-06-01';

const TAGGED = (prefix: string): RegExp => new RegExp(`^${prefix}_[A-Za-z0-9]+$`);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const shown = (value: string): string => (value.length > 40 ? `${value.slice(0, 40)}...` : value);

export function validateFederationRuleId(raw: string): string {
  const v = raw.trim();
  if (!TAGGED('fdrl').test(v)) {
    throw new ValidationError(
      `invalid federation rule ID "${shown(v)}": must start with fdrl_ followed by letters and digits`,
      'copy the rule ID from the Console (Settings > Workload identity > federation rules) and pass it with --federation-rule-id',
      'FEDERATION_RULE_ID_INVALID',
    );
  }
  return v;
}

export function validateOrganizationId(raw: string): string {
  const v = raw.trim();
  if (!UUID.test(v)) {
    throw new ValidationError(
      `invalid organization ID "${shown(v)}": must be a UUID such as 12345678-90ab-cdef-1234-567890abcdef`,
      'copy the organization ID from the Console (Settings > Organization) and pass it with --organization-id',
      'ORGANIZATION_ID_INVALID',
    );
  }
  return v.toLowerCase();
}

/** A workspace ID (`wrkspc_...`), or the literal `default` the token endpoint also accepts. */
export function validateWorkspaceId(raw: string): string {
  const v = raw.trim();
  if (v !== 'default' && !TAGGED('wrkspc').test(v)) {
    throw new ValidationError(
      `invalid workspace ID "${shown(v)}": must start with wrkspc_ followed by letters and digits`,
      'copy the workspace ID from the Console (Settings > Workspaces), or leave --workspace-id out to use the rule\'s workspace',
      'WORKSPACE_ID_INVALID',
    );
  }
  return v;
}

export function validateDisplayName(raw: string): string {
  const v = raw.trim();
  if (v.length < 1 || v.length > 255 || /[\u0000-\u001f]/.test(v)) {
    throw new ValidationError('invalid --display-name: must be 1-255 printable characters', 'e.g. --display-name "mcp-tunnel prod eu-1"', 'DISPLAY_NAME_INVALID');
  }
  return v;
}

/**
 * The API base URL. HTTPS always; plain http only for loopback (a local stand-in), as the SDK itself
 * refuses to send a JWT assertion over cleartext elsewhere.
 */
export function validateApiUrl(raw: string): string {
  const v = raw.trim().replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new ValidationError(`invalid --api-url "${shown(v)}": not a URL`, `use the default ${DEFAULT_API_URL}, or the https:// URL of your API gateway`, 'API_URL_INVALID');
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new ValidationError(
      `invalid --api-url "${shown(v)}": must be https:// (plain http is only allowed for localhost)`,
      'credentials are never sent in cleartext; use an https:// URL',
      'API_URL_INVALID',
    );
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new ValidationError(`invalid --api-url "${shown(v)}": must not carry credentials, a query or a fragment`, `e.g. --api-url ${DEFAULT_API_URL}`, 'API_URL_INVALID');
  }
  return v;
}

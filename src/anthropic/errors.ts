import { APIConnectionError, APIConnectionTimeoutError, APIError, AnthropicError } from '@anthropic-ai/sdk';
import { WorkloadIdentityError } from '@anthropic-ai/sdk/lib/credentials/types';
import { EnvironmentError, ExitCode, UserError, isUserError } from '../errors.js';
import { networkReason, type FederationSettings } from './client.js';

/**
 * Every failure of the token exchange or the Tunnels API becomes one UserError: what happened, and a
 * hint naming what to check. Messages carry IDs, statuses and the API's own message, never a token.
 */
export type ApiOperation =
  | 'exchange'
  | 'create-tunnel'
  | 'get-tunnel'
  | 'list-tunnels'
  | 'list-certificates'
  | 'register-certificate'
  | 'archive-certificate'
  | 'reveal-token'
  | 'rotate-token';

export interface ApiErrorContext {
  operation: ApiOperation;
  apiUrl: string;
  federation?: FederationSettings;
  tunnelId?: string;
  /** Where the tunnel ID came from, for the hint: "--tunnel-id" or "data/tunnel-id". */
  tunnelIdOrigin?: string;
  maxRetries?: number;
}

const DOING: Record<ApiOperation, string> = {
  exchange: 'exchange the identity token',
  'create-tunnel': 'create a tunnel',
  'get-tunnel': 'read the tunnel',
  'list-tunnels': 'list tunnels',
  'list-certificates': "list the tunnel's CA certificates",
  'register-certificate': 'register the CA certificate',
  'archive-certificate': 'archive a CA certificate',
  'reveal-token': 'reveal the tunnel token',
  'rotate-token': 'rotate the tunnel token',
};

class ApiFailure extends UserError {
  constructor(message: string, hint: string, exitCode: ExitCode, cause: unknown, code: string) {
    super(message, { hint, exitCode, cause, code });
  }
}

const fail = (message: string, hint: string, cause: unknown, code: string, exitCode: ExitCode = ExitCode.environment): UserError =>
  new ApiFailure(message, hint, exitCode, cause, code);

/** `"type: message"` from a Claude-shaped error body, or the HTTP status alone. */
function apiDetail(err: APIError): string {
  const type = err.type ?? (err.error as { error?: { type?: string } } | undefined)?.error?.type;
  const message = err.apiMessage ?? (err.error as { error?: { message?: string } } | undefined)?.error?.message;
  const parts = [`HTTP ${err.status}`];
  if (type) parts.push(type);
  const head = parts.join(' ');
  return message ? `${head}: ${oneLine(message)}` : head;
}

const oneLine = (text: string): string => text.replace(/\s+/g, ' ').trim().slice(0, 300);

function exchangeDetail(err: WorkloadIdentityError): { type?: string; message?: string } {
  const body = typeof err.body === 'string' ? safeJson(err.body) : err.body;
  const inner = (body as { error?: unknown } | null)?.error;
  if (inner && typeof inner === 'object') {
    const e = inner as { type?: unknown; message?: unknown };
    return { type: typeof e.type === 'string' ? e.type : undefined, message: typeof e.message === 'string' ? e.message : undefined };
  }
  if (typeof inner === 'string') return { type: inner, message: (body as { error_description?: string }).error_description };
  return {};
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function networkHint(apiUrl: string): string {
  return `check --api-url (now ${apiUrl}; stored as MCP_TUNNEL_API_URL in .env) and that this host can reach it over HTTPS (DNS, egress firewall, HTTPS_PROXY)`;
}

function retriesNote(ctx: ApiErrorContext): string {
  return ctx.maxRetries ? ` after ${ctx.maxRetries} retr${ctx.maxRetries === 1 ? 'y' : 'ies'}` : '';
}

export function explainApiError(err: unknown, ctx: ApiErrorContext): unknown {
  if (isUserError(err)) return err;
  const doing = DOING[ctx.operation];

  if (err instanceof WorkloadIdentityError) return explainExchangeError(err, ctx);

  if (err instanceof APIConnectionTimeoutError) {
    return fail(`the Anthropic API at ${ctx.apiUrl} did not answer in time (trying to ${doing}${retriesNote(ctx)})`, networkHint(ctx.apiUrl), err, 'API_UNREACHABLE');
  }
  if (err instanceof APIConnectionError) {
    const reason = networkReason(err) ?? 'connection failed';
    return fail(`cannot reach the Anthropic API at ${ctx.apiUrl} (${reason}) to ${doing}`, networkHint(ctx.apiUrl), err, 'API_UNREACHABLE');
  }
  if (err instanceof APIError && typeof err.status === 'number') {
    const detail = apiDetail(err);
    const tunnel = ctx.tunnelId ? `tunnel ${ctx.tunnelId}` : 'the tunnel';
    switch (err.status) {
      case 400:
        return fail(
          `the Tunnels API refused to ${doing} (${detail})`,
          ctx.operation === 'register-certificate'
            ? 'the CA in data/ca.crt must be a single PEM CA certificate of at most 8 kB; check it with `openssl x509 -in data/ca.crt -noout -text`'
            : `check the IDs: --tunnel-id (tnl_...), --workspace-id (wrkspc_...)`,
          err,
          'API_BAD_REQUEST',
          ExitCode.usage,
        );
      case 401:
        return fail(
          `the Tunnels API did not accept the access token from the exchange (${detail})`,
          'the token exchange and the Tunnels API must be the same API: check --api-url; if it persists, the federation rule may have been disabled meanwhile',
          err,
          'API_AUTH_FAILED',
        );
      case 403:
        return fail(
          `the Tunnels API denied the request to ${doing} (${detail})`,
          `the identity needs the scope workspace:manage_tunnels on the federation rule${ctx.federation?.federationRuleId ? ` ${ctx.federation.federationRuleId}` : ''}, and its service account must be a member of ${ctx.tunnelId ? `${tunnel}'s` : 'the'} workspace (pass --workspace-id wrkspc_... for that workspace)`,
          err,
          'API_FORBIDDEN',
        );
      case 404:
        return fail(
          `${tunnel} was not found (${detail})`,
          ctx.tunnelIdOrigin === 'data/tunnel-id'
            ? `data/tunnel-id names a tunnel this identity cannot see: it may be archived, or in another workspace or organization; pass --tunnel-id to attach to another tunnel, or move data/tunnel-id away to create a new one`
            : `check --tunnel-id: the tunnel may be archived, or in another workspace (--workspace-id) or organization; leave --tunnel-id out to create a new tunnel`,
          err,
          'TUNNEL_NOT_FOUND',
        );
      case 409:
        if (ctx.operation === 'create-tunnel') {
          return fail(
            `the organization cannot have another tunnel (${detail}); at most 10 tunnels may be active at once`,
            'archive a tunnel you no longer use (Console or the Tunnels API), or pass --tunnel-id to attach to an existing one',
            err,
            'TUNNEL_LIMIT_REACHED',
          );
        }
        if (ctx.operation === 'register-certificate') {
          return fail(
            `${tunnel} cannot take another CA certificate (${detail}); a tunnel holds at most two`,
            'archive the CA certificate you no longer use (Console or POST /v1/tunnels/{id}/certificates/{cid}/archive), then re-run',
            err,
            'CA_SLOTS_FULL',
          );
        }
        return fail(`the Tunnels API refused to ${doing}: conflict (${detail})`, 're-run in a moment; if it persists, check the tunnel in the Console', err, 'API_CONFLICT');
      case 408:
      case 429:
        return fail(
          `the Anthropic API kept refusing to ${doing}${retriesNote(ctx)} (${detail})`,
          'you are being rate limited: wait a minute and re-run (re-running is safe: nothing is created twice)',
          err,
          'API_RATE_LIMITED',
        );
      default:
        if (err.status >= 500) {
          return fail(
            `the Anthropic API failed to ${doing}${retriesNote(ctx)} (${detail})`,
            'the API is having trouble: re-run later (re-running is safe: nothing is created twice); see status.anthropic.com',
            err,
            'API_SERVER_ERROR',
          );
        }
        return fail(`the Tunnels API refused to ${doing} (${detail})`, 'check the IDs and flags, then re-run', err, 'API_REQUEST_FAILED');
    }
  }
  if (err instanceof AnthropicError) {
    return fail(`cannot ${doing}: ${oneLine(err.message)}`, networkHint(ctx.apiUrl), err, 'API_REQUEST_FAILED');
  }
  return err;
}

function explainExchangeError(err: WorkloadIdentityError, ctx: ApiErrorContext): UserError {
  const rule = ctx.federation?.federationRuleId ?? 'the federation rule';
  const org = ctx.federation?.organizationId;
  const { type, message } = exchangeDetail(err);
  const detail = [err.statusCode === null ? undefined : `HTTP ${err.statusCode}`, type].filter(Boolean).join(' ') + (message ? `: ${oneLine(message)}` : '');
  if (err.statusCode === null) {
    // The SDK gives a WorkloadIdentityError without a status only its message to tell "unreachable" from
    // "refused to send over http" (no cause, no body, no code; checked in @anthropic-ai/sdk lib/credentials),
    // so this one matches the third-party text; our own errors are told apart by `code`.
    if (/Failed to reach token endpoint/.test(err.message)) {
      const reason = networkReason(err) ?? 'connection failed';
      return fail(`cannot reach the token endpoint at ${ctx.apiUrl}/v1/oauth/token (${reason})`, networkHint(ctx.apiUrl), err, 'API_UNREACHABLE');
    }
    if (/non-https/.test(err.message)) {
      return fail(`refusing to send the identity token to ${ctx.apiUrl} over plain HTTP`, 'use an https:// --api-url', err, 'API_URL_INVALID', ExitCode.usage);
    }
    return fail(`the token exchange failed: ${oneLine(err.message.split(':')[0] ?? err.message)}`, 'check the identity token source and --api-url', err, 'TOKEN_EXCHANGE_FAILED');
  }
  switch (err.statusCode) {
    case 401:
    case 403:
      return fail(
        `the token exchange was refused (${detail || `HTTP ${err.statusCode}`})`,
        `check that the identity token's audience (aud) and subject (sub) match federation rule ${rule}${org ? ` of organization ${org}` : ''}, that the rule is enabled and the token is not expired${ctx.federation?.workspaceId ? '' : ', and pass --workspace-id if the rule covers several workspaces'}; the Console's Workload identity page (authentication history) shows the reason`,
        err,
        'TOKEN_EXCHANGE_REFUSED',
      );
    case 400:
      return fail(
        `the token endpoint rejected the request (${detail})`,
        'check --federation-rule-id (fdrl_...), --organization-id (a UUID) and --workspace-id (wrkspc_...) against the Console',
        err,
        'TOKEN_EXCHANGE_BAD_REQUEST',
        ExitCode.usage,
      );
    case 429:
      return fail(`the token endpoint kept rate-limiting the exchange${retriesNote(ctx)} (${detail})`, 'wait a minute and re-run', err, 'API_RATE_LIMITED');
    default:
      if (err.statusCode >= 500) {
        return fail(
          `the token endpoint failed${retriesNote(ctx)} (${detail})`,
          'the API is having trouble: re-run later (re-running is safe); see status.anthropic.com',
          err,
          'API_SERVER_ERROR',
        );
      }
      return fail(`the token exchange failed (${detail})`, `check --api-url (${ctx.apiUrl}) and the federation settings`, err, 'TOKEN_EXCHANGE_FAILED');
  }
}

import Anthropic, { type Middleware } from '@anthropic-ai/sdk';
import { oidcFederationProvider } from '@anthropic-ai/sdk/lib/credentials/oidc-federation';
import { WorkloadIdentityError, type AccessTokenProvider } from '@anthropic-ai/sdk/lib/credentials/types';
import { identityTokenProvider, type IdentityTokenSource } from './identity-token.js';
import { DEFAULT_API_URL, TUNNELS_API_VERSION } from './ids.js';

/**
 * The one place an Anthropic client is made. Authentication is Workload Identity Federation through the
 * SDK: its OIDC federation provider does the jwt-bearer exchange against POST /v1/oauth/token (with the
 * oidc-federation beta header), and the client's token cache re-exchanges before expiry and after a 401.
 * The Tunnels API is `client.beta.tunnels` (the SDK adds the mcp-tunnels beta header).
 */
export interface FederationSettings {
  federationRuleId: string;
  organizationId: string;
  workspaceId?: string;
}

export interface TunnelsClientOptions extends FederationSettings {
  apiUrl?: string;
  identityToken: IdentityTokenSource;
  /** Retries for 408/409/429/5xx and connection failures (the SDK's policy; the exchange gets the same). Default 2. */
  maxRetries?: number;
  /**
   * First retry delay, doubling on each retry. Default: the SDK's own backoff (0.5 s, doubling, at most
   * 8 s, or the server's retry-after). Tests set a few milliseconds.
   */
  retryBaseDelayMs?: number;
  /** Per-request timeout. Default 60 s (the SDK's 10 minutes is meant for model calls). */
  timeoutMs?: number;
}

export type TunnelsClient = Anthropic;

export const DEFAULT_MAX_RETRIES = 2;
export const DEFAULT_TIMEOUT_MS = 60_000;
const SDK_INITIAL_RETRY_DELAY_MS = 500;
const SDK_MAX_RETRY_DELAY_MS = 8_000;

export function createTunnelsClient(options: TunnelsClientOptions): TunnelsClient {
  const baseURL = (options.apiUrl ?? DEFAULT_API_URL).replace(/\/+$/, '');
  const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
  const fetchWithCodes = annotatedFetch(globalThis.fetch);
  const exchange = oidcFederationProvider({
    identityTokenProvider: identityTokenProvider(options.identityToken),
    federationRuleId: options.federationRuleId,
    organizationId: options.organizationId,
    workspaceId: options.workspaceId,
    baseURL,
    fetch: fetchWithCodes,
  });
  const middleware: Middleware[] = options.retryBaseDelayMs === undefined ? [] : [retryDelayMiddleware(options.retryBaseDelayMs)];
  return new Anthropic({
    // An explicit credential: the SDK then reads no ANTHROPIC_API_KEY, profile or other variable.
    credentials: retryingExchange(exchange, maxRetries, options.retryBaseDelayMs),
    baseURL,
    maxRetries,
    timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    fetch: fetchWithCodes,
    middleware,
    defaultHeaders: { 'anthropic-version': TUNNELS_API_VERSION },
    logLevel: 'off',
  });
}

/**
 * The SDK's federation provider performs one exchange and does not retry it (the API calls it is used
 * for do). A rate-limited or failing token endpoint gets the same policy as the API: retry 408/429/5xx
 * and connection failures, never a 400/401/403 (those need the user).
 */
export function retryingExchange(exchange: AccessTokenProvider, maxRetries: number, baseDelayMs?: number): AccessTokenProvider {
  return async (opts) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await exchange(opts);
      } catch (err) {
        if (attempt >= maxRetries || !isRetryableExchangeError(err)) throw err;
        await sleep(backoffMs(attempt, baseDelayMs));
      }
    }
  };
}

export function isRetryableExchangeError(err: unknown): boolean {
  if (!(err instanceof WorkloadIdentityError)) return false;
  const status = err.statusCode;
  // Without a status the SDK's WorkloadIdentityError carries no cause, body or code: its message is the
  // only way to tell a network failure (retry) from a refusal to send over http (do not).
  if (status === null) return /Failed to reach token endpoint/.test(err.message);
  return status === 408 || status === 429 || status >= 500;
}

function backoffMs(attempt: number, baseDelayMs?: number): number {
  const base = baseDelayMs ?? SDK_INITIAL_RETRY_DELAY_MS;
  const delay = Math.min(base * 2 ** attempt, Math.max(base, SDK_MAX_RETRY_DELAY_MS));
  return delay * (1 - Math.random() * 0.25);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Shortens the SDK's retry backoff when asked (tests): the SDK waits what `retry-after-ms` says, so a
 * retryable answer without one gets ours. Everything else about retrying stays the SDK's.
 */
function retryDelayMiddleware(baseDelayMs: number): Middleware {
  return async (request, next) => {
    const response = await next(request);
    const retryable = response.status === 408 || response.status === 409 || response.status === 429 || response.status >= 500;
    if (!retryable || response.headers.has('retry-after-ms')) return response;
    const retryCount = Number(new Headers(request.headers as ConstructorParameters<typeof Headers>[0]).get('x-stainless-retry-count') ?? 0) || 0;
    const headers = new Headers(response.headers);
    headers.set('retry-after-ms', String(Math.max(1, Math.round(backoffMs(retryCount, baseDelayMs)))));
    headers.delete('retry-after');
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  };
}

/**
 * undici reports "fetch failed" and hides the reason (ECONNREFUSED, ENOTFOUND, a TLS error) in `cause`;
 * the SDK's token exchange keeps only the message. Put the reason in the message so every error path
 * can name it.
 */
function annotatedFetch(inner: typeof fetch): typeof fetch {
  return async (input, init) => {
    try {
      return await inner(input, init);
    } catch (err) {
      const reason = networkReason(err);
      if (!reason || !(err instanceof Error) || err.message.includes(reason)) throw err;
      const annotated = new TypeError(`${err.message} (${reason})`, { cause: err });
      throw annotated;
    }
  };
}

/** ECONNREFUSED, ENOTFOUND, CERT_HAS_EXPIRED, ...: the first code in an error's cause chain. */
export function networkReason(err: unknown): string | undefined {
  const seen = new Set<unknown>();
  let e: unknown = err;
  while (e && typeof e === 'object' && !seen.has(e)) {
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(code)) return code;
    const nested = (e as { errors?: unknown[] }).errors;
    if (Array.isArray(nested) && nested.length > 0) {
      const inner = networkReason(nested[0]);
      if (inner) return inner;
    }
    e = (e as { cause?: unknown }).cause;
  }
  if (err instanceof Error) {
    const m = /\b(E[A-Z]{3,}|UND_ERR_[A-Z_]+|CERT_[A-Z_]+|ERR_TLS_[A-Z_]+)\b/.exec(err.message);
    if (m) return m[1];
  }
  return undefined;
}

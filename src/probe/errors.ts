import { ExitCode, UserError } from '../errors.js';
import { PROXY_ANSWERS } from './tunnel-protocol.js';

/**
 * Every failure of the tunnel's client side names the LAYER that failed, so the user knows where to look:
 *  - websocket: reaching the proxy's plain-HTTP listener and upgrading (is it running? is the port published?)
 *  - tls:       the inner handshake and the certificate (CA, SAN, validity, docs/contract.md §4 rules)
 *  - routing:   the proxy has no route for the host
 *  - upstream:  the proxy could not (or would not) reach the MCP server behind the route
 *  - mcp:       the MCP server answered, but not as an MCP server should (path, auth, protocol, tool error)
 * Each is a UserError with a one-line message and a one-line hint; exit code 3 (environment).
 */
export type TunnelLayer = 'websocket' | 'tls' | 'routing' | 'upstream' | 'mcp';

export abstract class TunnelError extends UserError {
  abstract readonly layer: TunnelLayer;
  /** One code per layer (PROBE_TLS_FAILED, ...): what to look at; `reason` says what exactly failed there. */
  abstract override readonly code: string;
  /** A short machine-readable reason, stable for --json and tests (e.g. "connection-refused", "unknown-ca"). */
  readonly reason: string;

  constructor(reason: string, message: string, hint: string | undefined, cause?: unknown) {
    super(message, { hint, exitCode: ExitCode.environment, cause });
    this.reason = reason;
  }

  toJSON(): { layer: TunnelLayer; code: string; reason: string; message: string; hint?: string } {
    return { layer: this.layer, code: this.code, reason: this.reason, message: this.message, ...(this.hint ? { hint: this.hint } : {}) };
  }
}

export class WebSocketLayerError extends TunnelError {
  readonly layer = 'websocket' as const;
  override readonly code = 'PROBE_WEBSOCKET_FAILED';
}
export class TlsLayerError extends TunnelError {
  readonly layer = 'tls' as const;
  override readonly code = 'PROBE_TLS_FAILED';
}
export class RoutingLayerError extends TunnelError {
  readonly layer = 'routing' as const;
  override readonly code = 'PROBE_ROUTING_FAILED';
}
export class UpstreamLayerError extends TunnelError {
  readonly layer = 'upstream' as const;
  override readonly code = 'PROBE_UPSTREAM_FAILED';
}
export class McpLayerError extends TunnelError {
  readonly layer = 'mcp' as const;
  override readonly code = 'PROBE_MCP_FAILED';
}

export function isTunnelError(err: unknown): err is TunnelError {
  return err instanceof TunnelError;
}

/** Finds a TunnelError in an error's cause chain (undici wraps connector errors in "fetch failed", the SDK wraps again). */
export function findTunnelError(err: unknown): TunnelError | undefined {
  const seen = new Set<unknown>();
  let e: unknown = err;
  while (e !== undefined && e !== null && !seen.has(e)) {
    if (e instanceof TunnelError) return e;
    seen.add(e);
    if (e instanceof AggregateError) {
      for (const inner of e.errors) {
        const hit = findTunnelError(inner);
        if (hit) return hit;
      }
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function oneLine(text: string, max = 160): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

// ---------------------------------------------------------------------------------------------- websocket

/** A socket-level failure while connecting to the proxy's WebSocket listener. */
export function classifyWebSocketError(err: unknown, proxyUrl: string): WebSocketLayerError {
  const code = codeOf(err);
  const target = describeTarget(proxyUrl);
  const msg = err instanceof Error ? err.message : String(err);
  switch (code) {
    case 'ECONNREFUSED':
      return new WebSocketLayerError(
        'connection-refused',
        `cannot reach the proxy at ${proxyUrl}: connection refused`,
        `nothing listens on ${target}: is the proxy running (mcp-tunnel status) and is its port published? Use --proxy if it listens elsewhere`,
        err,
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new WebSocketLayerError('dns', `cannot resolve the proxy's host in ${proxyUrl}`, 'check the host name in --proxy (e.g. ws://127.0.0.1:8080)', err);
    case 'ETIMEDOUT':
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
      return new WebSocketLayerError('unreachable', `cannot reach the proxy at ${proxyUrl} (${code})`, `check that ${target} is reachable from here (firewall, published port)`, err);
    case 'ECONNRESET':
    case 'EPIPE':
      return new WebSocketLayerError(
        'connection-reset',
        `the connection to ${proxyUrl} was reset during the WebSocket upgrade`,
        `is ${target} the proxy's plain-HTTP listener? (not a TLS port, not the admin port)`,
        err,
      );
    default:
      break;
  }
  if (proxyUrl.startsWith('wss:') && (code === 'EPROTO' || /wrong version number|ssl|tls/i.test(msg))) {
    return new WebSocketLayerError(
      'not-a-tls-listener',
      `${proxyUrl} does not speak TLS (${oneLine(msg, 60)})`,
      'the proxy listens on plain HTTP (the TLS runs inside the WebSocket): use ws:// instead of wss://',
      err,
    );
  }
  if (/timed out|timeout/i.test(msg)) {
    return new WebSocketLayerError('timeout', `the proxy at ${proxyUrl} did not complete the WebSocket upgrade in time`, `is ${target} the proxy's listener? Check the proxy's log and load`, err);
  }
  if (/Parse Error|Invalid WebSocket frame|wrong version|Invalid Sec-WebSocket-Accept|Unexpected server response/i.test(msg)) {
    return new WebSocketLayerError('not-websocket', `${proxyUrl} did not answer as a WebSocket server (${oneLine(msg, 80)})`, `point --proxy at the proxy's listen_addr (plain HTTP carrying WebSocket, e.g. ws://127.0.0.1:8080)`, err);
  }
  return new WebSocketLayerError('failed', `WebSocket connection to ${proxyUrl} failed: ${oneLine(msg)}`, 'check --proxy and that the proxy is running', err);
}

/** The proxy (or whatever listens there) answered the upgrade request with a plain HTTP response. */
export function classifyUpgradeResponse(status: number, body: string, proxyUrl: string): WebSocketLayerError {
  if (status === PROXY_ANSWERS.tooManyConnectionsStatus && PROXY_ANSWERS.shuttingDownBody.test(body)) {
    return new WebSocketLayerError('shutting-down', `the proxy at ${proxyUrl} is shutting down (HTTP 503)`, 'wait for it to restart (mcp-tunnel status), then probe again');
  }
  if (status === PROXY_ANSWERS.tooManyConnectionsStatus) {
    return new WebSocketLayerError(
      'too-many-connections',
      `the proxy at ${proxyUrl} refused the WebSocket: too many concurrent connections (HTTP 503)`,
      'the proxy is at limits.max_connections: retry later, or raise limits.max_connections in config/mcp-proxy.yaml',
    );
  }
  const snippet = body.trim() ? `: ${oneLine(body, 80)}` : '';
  return new WebSocketLayerError(
    'not-upgraded',
    `${proxyUrl} answered HTTP ${status} instead of upgrading to a WebSocket${snippet}`,
    `point --proxy at the proxy's listen_addr (e.g. ws://127.0.0.1:8080), not its admin port or an MCP server`,
  );
}

function describeTarget(proxyUrl: string): string {
  try {
    const u = new URL(proxyUrl);
    return `${u.hostname}:${u.port || (u.protocol === 'wss:' ? '443' : '80')}`;
  } catch {
    return proxyUrl;
  }
}

// ---------------------------------------------------------------------------------------------- tls

export interface TlsContext {
  servername: string;
  /** The tunnel domain, for the SAN hint. */
  domain?: string;
  /** Where the trusted CA came from, for the messages ("data/ca.crt"). */
  caSource?: string;
  /** What the peer presented, when the handshake got that far. */
  peer?: { subjectAltName?: string; validFrom?: string; validTo?: string; issuer?: string };
  /** The WebSocket's close code/reason if the proxy closed it during the handshake. */
  wsClose?: { code: number; reason: string };
}

const UNKNOWN_CA_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
]);

/**
 * Classifies a failed inner handshake or a failed verification. `errOrCode` is the handshake error, or
 * the verification code Node puts in `authorizationError` (e.g. "CERT_HAS_EXPIRED").
 */
export function classifyTlsError(errOrCode: unknown, ctx: TlsContext): TlsLayerError {
  const code = typeof errOrCode === 'string' ? errOrCode : codeOf(errOrCode);
  const msg = typeof errOrCode === 'string' ? errOrCode : errOrCode instanceof Error ? errOrCode.message : String(errOrCode);
  const cause = typeof errOrCode === 'string' ? undefined : errOrCode;
  const ca = ctx.caSource ?? 'data/ca.crt';
  const domain = ctx.domain ?? ctx.servername.split('.').slice(1).join('.');

  if (code && UNKNOWN_CA_CODES.has(code)) {
    const issuer = ctx.peer?.issuer ? ` (its issuer: ${oneLine(ctx.peer.issuer, 80)})` : '';
    return new TlsLayerError(
      'unknown-ca',
      `the proxy's certificate is not signed by ${ca}${issuer}`,
      `the proxy serves a certificate from another CA: re-issue its tls.crt from ${ca} (mcp-tunnel renew-cert --force), or point --dir at the deployment the proxy really uses`,
      cause,
    );
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH') {
    const sans = ctx.peer?.subjectAltName ? `it lists ${oneLine(ctx.peer.subjectAltName, 100)}` : 'it has no matching subjectAltName';
    return new TlsLayerError(
      'hostname-mismatch',
      `the proxy's certificate does not cover ${ctx.servername}: ${sans}`,
      `the certificate's SAN must list ${domain} and *.${domain}; if the tunnel domain changed, re-issue the certificate (mcp-tunnel renew-cert --force), else fix tunnel_domain in config/mcp-proxy.yaml`,
      cause,
    );
  }
  if (code === 'CERT_HAS_EXPIRED') {
    return new TlsLayerError(
      'expired',
      `the proxy's certificate expired${ctx.peer?.validTo ? ` on ${ctx.peer.validTo}` : ''}`,
      'run mcp-tunnel renew-cert (the proxy picks up the new certificate without a restart)',
      cause,
    );
  }
  if (code === 'CERT_NOT_YET_VALID') {
    return new TlsLayerError(
      'not-yet-valid',
      `the proxy's certificate is not valid yet${ctx.peer?.validFrom ? ` (valid from ${ctx.peer.validFrom})` : ''}`,
      "check this machine's clock and the proxy host's clock",
      cause,
    );
  }
  if (/wrong version number|packet length too long|unknown protocol|record layer failure|http request|record overflow|bad record|decode error/i.test(msg)) {
    return new TlsLayerError(
      'not-tls',
      `the proxy's answer inside the WebSocket is not TLS (${oneLine(msg, 80)})`,
      'is --proxy pointing at an MCP tunnel proxy? The inner TLS handshake must run inside the WebSocket',
      cause,
    );
  }
  if (/unsupported protocol|no protocols available|version too low|protocol version/i.test(msg)) {
    return new TlsLayerError('protocol-version', `the proxy does not speak TLS 1.2 or newer (${oneLine(msg, 80)})`, 'upgrade the proxy; the tunnel requires TLS 1.2+', cause);
  }
  if (/no application protocol|alpn/i.test(msg)) {
    return new TlsLayerError('alpn', `the proxy refused ALPN http/1.1 (${oneLine(msg, 80)})`, 'the tunnel speaks HTTP/1.1 inside TLS; check the proxy version', cause);
  }
  if (/timed? ?out/i.test(msg)) {
    return new TlsLayerError('timeout', `the inner TLS handshake with ${ctx.servername} did not complete in time`, "check the proxy's log for \"tls handshake failed\" and its load", cause);
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || ctx.wsClose || /socket disconnected|socket hang up|closed|ended|WebSocket is not open/i.test(msg)) {
    const close = ctx.wsClose ? ` (WebSocket closed with ${ctx.wsClose.code}${ctx.wsClose.reason ? ` "${oneLine(ctx.wsClose.reason, 60)}"` : ''})` : '';
    return new TlsLayerError(
      'closed-during-handshake',
      `the proxy closed the connection during the inner TLS handshake${close}`,
      'check the proxy\'s log for "tls handshake failed": an unreadable tls.key, a key that does not match tls.crt, or an SNI it refuses',
      cause,
    );
  }
  if (/handshake failure|alert/i.test(msg)) {
    return new TlsLayerError('handshake-failed', `the inner TLS handshake failed: ${oneLine(msg, 100)}`, 'check the proxy\'s log for "tls handshake failed"', cause);
  }
  return new TlsLayerError(code ? code.toLowerCase() : 'failed', `the inner TLS handshake failed: ${oneLine(msg, 100)}${code && !msg.includes(code) ? ` (${code})` : ''}`, 'check the proxy\'s log for "tls handshake failed"', cause);
}

// ---------------------------------------------------------------------------------------------- http

export interface HttpContext {
  host: string;
  route: string;
  path: string;
}

/**
 * An HTTP answer inside the tunnel that is not a success: from the proxy (routing, upstream guard,
 * unreachable upstream) or from the MCP server itself.
 */
export function classifyHttpFailure(status: number, body: string, ctx: HttpContext): TunnelError {
  if (status === PROXY_ANSWERS.noRouteStatus && body.includes(PROXY_ANSWERS.noRouteBody)) {
    return new RoutingLayerError(
      'no-route',
      `the proxy has no route for ${ctx.host} (HTTP 502 "${PROXY_ANSWERS.noRouteBody}")`,
      `add the route (mcp-tunnel routes add ${ctx.route.split('.')[0]} URL) and restart the proxy: its config is not hot-reloaded; the route key must be the host's first label or the full host`,
    );
  }
  if (PROXY_ANSWERS.upstreamFailureStatuses.includes(status) && PROXY_ANSWERS.ipValidationBody.test(body)) {
    return new UpstreamLayerError(
      'ip-validation',
      `the proxy refused to connect to the upstream of ${ctx.host}: its address is outside upstream.allowed_ips (${oneLine(body, 100)})`,
      "add the upstream's address or range to upstream.allowed_ips in config/mcp-proxy.yaml (the default allows only 10/8, 172.16/12, 192.168/16), then restart the proxy",
    );
  }
  if (PROXY_ANSWERS.upstreamFailureStatuses.includes(status)) {
    const snippet = body.trim() ? `: ${oneLine(body, 100)}` : '';
    return new UpstreamLayerError(
      status === 504 ? 'upstream-timeout' : 'upstream-unreachable',
      `the proxy could not get an answer from the upstream of ${ctx.host} (HTTP ${status}${snippet})`,
      "is the MCP server running and reachable from the proxy at the route's URL (host and port in config/mcp-proxy.yaml)?",
    );
  }
  if (status === 404 || status === 405) {
    return new McpLayerError('not-mcp-endpoint', `the upstream answered HTTP ${status} for ${ctx.path}`, `check --path: it must be the MCP server's streamable HTTP endpoint (often /mcp)`);
  }
  if (status === 401 || status === 403) {
    return new McpLayerError('unauthorized', `the upstream requires authorization (HTTP ${status})`, 'the probe sends no credentials; a server that demands OAuth answers so, which shows the tunnel path itself works');
  }
  const snippet = body.trim() ? `: ${oneLine(body, 100)}` : '';
  return new McpLayerError(`http-${status}`, `the upstream answered HTTP ${status}${snippet}`, "check the MCP server's own log");
}

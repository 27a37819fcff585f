/**
 * The tunnel's wire protocol as the client (Anthropic's side) sees it, in ONE place.
 *
 * Documented (docs/contract.md §1): the proxy listens on plain HTTP; the client upgrades to a WebSocket; a second
 * ("inner") TLS handshake runs inside the WebSocket's byte stream, with the proxy presenting a server
 * certificate signed by the customer's CA; inside that TLS session is MCP's streamable HTTP (HTTP/1.1,
 * POST/GET, JSON and text/event-stream), routed by hostname (docs/contract.md §3).
 *
 * NOT documented by Anthropic, decided by this project (the builtin proxy in src/proxy follows the same
 * choices; the README's "Assumptions" section repeats them):
 *  - any WebSocket path is accepted; the client uses "/" by default; no subprotocol is negotiated;
 *  - the payload of every data frame is the next bytes of one ordered stream; both sides send BINARY
 *    frames (text frames are accepted and treated as bytes);
 *  - no permessage-deflate (the payload is TLS ciphertext: compression would only cost CPU);
 *  - one WebSocket = one TLS session = one HTTP/1.1 connection (keep-alive, several requests in turn);
 *  - the inner TLS: TLS 1.2 or newer, SNI = "<route>.<tunnel-domain>", ALPN "http/1.1";
 *  - the client's HTTP Host header is "<route>.<tunnel-domain>" (no port), the URL scheme https.
 */
export const TUNNEL_PROTOCOL = {
  /** Where `probe` looks for the proxy unless told otherwise (--proxy / MCP_TUNNEL_PROXY_URL). */
  defaultProxyUrl: 'ws://127.0.0.1:8080/',
  /** The URL schemes accepted for the proxy (wss only for a proxy behind a TLS-terminating front). */
  proxySchemes: ['ws:', 'wss:'] as readonly string[],
  /** No WebSocket subprotocol is offered or expected. */
  subprotocols: [] as readonly string[],
  perMessageDeflate: false,
  /** Frames the client sends are binary. */
  binaryFrames: true,
  /** The inner TLS session. */
  tls: {
    minVersion: 'TLSv1.2' as const,
    alpnProtocols: ['http/1.1'] as string[],
  },
  /** The HTTP spoken inside the TLS session. */
  httpScheme: 'https:',
  /** The MCP endpoint path most servers use (probe --path). */
  defaultMcpPath: '/mcp',
} as const;

/** Default bound for each probe step (connect, handshake, one MCP request). */
export const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * What the proxy answers, as the client can observe it. The documented ones (docs/contract.md §3) first; the rest
 * are the builtin proxy's choices, matched loosely so the official proxy's wording also classifies.
 */
export const PROXY_ANSWERS = {
  /** docs/contract.md §3: unknown host -> HTTP 502 with this body. */
  noRouteStatus: 502,
  noRouteBody: 'No route configured for host',
  /** docs/contract.md §3: the log line of a refused upstream is "IP validation failed: <ip> is not a private address";
   * the builtin proxy puts the same words in its 502 body (the official one's body is not documented). */
  ipValidationBody: /IP validation failed|is not a private address|not in upstream\.allowed_ips|allowed_ips/i,
  /** The builtin proxy refuses the upgrade with HTTP 503 when limits.max_connections is reached. */
  tooManyConnectionsStatus: 503,
  /** ...and with HTTP 503 "shutting down" while it drains. */
  shuttingDownBody: /shutting down/i,
  /** Other 502/504 answers without the markers above: the upstream could not be reached. */
  upstreamFailureStatuses: [502, 504] as readonly number[],
} as const;

/** The hostname the probe addresses: a bare route key gets the tunnel domain appended; a full hostname is used as is. */
export function tunnelHost(route: string, domain: string | undefined): string {
  const r = route.trim().toLowerCase().replace(/\.$/, '');
  if (r.includes('.')) return r;
  if (!domain) throw new TypeError(`route "${route}" is a bare name but no tunnel domain is known`);
  return `${r}.${domain.toLowerCase().replace(/\.$/, '')}`;
}

/** https://<host><path>: the URL the MCP client uses inside the tunnel (default port, so Host has no port). */
export function tunnelUrl(host: string, path: string = TUNNEL_PROTOCOL.defaultMcpPath): URL {
  const p = path.startsWith('/') ? path : `/${path}`;
  return new URL(`${TUNNEL_PROTOCOL.httpScheme}//${host}${p}`);
}

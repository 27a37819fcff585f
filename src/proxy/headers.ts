/**
 * Header handling between the tunnel client and the upstream, on raw header arrays
 * ([name, value, name, value, ...], as in IncomingMessage.rawHeaders): case, order and repeats are kept.
 *
 * Removed (RFC 9110 7.6.1, connection-specific): Connection and every header it names, Keep-Alive,
 * Proxy-Connection, TE, Transfer-Encoding, Upgrade; plus Proxy-Authorization / Proxy-Authenticate (they
 * are addressed to a proxy, and the tunnel authenticates nobody: forwarding them would leak credentials).
 * Expect is dropped too: the proxy answers 100-continue itself.
 * Everything else passes untouched, in particular Host (the tunnel host, as the official proxy does),
 * Authorization, Mcp-Session-Id, Mcp-Protocol-Version, Mcp-Method, Mcp-Name and Last-Event-ID.
 * The body framing is the proxy's: Content-Length passes, a chunked body is re-chunked.
 */
const ALWAYS_DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);
const DROPPED_FROM_REQUESTS = new Set([...ALWAYS_DROPPED, 'expect']);
// Lengths of the names above: most headers are rejected by length alone, without lower-casing them.
const CANDIDATE_LENGTHS = new Set([...DROPPED_FROM_REQUESTS].map((n) => n.length));

export interface UpstreamRequestHeaders {
  /** Raw header array to send upstream. */
  headers: string[];
  /** The Host header as received (undefined when missing). */
  host: string | undefined;
  /** The request has a body to stream upstream (RFC 9112 6.3: a non-zero Content-Length, or chunked). */
  hasBody: boolean;
  /** The declared Content-Length (undefined when absent, e.g. a chunked body). */
  contentLength: number | undefined;
}

/** Names listed in Connection headers (lower case), or undefined when there are none. */
function connectionTokens(raw: string[]): Set<string> | undefined {
  let tokens: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 10 && name.toLowerCase() === 'connection') {
      for (const token of raw[i + 1]!.split(',')) {
        const t = token.trim().toLowerCase();
        if (t) (tokens ??= new Set()).add(t);
      }
    }
  }
  return tokens;
}

function filter(raw: string[], dropped: Set<string>, onKept?: (name: string, value: string) => void): { headers: string[]; chunked: boolean } {
  const named = connectionTokens(raw);
  const out: string[] = [];
  let chunked = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    let lower: string | undefined;
    if (CANDIDATE_LENGTHS.has(name.length) || named !== undefined) {
      lower = name.toLowerCase();
      if (dropped.has(lower) || named?.has(lower)) {
        if (lower === 'transfer-encoding') chunked = true;
        continue;
      }
    }
    onKept?.(name, value);
    out.push(name, value);
  }
  return { headers: out, chunked };
}

/** Headers for the upstream request. */
export function upstreamRequestHeaders(raw: string[]): UpstreamRequestHeaders {
  let host: string | undefined;
  let length: string | undefined;
  const { headers, chunked } = filter(raw, DROPPED_FROM_REQUESTS, (name, value) => {
    if (host === undefined && name.length === 4 && name.toLowerCase() === 'host') host = value;
    else if (length === undefined && name.length === 14 && name.toLowerCase() === 'content-length') length = value;
  });
  // A body without Content-Length came chunked: keep it delimited on the upstream side. (Node only chunks
  // on its own for methods that usually carry a body; a chunked GET would otherwise lose its framing.)
  if (chunked) headers.push('Transfer-Encoding', 'chunked');
  const contentLength = length === undefined || chunked ? undefined : Number(length.trim());
  return {
    headers,
    host,
    hasBody: chunked || (length !== undefined && length.trim() !== '0'),
    contentLength: contentLength !== undefined && Number.isSafeInteger(contentLength) ? contentLength : undefined,
  };
}

/** Headers for the response sent back into the tunnel; `hasLength` tells whether Content-Length is among them. */
export function clientResponseHeaders(raw: string[]): { headers: string[]; hasLength: boolean } {
  let hasLength = false;
  const { headers } = filter(raw, ALWAYS_DROPPED, (name) => {
    if (!hasLength && name.length === 14 && name.toLowerCase() === 'content-length') hasLength = true;
  });
  return { headers, hasLength };
}

/** The Host header from a raw header array (first one), without any parsing. */
export function hostOf(raw: string[]): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') return raw[i + 1];
  }
  return undefined;
}

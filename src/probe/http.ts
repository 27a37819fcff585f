import { Agent, fetch as undiciFetch, type Dispatcher } from 'undici';
import { openTunnel, type OpenTunnelOptions, type Tunnel } from './tunnel.js';

export interface TunnelFetchOptions {
  /** The proxy's WebSocket URL. */
  proxyUrl: string;
  /** The trusted CA (data/ca.crt). */
  caPem: string | string[];
  /** SNI for every connection; default: the request URL's host ("<route>.<tunnel-domain>"). */
  servername?: string;
  /** For messages (see OpenTunnelOptions). */
  domain?: string;
  caSource?: string;
  /** Bound for opening each tunnel (WebSocket upgrade, then TLS handshake). Default 10 s. */
  timeoutMs?: number;
  /** Bound for a response's headers. Default 300 s (undici's). */
  headersTimeoutMs?: number;
  /** Bound for silence inside a response body. Default 0 = none (an SSE stream may idle for long). */
  bodyTimeoutMs?: number;
  /** Connections (tunnels) per origin at most. Default: no limit. */
  connections?: number;
  /** An already-open tunnel to use as the first connection (the probe verifies one, then speaks MCP on it). */
  firstTunnel?: Tunnel;
  /** Called for each tunnel opened (not for firstTunnel). */
  onTunnel?: (tunnel: Tunnel) => void;
}

/** The last non-2xx answer seen, for classifying failures that the MCP SDK reports as bare status codes. */
export interface HttpFailure {
  method: string;
  url: string;
  status: number;
  /** The first KiB of the body. */
  body: string;
}

export type FetchFn = (url: string | URL, init?: RequestInit) => Promise<Response>;

export type TunnelFetch = FetchFn & {
  readonly dispatcher: Dispatcher;
  /** Tunnels (WebSocket + TLS sessions) opened so far, firstTunnel included. */
  readonly tunnelsOpened: number;
  readonly lastFailure: HttpFailure | undefined;
  /** Lets in-flight requests finish for a moment, then destroys every connection. */
  close(): Promise<void>;
};

/**
 * A fetch-compatible function whose connections are tunnels: each new HTTP/1.1 connection undici wants
 * is a fresh WebSocket to the proxy with a verified TLS session inside. Requests keep their URL
 * (https://<route>.<domain>/path), so the Host header is "<route>.<domain>" and the proxy routes on it.
 * Usable as `new StreamableHTTPClientTransport(url, { fetch: tunnelFetch(opts) })`.
 */
export function tunnelFetch(opts: TunnelFetchOptions): TunnelFetch {
  const open = new Set<Tunnel>();
  let first = opts.firstTunnel;
  let opened = first ? 1 : 0;
  let lastFailure: HttpFailure | undefined;
  if (first) track(first);

  function track(t: Tunnel): void {
    open.add(t);
    t.socket.once('close', () => open.delete(t));
  }

  const agent = new Agent({
    connections: opts.connections ?? null,
    headersTimeout: opts.headersTimeoutMs ?? 300_000,
    bodyTimeout: opts.bodyTimeoutMs ?? 0,
    connect: (connectOpts, callback) => {
      const servername = opts.servername ?? connectOpts.hostname;
      if (first) {
        const t = first;
        first = undefined;
        if (!t.socket.destroyed && t.servername === servername) {
          // undici's client is not ready for a callback from inside its own connect() call: defer it.
          setImmediate(() => callback(null, t.socket));
          return;
        }
        t.close();
      }
      const tunnelOpts: OpenTunnelOptions = {
        proxyUrl: opts.proxyUrl,
        servername,
        caPem: opts.caPem,
        timeoutMs: opts.timeoutMs,
        domain: opts.domain,
        caSource: opts.caSource,
      };
      openTunnel(tunnelOpts).then(
        (t) => {
          opened += 1;
          track(t);
          opts.onTunnel?.(t);
          callback(null, t.socket);
        },
        (err: Error) => callback(err, null),
      );
    },
  });

  const fn = async (url: string | URL, init?: RequestInit): Promise<Response> => {
    const res = (await undiciFetch(url, { ...(init as object), dispatcher: agent } as Parameters<typeof undiciFetch>[1])) as unknown as Response;
    if (res.status >= 400) {
      lastFailure = { method: init?.method ?? 'GET', url: String(url), status: res.status, body: await peekBody(res) };
    }
    return res;
  };

  return Object.defineProperties(fn, {
    dispatcher: { get: () => agent },
    tunnelsOpened: { get: () => opened },
    lastFailure: { get: () => lastFailure },
    close: {
      value: async (): Promise<void> => {
        if (first) {
          first.close();
          first = undefined;
        }
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([agent.close().catch(() => {}), new Promise<void>((r) => (timer = setTimeout(r, 1000)))]);
        clearTimeout(timer);
        await agent.destroy().catch(() => {});
        for (const t of open) t.close();
        open.clear();
      },
    },
  }) as TunnelFetch;
}

/** Reads up to 1 KiB of a response body without consuming the original. */
async function peekBody(res: Response): Promise<string> {
  try {
    const reader = res.clone().body?.getReader();
    if (!reader) return '';
    const chunks: Uint8Array[] = [];
    let size = 0;
    const deadline = setTimeout(() => void reader.cancel().catch(() => {}), 2000);
    try {
      while (size < 1024) {
        const { done, value } = await reader.read();
        if (done || !value) break;
        chunks.push(value);
        size += value.length;
      }
    } finally {
      clearTimeout(deadline);
      await reader.cancel().catch(() => {});
    }
    return Buffer.concat(chunks).toString('utf8').slice(0, 1024);
  } catch {
    return '';
  }
}

import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { checkTunnelCertificate, type CertificateCheck } from './certificate.js';
import { loadProbeDeployment, resolveProbeRoute } from './deployment.js';
import {
  classifyHttpFailure,
  findTunnelError,
  McpLayerError,
  TlsLayerError,
  UpstreamLayerError,
  type HttpContext,
  type TunnelError,
  type TunnelLayer,
} from './errors.js';
import { tunnelFetch, type TunnelFetch } from './http.js';
import { openTunnel, type OpenTunnelError, type Tunnel } from './tunnel.js';
import { DEFAULT_TIMEOUT_MS, TUNNEL_PROTOCOL, tunnelHost, tunnelUrl } from './tunnel-protocol.js';
import { VERSION as version } from '../version.js';


export type ProbeStepName = 'websocket' | 'tls' | 'initialize' | 'tools/list' | 'tools/call';

export interface ProbeFailure {
  layer: TunnelLayer;
  code: string;
  reason: string;
  message: string;
  hint?: string;
}

export interface ProbeStep {
  step: ProbeStepName;
  ok: boolean;
  /** Wall time of the step, milliseconds (rounded to 0.1). */
  ms: number;
  /** One line: what was found (ok) or what failed. */
  detail: string;
  /** Present on a failed step. */
  error?: ProbeFailure;
}

export interface ProbeResult {
  ok: boolean;
  route: string;
  host: string;
  url: string;
  proxyUrl: string;
  domain: string;
  steps: ProbeStep[];
  /** The failed step's error, when ok is false. */
  failure?: ProbeFailure & { step: ProbeStepName };
  tls?: { protocol: string | null; cipher: string; alpn: string | false | null; certificate: Omit<CertificateCheck, 'failure'> };
  server?: { name: string; version: string; protocolVersion?: string; sessionId?: string };
  tools?: string[];
  toolCall?: { name: string; isError: boolean; text: string };
  totalMs: number;
}

export interface RunProbeOptions {
  /** A route name ("docs") or a full hostname. */
  route: string;
  /** The MCP endpoint path; default /mcp. */
  path?: string;
  proxyUrl?: string;
  /** A deployment directory (config/mcp-proxy.yaml + data/ca.crt), or domain + caPem directly. */
  dir?: string;
  domain?: string;
  caPem?: string;
  /** For messages: where caPem came from. */
  caSource?: string;
  /** Optionally call one tool after tools/list. */
  callTool?: { name: string; args?: Record<string, unknown> };
  /** Bound for each step. Default 10 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** The clock for the certificate's validity rule. */
  now?: Date;
  /** Called as each step finishes (for live output). */
  onStep?: (step: ProbeStep) => void;
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

/**
 * Plays Anthropic's side of the tunnel: WebSocket -> inner TLS (+ docs/contract.md §4 certificate rules) -> MCP
 * initialize -> tools/list (-> tools/call), through the real MCP SDK client. Stops at the first failure and
 * names the layer. Returns data; never prints. Throws only for bad input (ValidationError/ConfigError) or
 * an abort.
 */
export async function runProbe(opts: RunProbeOptions): Promise<ProbeResult> {
  const started = performance.now();
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const proxyUrl = opts.proxyUrl ?? TUNNEL_PROTOCOL.defaultProxyUrl;
  const path = opts.path ?? TUNNEL_PROTOCOL.defaultMcpPath;

  let domain = opts.domain;
  let caPem = opts.caPem;
  let caSource = opts.caSource;
  let host: string;
  if (opts.dir !== undefined && (domain === undefined || caPem === undefined)) {
    const dep = await loadProbeDeployment(opts.dir);
    domain ??= dep.domain;
    caPem ??= dep.caPem;
    caSource ??= 'data/ca.crt';
    host = resolveProbeRoute(dep, opts.route).host;
  } else {
    if (!domain || !caPem) throw new TypeError('runProbe needs dir, or domain and caPem');
    host = tunnelHost(opts.route, domain);
  }
  const url = tunnelUrl(host, path);
  const ctx: HttpContext = { host, route: opts.route, path: url.pathname };

  const result: ProbeResult = { ok: false, route: opts.route, host, url: url.href, proxyUrl, domain, steps: [], totalMs: 0 };
  const record = (step: ProbeStep): void => {
    result.steps.push(step);
    opts.onStep?.(step);
  };
  const fail = (step: ProbeStepName, ms: number, err: TunnelError): ProbeResult => {
    const failure: ProbeFailure = err.toJSON();
    record({ step, ok: false, ms: round(ms), detail: err.message, error: failure });
    result.failure = { step, ...failure };
    result.totalMs = round(performance.now() - started);
    return result;
  };

  // 1 + 2: the WebSocket, and the TLS session inside it.
  let tunnel: Tunnel;
  const t0 = performance.now();
  try {
    tunnel = await openTunnel({ proxyUrl, servername: host, caPem, timeoutMs, signal: opts.signal, domain, caSource });
  } catch (err) {
    const te = findTunnelError(err);
    if (!te) throw err;
    if (te.layer === 'websocket') return fail('websocket', performance.now() - t0, te);
    const wsMs = (err as OpenTunnelError).timings?.wsOpenMs ?? 0;
    record({ step: 'websocket', ok: true, ms: round(wsMs), detail: `upgraded at ${proxyUrl}` });
    return fail('tls', performance.now() - t0 - wsMs, te);
  }
  record({ step: 'websocket', ok: true, ms: round(tunnel.timings.wsOpenMs), detail: `upgraded at ${proxyUrl}` });

  const tCert = performance.now();
  let cert: CertificateCheck;
  try {
    cert = checkTunnelCertificate({ peerPem: tunnel.peerCertificatePem, caPem, domain, now: opts.now });
  } catch (err) {
    tunnel.close();
    const msg = err instanceof Error ? err.message : String(err);
    return fail('tls', tunnel.timings.tlsHandshakeMs, new TlsLayerError('unreadable-certificate', `cannot read the proxy's certificate: ${msg}`, 'check tls.cert_file'));
  }
  const { failure: certFailure, ...certSummary } = cert;
  result.tls = { protocol: tunnel.tlsProtocol, cipher: tunnel.cipher, alpn: tunnel.alpnProtocol, certificate: certSummary };
  const tlsMs = tunnel.timings.tlsHandshakeMs + (performance.now() - tCert);
  if (certFailure) {
    tunnel.close();
    return fail('tls', tlsMs, new TlsLayerError(`spec:${certFailure.rule}`, `the proxy's certificate breaks the tunnel's rules: ${certFailure.message}`, certFailure.hint));
  }
  record({ step: 'tls', ok: true, ms: round(tlsMs), detail: `${tunnel.tlsProtocol ?? 'TLS'}, ${host} covered, signed by ${cert.issuer}, valid until ${cert.notAfter.slice(0, 10)}` });

  // 3..5: MCP through the real SDK client, the first request on the tunnel just verified.
  const fetchFn = tunnelFetch({ proxyUrl, caPem, domain, caSource, timeoutMs, firstTunnel: tunnel });
  const transport = new StreamableHTTPClientTransport(url, {
    fetch: fetchFn,
    // The probe wants a verdict, not retries: a dropped GET stream is not re-opened.
    reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 1000, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1 },
  });
  const client = new Client({ name: 'mcp-tunnel-probe', version });
  const reqOpts = { timeout: timeoutMs, signal: opts.signal };
  try {
    let t = performance.now();
    try {
      await client.connect(transport, reqOpts);
    } catch (err) {
      return fail('initialize', performance.now() - t, classifyMcpFailure(err, fetchFn, ctx, 'initialize', timeoutMs, opts.signal));
    }
    const sv = client.getServerVersion();
    result.server = { name: sv?.name ?? '?', version: sv?.version ?? '?', protocolVersion: transport.protocolVersion, sessionId: transport.sessionId };
    record({
      step: 'initialize',
      ok: true,
      ms: round(performance.now() - t),
      detail: `server "${result.server.name}" ${result.server.version}${transport.protocolVersion ? `, protocol ${transport.protocolVersion}` : ''}${transport.sessionId ? ', session opened' : ''}`,
    });

    t = performance.now();
    if (!client.getServerCapabilities()?.tools) {
      result.tools = [];
      record({ step: 'tools/list', ok: true, ms: 0, detail: 'the server offers no tools' });
    } else {
      try {
        const tools = await client.listTools(undefined, reqOpts);
        result.tools = tools.tools.map((x) => x.name);
      } catch (err) {
        return fail('tools/list', performance.now() - t, classifyMcpFailure(err, fetchFn, ctx, 'tools/list', timeoutMs, opts.signal));
      }
      const names = result.tools;
      record({
        step: 'tools/list',
        ok: true,
        ms: round(performance.now() - t),
        detail: `${names.length} tool${names.length === 1 ? '' : 's'}${names.length ? `: ${names.slice(0, 8).join(', ')}${names.length > 8 ? ', …' : ''}` : ''}`,
      });
    }

    if (opts.callTool) {
      const { name, args = {} } = opts.callTool;
      t = performance.now();
      if (result.tools && result.tools.length > 0 && !result.tools.includes(name)) {
        return fail('tools/call', 0, new McpLayerError('unknown-tool', `the server has no tool "${name}"`, `its tools: ${result.tools.join(', ')}`));
      }
      let text: string;
      let isError: boolean;
      try {
        const res = await client.callTool({ name, arguments: args }, undefined, reqOpts);
        text = toolText(res);
        isError = res.isError === true;
      } catch (err) {
        return fail('tools/call', performance.now() - t, classifyMcpFailure(err, fetchFn, ctx, 'tools/call', timeoutMs, opts.signal));
      }
      result.toolCall = { name, isError, text };
      if (isError) {
        return fail('tools/call', performance.now() - t, new McpLayerError('tool-error', `the tool "${name}" returned an error: ${oneLine(text)}`, 'check the arguments (--args) and the MCP server\'s log'));
      }
      record({ step: 'tools/call', ok: true, ms: round(performance.now() - t), detail: `${name} → ${oneLine(text)}` });
    }
    result.ok = true;
    result.totalMs = round(performance.now() - started);
    return result;
  } finally {
    // Say goodbye properly (DELETE the session), then drop every tunnel.
    if (transport.sessionId) await withTimeout(transport.terminateSession().catch(() => {}), 1000);
    await withTimeout(client.close().catch(() => {}), 1000);
    await fetchFn.close();
  }
}

/** Maps whatever the SDK/undici threw during an MCP request to the layer that failed. */
export function classifyMcpFailure(err: unknown, fetchFn: Pick<TunnelFetch, 'lastFailure'>, ctx: HttpContext, what: string, timeoutMs: number, signal?: AbortSignal): TunnelError {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : err;
  const te = findTunnelError(err);
  if (te) return te;
  if (err instanceof StreamableHTTPError && typeof err.code === 'number' && err.code > 0) {
    const body = fetchFn.lastFailure?.status === err.code ? fetchFn.lastFailure.body : err.message;
    return classifyHttpFailure(err.code, body, ctx);
  }
  if (err instanceof McpError) {
    if (err.code === ErrorCode.RequestTimeout) {
      return new McpLayerError('timeout', `no answer to ${what} within ${formatMs(timeoutMs)}`, 'the MCP server (or the proxy) hangs: check their logs, or raise --timeout');
    }
    return new McpLayerError('protocol-error', `the MCP server answered ${what} with an error: ${oneLine(err.message)}`, "check the MCP server's log");
  }
  const code = findCode(err);
  const msg = err instanceof Error ? err.message : String(err);
  if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || /other side closed|socket/i.test(msg)) {
    return new UpstreamLayerError('connection-closed', `the tunnel connection closed before the answer to ${what} arrived`, 'check the proxy\'s log: the upstream may have dropped the request or the proxy restarted');
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new McpLayerError('timeout', `no answer to ${what} within ${formatMs(timeoutMs)}`, 'the MCP server (or the proxy) hangs: check their logs, or raise --timeout');
  }
  if (err instanceof StreamableHTTPError) {
    return new McpLayerError('bad-response', `the answer to ${what} is not MCP: ${oneLine(msg)}`, 'check --path: it must be the MCP server\'s streamable HTTP endpoint');
  }
  return new McpLayerError('failed', `${what} failed: ${oneLine(msg)}`, "check the MCP server's log and --path");
}

function findCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 6 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function toolText(res: unknown): string {
  const content = (res as { content?: Array<{ type: string; text?: string }> }).content;
  if (Array.isArray(content)) {
    const texts = content.filter((c) => c.type === 'text' && typeof c.text === 'string').map((c) => c.text!);
    if (texts.length) return texts.join('\n');
    return `(${content.length} content item${content.length === 1 ? '' : 's'}, no text)`;
  }
  const structured = (res as { structuredContent?: unknown; toolResult?: unknown }).structuredContent ?? (res as { toolResult?: unknown }).toolResult;
  return structured === undefined ? '' : JSON.stringify(structured);
}

function oneLine(text: string, max = 120): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

import YAML from 'yaml';
import { ConfigError, ValidationError } from '../errors.js';
import { parseDuration } from './duration.js';
import { isValidRouteKey, parseIpv4Cidr, parseUpstream, type Ipv4Cidr, type Upstream } from './validate.js';

/**
 * The proxy configuration (docs/contract.md §3): one file, read by both engines. The official fields come first;
 * `admin` and `limits` are builtin-engine extensions, written only when the builtin engine is chosen.
 */
export interface ProxyConfigFile {
  listen_addr: string;
  log_level?: LogLevel;
  shutdown_timeout?: string;
  tunnel_domain?: string;
  tls: { cert_file: string; key_file: string };
  routes: Record<string, string>;
  upstream?: {
    allowed_ips?: string[];
    disable_ip_validation?: boolean;
    tls?: { ca_file?: string; include_system_cas?: boolean };
  };
  admin?: { listen_addr?: string };
  limits?: {
    max_connections?: number;
    max_header_bytes?: number;
    max_frame_bytes?: number;
    handshake_timeout?: string;
    idle_timeout?: string;
  };
}

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Documented defaults of the official proxy (docs/contract.md §3). */
export const DEFAULT_ALLOWED_IPS = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'] as const;
export const DEFAULT_LISTEN_ADDR = ':8080';
/** Where the official mcp-proxy image reads its config (docs/contract.md); the same default keeps us a drop-in. */
export const DEFAULT_PROXY_CONFIG = '/etc/mcp-gateway/config.yaml';
export const DEFAULT_SHUTDOWN_TIMEOUT = '30s';

/** Builtin-engine defaults: chosen here, documented in the README ("Builtin proxy limits"). */
export const BUILTIN_DEFAULTS = {
  adminListenAddr: '127.0.0.1:9090',
  maxConnections: 4096,
  maxHeaderBytes: 32 * 1024,
  /** One WebSocket frame's payload; streamed, so this bounds no memory: it only refuses absurd frames. */
  maxFrameBytes: 16 * 1024 * 1024,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
} as const;

/** The validated, normalised configuration the proxy runs with. */
export interface ProxyConfig {
  listenAddr: { host: string | undefined; port: number };
  logLevel: LogLevel;
  shutdownTimeoutMs: number;
  tunnelDomain: string | undefined;
  tls: { certFile: string; keyFile: string };
  /** Route key (bare label or full hostname, lower case) -> upstream. Insertion order = file order. */
  routes: Map<string, Upstream>;
  upstream: {
    /** undefined when IP validation is disabled. */
    allowedIps: Ipv4Cidr[] | undefined;
    caFile: string | undefined;
    includeSystemCas: boolean;
  };
  admin: { host: string | undefined; port: number } | undefined;
  limits: {
    maxConnections: number;
    maxHeaderBytes: number;
    maxFrameBytes: number;
    handshakeTimeoutMs: number;
    idleTimeoutMs: number;
  };
}

const TOP_LEVEL_KEYS = new Set(['listen_addr', 'log_level', 'shutdown_timeout', 'tunnel_domain', 'tls', 'routes', 'upstream', 'admin', 'limits']);

/** Most config mistakes are fixed the same way (edit the file), so they share PROXY_CONFIG_INVALID; a few get their own code. */
/** A hand-edited `routes:` written as a YAML list: the proxy refuses to start (docs/contract.md §3). */
export const ROUTES_LIST_PROBLEM = {
  message: 'routes must be a map of hostname to upstream URL, not a list',
  hint: 'write routes as "name: http://host:port", one per line, without a leading "-"',
} as const;

function fail(message: string, hint?: string, code: string = 'PROXY_CONFIG_INVALID'): never {
  throw new ConfigError(message, hint, code);
}

export function parseListenAddr(text: string, field: string): { host: string | undefined; port: number } {
  const m = /^(\[[^\]]*\]|[^:]*):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) fail(`${field} "${text}" is not an address:port such as ":8080" or "127.0.0.1:9090"`);
  const host = m[1] === '' ? undefined : m[1]!.replace(/^\[|\]$/g, '');
  return { host, port };
}

function asDuration(value: unknown, field: string): number {
  if (typeof value !== 'string') fail(`${field} must be a duration string such as "30s"`);
  try {
    return parseDuration(value, field);
  } catch (err) {
    if (err instanceof ValidationError) fail(err.message, err.hint, err.code);
    throw err;
  }
}

function asPositiveInt(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) fail(`${field} must be a positive integer`);
  return value;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses and validates the YAML text of a proxy config. Errors use the official proxy's wording. */
export function parseProxyConfig(text: string): ProxyConfig {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    fail(`config is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!isMap(doc)) fail('config must be a YAML mapping with listen_addr, tls and routes');
  for (const key of Object.keys(doc)) {
    if (!TOP_LEVEL_KEYS.has(key)) fail(`unknown config field "${key}"`, `known fields: ${[...TOP_LEVEL_KEYS].join(', ')}`, 'PROXY_CONFIG_UNKNOWN_FIELD');
  }

  if (typeof doc.listen_addr !== 'string') fail('listen_addr is required (e.g. ":8080")');
  const listenAddr = parseListenAddr(doc.listen_addr, 'listen_addr');

  const logLevel = (doc.log_level ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) fail(`log_level "${String(doc.log_level)}" is not one of ${LOG_LEVELS.join(', ')}`);

  const shutdownTimeoutMs = asDuration(doc.shutdown_timeout ?? DEFAULT_SHUTDOWN_TIMEOUT, 'shutdown_timeout');

  let tunnelDomain: string | undefined;
  if (doc.tunnel_domain !== undefined && doc.tunnel_domain !== null && doc.tunnel_domain !== '') {
    if (typeof doc.tunnel_domain !== 'string' || !isValidRouteKey(doc.tunnel_domain) || !doc.tunnel_domain.includes('.')) {
      fail(`tunnel_domain "${String(doc.tunnel_domain)}" is not a DNS name such as abcd1234.tunnel.anthropic.com`);
    }
    tunnelDomain = doc.tunnel_domain.toLowerCase().replace(/\.$/, '');
  }

  const tls = doc.tls;
  if (!isMap(tls) || typeof tls.cert_file !== 'string' || typeof tls.key_file !== 'string' || !tls.cert_file || !tls.key_file) {
    fail('tls.cert_file and tls.key_file are required');
  }

  if (Array.isArray(doc.routes)) {
    fail(ROUTES_LIST_PROBLEM.message, ROUTES_LIST_PROBLEM.hint);
  }
  if (!isMap(doc.routes) || Object.keys(doc.routes).length === 0) {
    fail('routes is required: a map of hostname to upstream URL', 'e.g. routes: { docs: "http://10.0.0.5:8080" }');
  }
  const routes = new Map<string, Upstream>();
  for (const [rawKey, target] of Object.entries(doc.routes)) {
    const key = rawKey.toLowerCase();
    if (!isValidRouteKey(key)) fail(`route "${rawKey}" is not a hostname or DNS label`, undefined, 'ROUTE_NAME_INVALID');
    if (typeof target !== 'string') fail(`invalid upstream (must be scheme://host:port) for route "${rawKey}": not a string`, undefined, 'UPSTREAM_SYNTAX_INVALID');
    if (!key.includes('.') && tunnelDomain === undefined) {
      fail(`route "${rawKey}" is a bare subdomain but tunnel_domain is not set`, 'set tunnel_domain to the tunnel domain, or write the full hostname as the route key');
    }
    if (routes.has(key)) fail(`route "${rawKey}" is listed twice`, undefined, 'ROUTE_DUPLICATE');
    routes.set(key, parseUpstream(target, rawKey));
  }

  const upstreamDoc = doc.upstream ?? {};
  if (!isMap(upstreamDoc)) fail('upstream must be a mapping');
  const disable = upstreamDoc.disable_ip_validation === true;
  if (upstreamDoc.disable_ip_validation !== undefined && typeof upstreamDoc.disable_ip_validation !== 'boolean') {
    fail('upstream.disable_ip_validation must be true or false');
  }
  if (disable && upstreamDoc.allowed_ips !== undefined) {
    fail('upstream.allowed_ips and upstream.disable_ip_validation are mutually exclusive', 'keep allowed_ips (recommended) or remove it and keep disable_ip_validation: true');
  }
  let allowedIps: Ipv4Cidr[] | undefined;
  if (!disable) {
    const list = upstreamDoc.allowed_ips ?? [...DEFAULT_ALLOWED_IPS];
    if (!Array.isArray(list) || list.length === 0) fail('upstream.allowed_ips must be a non-empty list of IPv4 CIDRs');
    allowedIps = list.map((entry) => {
      try {
        return parseIpv4Cidr(String(entry));
      } catch (err) {
        if (err instanceof ValidationError) fail(`upstream.allowed_ips: ${err.message}`, err.hint, err.code);
        throw err;
      }
    });
  }
  const upTls = upstreamDoc.tls ?? {};
  if (!isMap(upTls)) fail('upstream.tls must be a mapping');
  const caFile = typeof upTls.ca_file === 'string' && upTls.ca_file ? upTls.ca_file : undefined;
  const includeSystemCas = upTls.include_system_cas === true;
  for (const [key, up] of routes) {
    if (up.scheme === 'https' && !caFile && !includeSystemCas) {
      fail(`route "${key}" has an https upstream but neither upstream.tls.ca_file nor upstream.tls.include_system_cas is set`, 'set upstream.tls.ca_file to the CA bundle that signed the upstream, or include_system_cas: true', 'UPSTREAM_CA_MISSING');
    }
  }

  const adminDoc = doc.admin;
  let admin: ProxyConfig['admin'] = parseListenAddr(BUILTIN_DEFAULTS.adminListenAddr, 'admin.listen_addr');
  if (adminDoc !== undefined && adminDoc !== null) {
    if (!isMap(adminDoc)) fail('admin must be a mapping');
    if (adminDoc.listen_addr === '' || adminDoc.listen_addr === false) admin = undefined;
    else if (adminDoc.listen_addr !== undefined) admin = parseListenAddr(String(adminDoc.listen_addr), 'admin.listen_addr');
  }
  // Port 0 (ephemeral, tests and demo) is two different ports once bound.
  if (admin && admin.port !== 0 && admin.port === listenAddr.port) fail('admin.listen_addr must not share the port of listen_addr', 'the admin listener is kept off the tunnel path');

  const lim = doc.limits ?? {};
  if (!isMap(lim)) fail('limits must be a mapping');
  const limits = {
    maxConnections: lim.max_connections === undefined ? BUILTIN_DEFAULTS.maxConnections : asPositiveInt(lim.max_connections, 'limits.max_connections'),
    maxHeaderBytes: lim.max_header_bytes === undefined ? BUILTIN_DEFAULTS.maxHeaderBytes : asPositiveInt(lim.max_header_bytes, 'limits.max_header_bytes'),
    maxFrameBytes: lim.max_frame_bytes === undefined ? BUILTIN_DEFAULTS.maxFrameBytes : asPositiveInt(lim.max_frame_bytes, 'limits.max_frame_bytes'),
    handshakeTimeoutMs: lim.handshake_timeout === undefined ? BUILTIN_DEFAULTS.handshakeTimeoutMs : asDuration(lim.handshake_timeout, 'limits.handshake_timeout'),
    idleTimeoutMs: lim.idle_timeout === undefined ? BUILTIN_DEFAULTS.idleTimeoutMs : asDuration(lim.idle_timeout, 'limits.idle_timeout'),
  };

  return {
    listenAddr,
    logLevel,
    shutdownTimeoutMs,
    tunnelDomain,
    tls: { certFile: tls.cert_file, keyFile: tls.key_file },
    routes,
    upstream: { allowedIps, caFile, includeSystemCas },
    admin,
    limits,
  };
}

/**
 * Route lookup exactly as docs/contract.md §3: the exact hostname first, then the hostname minus
 * ".<tunnel_domain>". Only the host is matched (any port is dropped); case-insensitive.
 */
export function lookupRoute(config: Pick<ProxyConfig, 'routes' | 'tunnelDomain'>, hostHeader: string): { key: string; upstream: Upstream } | undefined {
  const host = hostHeader.trim().toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
  const exact = config.routes.get(host);
  if (exact) return { key: host, upstream: exact };
  if (config.tunnelDomain) {
    const suffix = `.${config.tunnelDomain}`;
    if (host.endsWith(suffix)) {
      const bare = host.slice(0, -suffix.length);
      const hit = config.routes.get(bare);
      if (hit) return { key: bare, upstream: hit };
    }
  }
  return undefined;
}

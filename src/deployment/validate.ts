import net from 'node:net';
import { ValidationError, ConfigError } from '../errors.js';
import { canonicalHost, cidrContains, ipv4ToInt, type Ipv4Cidr } from './upstream-address.js';

export { cidrContains, ipv4ToInt, type Ipv4Cidr };

/**
 * Pure validators for everything a user types. Each returns the normalised value or throws one
 * ValidationError whose message says what is wrong and whose hint says how to fix it.
 */

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** A route name is one DNS label: it becomes <name>.<tunnel-domain>. */
export function validateRouteName(name: string): string {
  const n = name.trim().toLowerCase();
  if (!DNS_LABEL.test(n)) {
    throw new ValidationError(
      `invalid route name "${name}": must be a DNS label (letters, digits and hyphens, 1-63 characters, no leading or trailing hyphen)`,
      'route names become <name>.<tunnel-domain>, e.g. --route docs=http://10.0.0.5:8080',
      'ROUTE_NAME_INVALID',
    );
  }
  return n;
}

/** A route key in the proxy config: a bare label, or a full hostname. */
export function isValidRouteKey(key: string): boolean {
  return key.split('.').every((label) => DNS_LABEL.test(label.toLowerCase()));
}

export function validateDomain(domain: string, flag = '--tunnel-domain'): string {
  const d = domain.trim().toLowerCase().replace(/\.$/, '');
  const labels = d.split('.');
  if (d.length > 253 || labels.length < 2 || !labels.every((l) => DNS_LABEL.test(l)) || /^\d+$/.test(labels.at(-1)!)) {
    throw new ValidationError(
      `invalid tunnel domain "${domain}": must be a DNS name such as abcd1234.tunnel.anthropic.com`,
      `copy the domain shown for the tunnel in the Console and pass it with ${flag}`,
      'TUNNEL_DOMAIN_INVALID',
    );
  }
  return d;
}

export function validateTunnelId(id: string): string {
  const t = id.trim();
  if (!/^tnl_[A-Za-z0-9]+$/.test(t)) {
    throw new ValidationError(
      `invalid tunnel ID "${t.slice(0, 40)}": must start with tnl_ followed by letters and digits`,
      'copy the tunnel ID (tnl_...) from the Console and pass it with --tunnel-id',
      'TUNNEL_ID_INVALID',
    );
  }
  return t;
}

/**
 * A tunnel token is canonical base64 (standard alphabet, padded, no stray bits) of a JSON object with
 * string keys a, t and s (cloudflared's token format). Node's base64 decoder skips characters outside the
 * alphabet, so a token with `!!` pasted into it would decode "fine" here and fail in cloudflared: the
 * alphabet, the padding and the round trip are checked first. We check the shape, never echo the value.
 */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The token's JSON object when it is a well-formed tunnel token (after trimming outer whitespace), else undefined. */
export function decodeTunnelToken(raw: string): { a: string; t: string; s: string } | undefined {
  const token = raw.trim();
  if (token.length === 0 || !BASE64.test(token)) return undefined;
  const bytes = Buffer.from(token, 'base64');
  if (bytes.toString('base64') !== token) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
  const o = parsed as Record<string, unknown> | null;
  if (!o || typeof o !== 'object' || Array.isArray(o) || typeof o.a !== 'string' || typeof o.t !== 'string' || typeof o.s !== 'string') return undefined;
  if (!o.a || !o.t || !o.s) return undefined;
  return { a: o.a, t: o.t, s: o.s };
}

/**
 * Why RAW (trimmed) is not a well-formed tunnel token, as the tail of a sentence ("is empty", ...), or
 * undefined when it is one. Callers that word the failure their own way (a token from the API) build
 * their message from this instead of rewriting validateTunnelToken's.
 */
export function tunnelTokenProblem(raw: string): string | undefined {
  const token = raw.trim();
  if (token.length === 0) return 'is empty';
  if (/\s/.test(token)) return 'contains whitespace';
  if (!token.startsWith('eyJ')) return 'does not look like a tunnel token (it should start with "eyJ")';
  const bad = /[^A-Za-z0-9+/=]/.exec(token);
  if (bad) return `contains "${bad[0]}" at position ${bad.index + 1}, which is not a base64 character`;
  if (!BASE64.test(token) || Buffer.from(token, 'base64').toString('base64') !== token) return 'is not canonical base64 (its length or padding is wrong: was it cut short?)';
  if (!decodeTunnelToken(token)) return 'is not base64 of a JSON object: it lacks the fields a, t and s of a tunnel token';
  return undefined;
}

export function validateTunnelToken(raw: string, source: string): string {
  const why = tunnelTokenProblem(raw);
  if (why !== undefined) {
    throw new ValidationError(
      `the tunnel token from ${source} ${why}`,
      'copy the tunnel token from the Console (it starts with "eyJ") into a file and pass --tunnel-token-file FILE',
      'TUNNEL_TOKEN_INVALID',
    );
  }
  return raw.trim();
}

export interface Upstream {
  scheme: 'http' | 'https';
  host: string;
  port: number;
  url: string;
  /** The host as written, when it differs from the canonical `host` (e.g. 2130771969 for 127.1.0.1). */
  writtenHost?: string;
}

/**
 * Upstreams must be exactly scheme://host:port, as the official proxy demands. The message starts with the
 * official wording, verbatim, so a user who greps for it finds it.
 */
export function parseUpstream(raw: string, route?: string): Upstream {
  const where = route === undefined ? '' : ` for route "${route}"`;
  const fail = (why: string): never => {
    throw new ConfigError(
      `invalid upstream (must be scheme://host:port)${where}: "${raw}" ${why}`,
      'write the upstream as http://HOST:PORT or https://HOST:PORT; the path (e.g. /mcp) travels with each request',
      'UPSTREAM_SYNTAX_INVALID',
    );
  };
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/(\[[^\]]+\]|[^/:?#@]+)(?::(\d+))?(.*)$/.exec(raw.trim());
  if (!m) return fail('is not a URL');
  const scheme = m[1]!.toLowerCase();
  const host = m[2]!.toLowerCase();
  const port = m[3];
  const rest = m[4]!;
  if (scheme !== 'http' && scheme !== 'https') return fail(`has scheme "${scheme}"; only http and https are supported`);
  if (raw.includes('@')) return fail('carries credentials');
  if (rest.length > 0) return fail(`has a path, query or fragment ("${rest}")`);
  if (port === undefined) return fail('has no port');
  const p = Number(port);
  if (!Number.isInteger(p) || p < 1 || p > 65535) return fail(`has port ${port}, outside 1-65535`);
  // The host the dialler will use (upstream-address.ts): every IPv4 spelling becomes dotted-quad here,
  // before anything is checked.
  const canonical = canonicalHost(host);
  if (!canonical) return fail(`has an invalid host "${host}"`);
  if (canonical.kind === 'ipv6') return fail('is an IPv6 address; the proxy connects to IPv4 upstreams only');
  if (canonical.kind === 'name' && !isValidRouteKey(canonical.host)) return fail(`has an invalid host "${host}"`);
  const out: Upstream = { scheme, host: canonical.host, port: p, url: `${scheme}://${canonical.host}:${p}` };
  if (canonical.host !== host) out.writtenHost = host;
  return out;
}

/** "NAME=URL" from --route. */
export function parseRouteFlag(flag: string): { name: string; upstream: Upstream } {
  const eq = flag.indexOf('=');
  if (eq <= 0) {
    throw new ValidationError(`invalid --route "${flag}": expected NAME=URL`, 'e.g. --route docs=http://10.0.0.5:8080', 'ROUTE_SYNTAX_INVALID');
  }
  const name = validateRouteName(flag.slice(0, eq));
  try {
    return { name, upstream: parseUpstream(flag.slice(eq + 1), name) };
  } catch (err) {
    if (err instanceof ConfigError) throw new ValidationError(err.message, err.hint, err.code);
    throw err;
  }
}

/** An IPv4 address or CIDR ("10.0.0.0/8", "192.168.1.5"). IPv6 is refused: the proxy is IPv4-only. */
export function parseIpv4Cidr(raw: string): Ipv4Cidr {
  const text = raw.trim();
  const [addr = '', prefixText, extra] = text.split('/');
  const prefix = prefixText === undefined ? 32 : Number(prefixText);
  if (extra !== undefined || !net.isIPv4(addr) || !/^\d{1,2}$/.test(prefixText ?? '32') || prefix > 32) {
    throw new ValidationError(
      `invalid allowed IP "${raw}": expected an IPv4 address or CIDR such as 10.0.0.0/8`,
      'IPv6 upstreams are not supported by the proxy; list IPv4 ranges only',
      'ALLOWED_IP_INVALID',
    );
  }
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return { network: (ipv4ToInt(addr) & mask) >>> 0, prefix, text: prefixText === undefined ? addr : text };
}

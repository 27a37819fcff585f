/**
 * THE canonical upstream-address rule, in one place, imported by every check (init, routes add, doctor,
 * the proxy's config load and its dial). No imports: the WHATWG URL parser is a global.
 *
 * Why the WHATWG parser: it is what turns an upstream URL into the address that is dialled (undici and
 * `new URL` both use it), and it accepts many spellings of an IPv4 address (`2130771969`, `0177.1.0.1`,
 * `0x7f.1.0.1`, `127.65537`, `127.1`). A check that looked at the written host as a *name* let those
 * through while the dialler connected to the IP literal they stand for. So every host is first put
 * through the same parser, and only its canonical form (dotted-quad for IPv4) is ever checked or dialled.
 *
 * The address rule (the proxy's SSRF defence, docs/contract.md: "only IPv4 upstreams"):
 *  - an IPv4-mapped IPv6 address (::ffff:a.b.c.d, in any spelling) is judged as the IPv4 it carries;
 *    any other IPv6 address is refused;
 *  - 0.0.0.0/8 ("this network": 0.0.0.0 reaches the local host on Linux) is refused unless an allowed_ips
 *    entry lies inside 0.0.0.0/8 itself (a catch-all such as 0.0.0.0/0 does not count);
 *  - otherwise the address must lie in one of the allowed_ips ranges.
 * A name is not an address: whoever dials it resolves it, checks EVERY address it resolves to with
 * addressVerdict, and dials the address it checked (src/proxy/upstream-guard.ts).
 */

export interface Ipv4Cidr {
  /** Network address as an unsigned 32-bit integer. */
  network: number;
  prefix: number;
  text: string;
}

export interface CanonicalHost {
  /** The host as written (lower-cased, brackets kept for IPv6). */
  written: string;
  /** The canonical form: dotted-quad for anything that is an IPv4 address (also IPv4-mapped IPv6), the
   * WHATWG-normalised name otherwise, or the bracketless IPv6 text. */
  host: string;
  kind: 'ipv4' | 'ipv6' | 'name';
}

const DOTTED_QUAD = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isDottedQuad(text: string): boolean {
  return DOTTED_QUAD.test(text);
}

/**
 * The canonical form of an upstream host as the WHATWG URL parser (the dialler's) sees it, or undefined
 * when that parser refuses the host (e.g. `1.2.3.4.5`, `foo.0x10`: a numeric last label that is not an IPv4).
 */
export function canonicalHost(written: string): CanonicalHost | undefined {
  const raw = written.trim().toLowerCase();
  let hostname: string;
  try {
    hostname = new URL(`http://${raw}/`).hostname;
  } catch {
    return undefined;
  }
  if (hostname.startsWith('[')) {
    const v6 = hostname.slice(1, -1);
    const mapped = mappedIpv4(v6);
    return mapped === undefined ? { written: raw, host: v6, kind: 'ipv6' } : { written: raw, host: mapped, kind: 'ipv4' };
  }
  if (isDottedQuad(hostname)) return { written: raw, host: hostname, kind: 'ipv4' };
  return { written: raw, host: hostname, kind: 'name' };
}

/** ::ffff:hhhh:hhhh (how WHATWG serialises every spelling of an IPv4-mapped address) -> a.b.c.d. */
function mappedIpv4(v6: string): string | undefined {
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
  if (!m) return undefined;
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/**
 * The IPv4 address a resolved or literal address stands for (dotted-quad, any IPv4 spelling, or
 * IPv4-mapped IPv6), or undefined for a name or a plain IPv6 address.
 */
export function asIpv4(address: string): string | undefined {
  if (isDottedQuad(address)) return address;
  const trimmed = address.trim();
  if (trimmed.includes(':') && !trimmed.startsWith('[')) {
    const c = canonicalHost(`[${trimmed}]`);
    return c?.kind === 'ipv4' ? c.host : undefined;
  }
  const c = canonicalHost(trimmed);
  return c?.kind === 'ipv4' ? c.host : undefined;
}

export function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0) >>> 0;
}

export function cidrContains(cidr: Ipv4Cidr, ip: string): boolean {
  const mask = cidr.prefix === 0 ? 0 : (~0 << (32 - cidr.prefix)) >>> 0;
  return ((ipv4ToInt(ip) & mask) >>> 0) === cidr.network;
}

const THIS_NETWORK: Ipv4Cidr = { network: 0, prefix: 8, text: '0.0.0.0/8' };

export type AddressVerdict = { allowed: true; ip: string } | { allowed: false; ip: string; reason: 'not-ipv4' | 'this-network' | 'outside' };

/**
 * May the proxy connect to this address? `allowedIps` undefined = IP validation disabled (everything
 * passes). `address` may be any spelling; the verdict's `ip` is its canonical form.
 */
export function addressVerdict(address: string, allowedIps: readonly Ipv4Cidr[] | undefined): AddressVerdict {
  const ip = asIpv4(address);
  if (!allowedIps) return { allowed: true, ip: ip ?? address };
  if (ip === undefined) return { allowed: false, ip: address, reason: 'not-ipv4' };
  const allowsThisNetwork = allowedIps.some((c) => c.prefix >= 8 && c.network >>> 24 === 0);
  if (!allowsThisNetwork && cidrContains(THIS_NETWORK, ip)) return { allowed: false, ip, reason: 'this-network' };
  for (const cidr of allowedIps) if (cidrContains(cidr, ip)) return { allowed: true, ip };
  return { allowed: false, ip, reason: 'outside' };
}

/** "127.1.0.1" or "2130771969 (= 127.1.0.1)": the written form and, when it differs, the canonical one. */
export function describeHost(written: string, canonical: string): string {
  return written === canonical ? canonical : `${written} (= ${canonical})`;
}

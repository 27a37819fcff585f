import dns from 'node:dns';
import net from 'node:net';
import type { LookupFunction } from 'node:net';
import { cidrContains, type Ipv4Cidr } from '../bundle/validate.js';

/**
 * The SSRF guard (SPEC.md 3: "IP validation is the proxy's primary SSRF defence; only IPv4 upstreams").
 *
 * - The upstream host is resolved (IPv4 only) and EVERY address it resolves to must lie in
 *   upstream.allowed_ips (default: the RFC 1918 ranges); one address outside refuses the whole host.
 * - An IPv6-mapped IPv4 address (::ffff:a.b.c.d) is judged as the IPv4 address it carries; any other
 *   IPv6 address is refused.
 * - 0.0.0.0/8 ("this network": 0.0.0.0 reaches the local host on Linux) is refused unless an allowed_ips
 *   entry lies inside 0.0.0.0/8 itself (a catch-all such as 0.0.0.0/0 does not count).
 * - The connection then goes to the address that was checked: the guard IS the socket's `lookup` function,
 *   so there is no second resolution a DNS rebinding could race. An IP literal upstream is checked before
 *   the request is made (Node does not call `lookup` for literals).
 * With disable_ip_validation (allowedIps undefined) every check passes and resolution is the system's.
 */
export class IpValidationError extends Error {
  readonly code = 'EIPVALIDATION';
  constructor(readonly ip: string) {
    // The SPEC's log line, word for word.
    super(`IP validation failed: ${ip} is not a private address`);
    this.name = 'IpValidationError';
  }
}

/** The IPv4 address an address string stands for (plain, or IPv6-mapped), or undefined. */
export function asIpv4(address: string): string | undefined {
  if (net.isIPv4(address)) return address;
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:')) {
    const rest = lower.slice(7);
    if (net.isIPv4(rest)) return rest;
    // ::ffff:0a00:0001 written in hex groups
    const m = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(rest);
    if (m) {
      const hi = parseInt(m[1]!, 16);
      const lo = parseInt(m[2]!, 16);
      return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
    }
  }
  return undefined;
}

const THIS_NETWORK = { network: 0, prefix: 8, text: '0.0.0.0/8' } satisfies Ipv4Cidr;

export class UpstreamGuard {
  readonly allowedIps: Ipv4Cidr[] | undefined;
  /**
   * A `lookup` for net.connect / http.Agent: resolve, check, and hand back only the checked address, so
   * the socket connects to exactly what was validated. Undefined when validation is disabled (the
   * system's lookup is then used as is).
   */
  readonly lookup: LookupFunction | undefined;
  private readonly allowsThisNetwork: boolean;
  private readonly resolve: (host: string) => Promise<string[]>;

  /** `allowedIps` undefined = validation disabled. `resolve` is injectable for tests. */
  constructor(allowedIps: Ipv4Cidr[] | undefined, resolve: (host: string) => Promise<string[]> = resolveIpv4) {
    this.allowedIps = allowedIps;
    this.resolve = resolve;
    this.allowsThisNetwork = (allowedIps ?? []).some((c) => c.prefix >= 8 && c.network >>> 24 === 0);
    this.lookup = allowedIps ? (hostname, options, callback) => this.lookupChecked(hostname, options, callback) : undefined;
  }

  get enabled(): boolean {
    return this.allowedIps !== undefined;
  }

  /** True when the proxy may connect to this address. */
  allows(address: string): boolean {
    if (!this.allowedIps) return true;
    const ip = asIpv4(address);
    if (ip === undefined) return false;
    if (!this.allowsThisNetwork && cidrContains(THIS_NETWORK, ip)) return false;
    for (const cidr of this.allowedIps) if (cidrContains(cidr, ip)) return true;
    return false;
  }

  /**
   * Resolves `host` and checks every address; resolves to the address to connect to, or rejects with
   * IpValidationError naming the first refused address (or a DNS error).
   */
  async check(host: string): Promise<string> {
    const literal = asIpv4(host);
    const addresses = literal !== undefined ? [literal] : net.isIP(host) ? [host] : await this.resolve(host);
    if (addresses.length === 0) throw Object.assign(new Error(`${host} has no IPv4 address`), { code: 'ENOTFOUND' });
    for (const address of addresses) {
      if (!this.allows(address)) throw new IpValidationError(address);
    }
    return asIpv4(addresses[0]!) ?? addresses[0]!;
  }

  private lookupChecked(hostname: string, options: dns.LookupOptions, callback: Parameters<LookupFunction>[2]): void {
    this.check(hostname).then(
      (address) => {
        // net asks for `all` when it may race address families (autoSelectFamily): answer in that shape.
        if (options.all) (callback as unknown as (err: null, addresses: dns.LookupAddress[]) => void)(null, [{ address, family: 4 }]);
        else callback(null, address, 4);
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 4),
    );
  }
}

async function resolveIpv4(host: string): Promise<string[]> {
  const results = await dns.promises.lookup(host, { all: true, family: 4 });
  return results.map((r) => r.address);
}

import dns from 'node:dns';
import net from 'node:net';
import type { LookupFunction } from 'node:net';
import { addressVerdict, asIpv4, type Ipv4Cidr } from '../deployment/upstream-address.js';

export { asIpv4 };

/**
 * The SSRF guard (docs/contract.md 3: "IP validation is the proxy's primary SSRF defence; only IPv4 upstreams").
 *
 * - The address rule itself (canonical forms, IPv4-mapped IPv6, 0.0.0.0/8, allowed_ips membership) is
 *   src/deployment/upstream-address.ts, the one rule init, routes and doctor use too.
 * - The upstream host is resolved (IPv4 only) and EVERY address it resolves to must pass that rule; one
 *   address outside refuses the whole host.
 * - The connection then goes to the address that was checked: the guard IS the socket's `lookup` function,
 *   so there is no second resolution a DNS rebinding could race. An IP literal upstream is checked before
 *   the request is made (Node does not call `lookup` for literals).
 * With disable_ip_validation (allowedIps undefined) every check passes and resolution is the system's.
 */
export class IpValidationError extends Error {
  readonly code = 'EIPVALIDATION';
  /** `ip`: the canonical address; `written`: how the config spelt it, when that differs. */
  constructor(
    readonly ip: string,
    readonly written?: string,
  ) {
    // The documented log line (docs/contract.md), word for word; the written form follows when it differs.
    super(`IP validation failed: ${ip} is not a private address${written !== undefined && written !== ip ? ` (written ${written})` : ''}`);
    this.name = 'IpValidationError';
  }
}

export class UpstreamGuard {
  readonly allowedIps: Ipv4Cidr[] | undefined;
  /**
   * A `lookup` for net.connect / http.Agent: resolve, check, and hand back only the checked address, so
   * the socket connects to exactly what was validated. Undefined when validation is disabled (the
   * system's lookup is then used as is).
   */
  readonly lookup: LookupFunction | undefined;
  private readonly resolve: (host: string) => Promise<string[]>;

  /** `allowedIps` undefined = validation disabled. `resolve` is injectable for tests. */
  constructor(allowedIps: Ipv4Cidr[] | undefined, resolve: (host: string) => Promise<string[]> = resolveIpv4) {
    this.allowedIps = allowedIps;
    this.resolve = resolve;
    this.lookup = allowedIps ? (hostname, options, callback) => this.lookupChecked(hostname, options, callback) : undefined;
  }

  get enabled(): boolean {
    return this.allowedIps !== undefined;
  }

  /** True when the proxy may connect to this address. */
  allows(address: string): boolean {
    return addressVerdict(address, this.allowedIps).allowed;
  }

  /**
   * Resolves `host` and checks every address; resolves to the address to connect to, or rejects with
   * IpValidationError naming the first refused address (or a DNS error).
   */
  async check(host: string): Promise<string> {
    const literal = asIpv4(host);
    const addresses = literal !== undefined ? [literal] : net.isIP(host) ? [host] : await this.resolve(host);
    if (addresses.length === 0) throw Object.assign(new Error(`${host} has no IPv4 address`), { code: 'ENOTFOUND' });
    let first: string | undefined;
    for (const address of addresses) {
      const verdict = addressVerdict(address, this.allowedIps);
      if (!verdict.allowed) throw new IpValidationError(verdict.ip, address);
      first ??= verdict.ip;
    }
    // The address that was checked (canonical) is the one dialled.
    return first!;
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

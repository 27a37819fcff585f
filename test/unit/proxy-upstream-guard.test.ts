import { describe, expect, it } from 'vitest';
import { DEFAULT_ALLOWED_IPS } from '../../src/deployment/proxy-config.js';
import { parseIpv4Cidr } from '../../src/deployment/validate.js';
import { IpValidationError, UpstreamGuard, asIpv4 } from '../../src/proxy/upstream-guard.js';

const cidrs = (...list: string[]) => list.map(parseIpv4Cidr);

describe('asIpv4', () => {
  it('reads plain and IPv6-mapped IPv4, refuses other IPv6', () => {
    expect(asIpv4('10.1.2.3')).toBe('10.1.2.3');
    expect(asIpv4('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(asIpv4('::FFFF:0a01:0203')).toBe('10.1.2.3');
    expect(asIpv4('::1')).toBeUndefined();
    expect(asIpv4('fe80::1')).toBeUndefined();
    expect(asIpv4('example.com')).toBeUndefined();
  });
});

describe('UpstreamGuard.allows', () => {
  const guard = new UpstreamGuard(cidrs(...DEFAULT_ALLOWED_IPS));
  it.each([
    ['10.0.0.5', true],
    ['172.16.0.1', true],
    ['172.31.255.255', true],
    ['172.32.0.1', false],
    ['192.168.1.1', true],
    ['127.0.0.1', false],
    ['169.254.169.254', false],
    ['8.8.8.8', false],
    ['0.0.0.0', false],
    ['::ffff:10.0.0.5', true],
    ['::ffff:127.0.0.1', false],
    ['::1', false],
  ])('default RFC 1918: %s -> %s', (ip, allowed) => {
    expect(guard.allows(ip)).toBe(allowed);
  });

  it('refuses 0.0.0.0/8 under a catch-all, allows it when listed explicitly', () => {
    expect(new UpstreamGuard(cidrs('0.0.0.0/0')).allows('0.0.0.0')).toBe(false);
    expect(new UpstreamGuard(cidrs('0.0.0.0/0')).allows('8.8.8.8')).toBe(true);
    expect(new UpstreamGuard(cidrs('0.0.0.0/8')).allows('0.0.0.0')).toBe(true);
  });

  it('allows everything when validation is disabled', () => {
    const off = new UpstreamGuard(undefined);
    expect(off.enabled).toBe(false);
    expect(off.lookup).toBeUndefined();
    expect(off.allows('8.8.8.8')).toBe(true);
  });
});

describe('UpstreamGuard.check and lookup', () => {
  const resolver = (map: Record<string, string[]>) => async (host: string) => map[host] ?? [];

  it('returns the first checked address when every resolved address is allowed', async () => {
    const guard = new UpstreamGuard(cidrs('10.0.0.0/8'), resolver({ 'mcp.internal': ['10.0.0.7', '10.0.0.8'] }));
    await expect(guard.check('mcp.internal')).resolves.toBe('10.0.0.7');
  });

  it('refuses the host when ANY resolved address is outside allowed_ips (DNS rebinding, split answers)', async () => {
    const guard = new UpstreamGuard(cidrs('10.0.0.0/8'), resolver({ 'mcp.internal': ['10.0.0.7', '169.254.169.254'] }));
    const err = await guard.check('mcp.internal').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IpValidationError);
    expect((err as IpValidationError).message).toBe('IP validation failed: 169.254.169.254 is not a private address');
  });

  it('refuses a name with no IPv4 address', async () => {
    const guard = new UpstreamGuard(cidrs('10.0.0.0/8'), resolver({}));
    await expect(guard.check('nowhere.internal')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('answers net.connect lookups with exactly the checked address, in both callback shapes', async () => {
    const guard = new UpstreamGuard(cidrs('10.0.0.0/8'), resolver({ 'mcp.internal': ['10.0.0.9'] }));
    const one = await new Promise((resolve) => guard.lookup!('mcp.internal', { family: 0 }, (err, address, family) => resolve([err, address, family])));
    expect(one).toEqual([null, '10.0.0.9', 4]);
    const all = await new Promise((resolve) => guard.lookup!('mcp.internal', { all: true }, (err, addresses) => resolve([err, addresses])));
    expect(all).toEqual([null, [{ address: '10.0.0.9', family: 4 }]]);
    const refused = await new Promise((resolve) => new UpstreamGuard(cidrs('192.168.0.0/16'), resolver({ x: ['10.0.0.1'] })).lookup!('x', {}, (err) => resolve(err)));
    expect(refused).toBeInstanceOf(IpValidationError);
  });
});

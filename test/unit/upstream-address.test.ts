import { describe, expect, it } from 'vitest';
import { addressVerdict, canonicalHost } from '../../src/deployment/upstream-address.js';
import { parseIpv4Cidr, parseUpstream } from '../../src/deployment/validate.js';

describe('the canonical upstream-address rule', () => {
  it.each([
    ['2130771969', '127.1.0.1'],
    ['0177.1.0.1', '127.1.0.1'],
    ['0x7f.1.0.1', '127.1.0.1'],
    ['127.65537', '127.1.0.1'],
    ['134744072', '8.8.8.8'],
    ['[::ffff:127.0.0.1]', '127.0.0.1'],
    ['[0:0:0:0:0:ffff:7f00:1]', '127.0.0.1'],
    ['0', '0.0.0.0'],
  ])('%s is the IPv4 address %s', (written, canonical) => {
    expect(canonicalHost(written)).toMatchObject({ host: canonical, kind: 'ipv4' });
    const up = parseUpstream(`http://${written}:9000`);
    expect(up).toMatchObject({ host: canonical, url: `http://${canonical}:9000`, writtenHost: written });
  });

  it('leaves names alone and refuses what the URL parser refuses', () => {
    expect(parseUpstream('http://Docs.Internal:80')).toEqual({ scheme: 'http', host: 'docs.internal', port: 80, url: 'http://docs.internal:80' });
    expect(() => parseUpstream('http://1.2.3.4.5:80')).toThrow(expect.objectContaining({ code: 'UPSTREAM_SYNTAX_INVALID', exitCode: 2 }));
    expect(() => parseUpstream('http://[::1]:80')).toThrow(expect.objectContaining({ code: 'UPSTREAM_SYNTAX_INVALID' }));
  });

  it('judges every spelling by its canonical form', () => {
    const loopbackOnly = [parseIpv4Cidr('127.0.0.0/8')];
    expect(addressVerdict('::ffff:7f00:1', loopbackOnly)).toEqual({ allowed: true, ip: '127.0.0.1' });
    expect(addressVerdict('192.0.2.1', loopbackOnly)).toEqual({ allowed: false, ip: '192.0.2.1', reason: 'outside' });
    expect(addressVerdict('::1', loopbackOnly)).toMatchObject({ allowed: false, reason: 'not-ipv4' });
    expect(addressVerdict('0.0.0.0', [parseIpv4Cidr('0.0.0.0/0')])).toMatchObject({ allowed: false, reason: 'this-network' });
    expect(addressVerdict('0.0.0.0', [parseIpv4Cidr('0.0.0.0/8')])).toMatchObject({ allowed: true });
    expect(addressVerdict('192.0.2.1', undefined)).toMatchObject({ allowed: true });
  });
});

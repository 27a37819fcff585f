import { describe, expect, it } from 'vitest';
import { decodeEnvText } from '../../src/deployment/env-file.js';
import { decodeTunnelToken, validateTunnelToken } from '../../src/deployment/validate.js';
import { checkApiToken } from '../../src/anthropic/provision.js';
import { UserError } from '../../src/errors.js';

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64');
const GOOD = b64({ a: 'account', t: '3f1e2d4c-0000-4000-8000-000000000001', s: Buffer.from('secret-bytes').toString('base64') });

function refusal(fn: () => unknown): UserError {
  try {
    fn();
  } catch (err) {
    if (err instanceof UserError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('tunnel tokens: canonical base64 of {a, t, s}', () => {
  it('accepts a token, with outer whitespace trimmed', () => {
    expect(validateTunnelToken(`  ${GOOD}\n`, 'test')).toBe(GOOD);
    expect(decodeTunnelToken(GOOD)?.a).toBe('account');
  });

  it.each([
    ['"!!" pasted inside', `${GOOD.slice(0, 10)}!!${GOOD.slice(10)}`, /contains "!" at position 11, which is not a base64 character/],
    ['a base64url character', `${GOOD.slice(0, 5)}-${GOOD.slice(6)}`, /contains "-" at position 6, which is not a base64 character/],
    ['cut short (length not a multiple of 4)', GOOD.slice(0, -1), /not canonical base64/],
    ['padding removed', b64({ a: 'x', t: 'y', s: 'zz' }).replace(/=+$/, ''), /not canonical base64/],
    ['inner whitespace', `${GOOD.slice(0, 8)} ${GOOD.slice(8)}`, /contains whitespace/],
    ['a JSON array', b64(['a', 't', 's']), /does not look like a tunnel token/],
    ['a JSON object whose a is a number', b64({ a: 1, t: 'y', s: 'z' }), /lacks the fields a, t and s/],
    ['missing s', b64({ a: 'x', t: 'y' }), /lacks the fields a, t and s/],
    ['empty a', b64({ a: '', t: 'y', s: 'z' }), /lacks the fields a, t and s/],
    ['not JSON', Buffer.from('{"a":"x","t":"y","s":').toString('base64'), /lacks the fields/],
  ])('refuses %s (exit 2, code TUNNEL_TOKEN_INVALID)', (_name, token, message) => {
    const err = refusal(() => validateTunnelToken(token, 'test'));
    expect(err.exitCode).toBe(2);
    expect(err.code).toBe('TUNNEL_TOKEN_INVALID');
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain(token);
    expect(decodeTunnelToken(token)).toBeUndefined();
  });

  it('refuses non-canonical trailing bits that a lenient decoder would accept', () => {
    // "eyJ9" and "eyJ8" decode to the same bytes leniently only if the padding bits differ; build one.
    const canonical = b64({ a: 'x', t: 'y', s: 'zz' });
    expect(canonical.endsWith('=')).toBe(true);
    const lastData = canonical.replace(/=+$/, '').at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const sibling = alphabet[alphabet.indexOf(lastData) + 1]!;
    const tampered = canonical.replace(/(.)(=+)$/, `${sibling}$2`);
    expect(Buffer.from(tampered, 'base64').equals(Buffer.from(canonical, 'base64'))).toBe(true);
    expect(refusal(() => validateTunnelToken(tampered, 'test')).message).toMatch(/not canonical base64/);
  });

  it('a malformed token from the Tunnels API is the API\'s fault: exit 3, API_TOKEN_MALFORMED, the same reason', () => {
    expect(checkApiToken(`${GOOD}\n`, 'reveal_token')).toBe(GOOD);
    const err = refusal(() => checkApiToken('eyJ not a token', 'reveal_token'));
    expect(err).toMatchObject({ exitCode: 3, code: 'API_TOKEN_MALFORMED' });
    expect(err.message).toMatch(/reveal_token answer .*\(it contains whitespace\)$/);
    expect(err.hint).toMatch(/--api-url/);
  });
});

describe('.env must be UTF-8 text', () => {
  it('accepts UTF-8 (accents, emoji), tabs and CRLF', () => {
    expect(decodeEnvText(Buffer.from('# café ☕ 🚇\r\nA=1\tb\n'))).toContain('café');
  });

  it.each([
    ['a 0xFF byte on line 3', Buffer.concat([Buffer.from('A=1\nB=2\nC='), Buffer.from([0xff, 0xfe]), Buffer.from('\n')]), 3, 'ff'],
    ['a NUL on line 1', Buffer.from('A=\u0000x\n'), 1, '00'],
    ['an overlong slash on line 2', Buffer.concat([Buffer.from('A=1\nB='), Buffer.from([0xc0, 0xaf])]), 2, 'c0'],
    ['a lone continuation byte', Buffer.from([0x41, 0x3d, 0x80]), 1, '80'],
    ['a truncated sequence at the end', Buffer.from([0x41, 0x3d, 0xe2, 0x82]), 1, 'e2'],
    ['an encoded surrogate', Buffer.from([0x41, 0x3d, 0xed, 0xa0, 0x80]), 1, 'ed'],
  ])('refuses %s with the line number (exit 2)', (_name, buf, line, byte) => {
    const err = refusal(() => decodeEnvText(buf as Buffer));
    expect(err.exitCode).toBe(2);
    expect(err.code).toBe('ENV_NOT_TEXT');
    expect(err.message).toBe(`.env is not UTF-8 text (line ${line}: byte 0x${byte}); nothing was changed`);
    expect(err.hint).toContain(`line ${line}`);
  });
});

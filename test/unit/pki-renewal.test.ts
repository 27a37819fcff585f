import { describe, expect, it } from 'vitest';
import { decideRenewal } from '../../src/pki/index.js';

const H = 3_600_000;
const now = new Date('2030-06-01T12:00:00Z');
const at = (ms: number): Date => new Date(now.getTime() + ms);
const renewBeforeMs = 720 * H;

describe('decideRenewal', () => {
  it('keeps a certificate while more than --renew-before remains, and reports what remains', () => {
    expect(decideRenewal({ notAfter: at(renewBeforeMs + 1), now, renewBeforeMs, force: false })).toEqual({
      renew: false,
      reason: 'valid',
      remainingMs: renewBeforeMs + 1,
    });
  });

  it('renews with exactly --renew-before remaining (no-op only while MORE remains)', () => {
    expect(decideRenewal({ notAfter: at(renewBeforeMs), now, renewBeforeMs, force: false })).toEqual({ renew: true, reason: 'expires-soon' });
  });

  it('renews when it expires within the window', () => {
    expect(decideRenewal({ notAfter: at(H), now, renewBeforeMs, force: false })).toEqual({ renew: true, reason: 'expires-soon' });
  });

  it('treats notAfter itself as still valid and the next millisecond as expired', () => {
    expect(decideRenewal({ notAfter: at(0), now, renewBeforeMs: 0, force: false })).toEqual({ renew: true, reason: 'expires-soon' });
    expect(decideRenewal({ notAfter: at(-1), now, renewBeforeMs: 0, force: false })).toEqual({ renew: true, reason: 'expired' });
    expect(decideRenewal({ notAfter: at(-90 * 24 * H), now, renewBeforeMs, force: false })).toEqual({ renew: true, reason: 'expired' });
  });

  it('with --renew-before 0 keeps any certificate that has not expired', () => {
    expect(decideRenewal({ notAfter: at(1), now, renewBeforeMs: 0, force: false })).toMatchObject({ renew: false, remainingMs: 1 });
  });

  it('--force renews a perfectly good certificate', () => {
    expect(decideRenewal({ notAfter: at(2000 * H), now, renewBeforeMs, force: true })).toEqual({ renew: true, reason: 'forced' });
    expect(decideRenewal({ notAfter: at(-1), now, renewBeforeMs, force: true })).toEqual({ renew: true, reason: 'forced' });
  });

  it('issues when there is no certificate, forced or not', () => {
    expect(decideRenewal({ notAfter: undefined, now, renewBeforeMs, force: false })).toEqual({ renew: true, reason: 'missing' });
    expect(decideRenewal({ notAfter: undefined, now, renewBeforeMs, force: true })).toEqual({ renew: true, reason: 'missing' });
    expect(decideRenewal({ notAfter: new Date(Number.NaN), now, renewBeforeMs, force: false })).toEqual({ renew: true, reason: 'missing' });
  });

  it('refuses a negative window as a programming error', () => {
    expect(() => decideRenewal({ notAfter: at(H), now, renewBeforeMs: -1, force: false })).toThrow(RangeError);
    expect(() => decideRenewal({ notAfter: at(H), now: new Date(Number.NaN), renewBeforeMs, force: false })).toThrow(RangeError);
  });
});

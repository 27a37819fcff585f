/*
 * Whether renew-cert should issue a new server certificate. Pure so the boundaries are testable; it matches the
 * setup component: --renew-before makes renewal a no-op only while MORE than that much validity remains.
 */

/**
 * The renewal window, defined once: a server certificate is due when this much validity or less remains.
 * 30 days, the setup component's --renew-before 720h; init, renew-cert, doctor and status all ask isRenewalDue.
 */
export const RENEW_BEFORE = '720h';
export const RENEW_BEFORE_MS = 720 * 3_600_000;

/** True when the certificate is in the renewal window or expired (the boundary itself is due, as decideRenewal says). */
export function isRenewalDue(notAfter: Date, now: Date, renewBeforeMs: number = RENEW_BEFORE_MS): boolean {
  return decideRenewal({ notAfter, now, renewBeforeMs, force: false }).renew;
}

export type RenewalDecision =
  | { renew: true; reason: 'forced' | 'expires-soon' | 'expired' | 'missing' }
  | { renew: false; reason: 'valid'; remainingMs: number };

export interface RenewalInput {
  /** The current certificate's notAfter; undefined when there is no certificate (or it cannot be read). */
  notAfter: Date | undefined;
  now: Date;
  /** 0 renews only an expired certificate. */
  renewBeforeMs: number;
  force: boolean;
}

export function decideRenewal(input: RenewalInput): RenewalDecision {
  const { notAfter, now, renewBeforeMs, force } = input;
  // Programming errors, not user errors: the CLI parses --renew-before before it gets here.
  if (!Number.isFinite(renewBeforeMs) || renewBeforeMs < 0) throw new RangeError(`renewBeforeMs must be >= 0, got ${renewBeforeMs}`);
  if (Number.isNaN(now.getTime())) throw new RangeError('now is an invalid Date');

  // "missing" outranks "forced": there is nothing to replace, and saying so is the more useful report
  if (notAfter === undefined || Number.isNaN(notAfter.getTime())) return { renew: true, reason: 'missing' };
  if (force) return { renew: true, reason: 'forced' };
  const remainingMs = notAfter.getTime() - now.getTime();
  // notAfter itself is still inside the validity period (RFC 5280 4.1.2.5), so expiry is strictly after it
  if (remainingMs < 0) return { renew: true, reason: 'expired' };
  if (remainingMs <= renewBeforeMs) return { renew: true, reason: 'expires-soon' };
  return { renew: false, reason: 'valid', remainingMs };
}

/**
 * One doctor finding: what was checked, how it stands, what it means, and the exact fix. Stable ids (for
 * --json and scripts): "<area>.<check>" or "<area>.<check>.<route>".
 */
export type DoctorStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface DoctorFinding {
  id: string;
  status: DoctorStatus;
  /** One line: what was found. */
  message: string;
  /** The exact fix (a command or an edit); empty when there is nothing to do. */
  fix: string;
}

export const ok = (id: string, message: string): DoctorFinding => ({ id, status: 'ok', message, fix: '' });
export const warn = (id: string, message: string, fix: string): DoctorFinding => ({ id, status: 'warn', message, fix });
export const fail = (id: string, message: string, fix: string): DoctorFinding => ({ id, status: 'fail', message, fix });
export const skip = (id: string, message: string, fix = ''): DoctorFinding => ({ id, status: 'skip', message, fix });

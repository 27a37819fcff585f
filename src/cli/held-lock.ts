/**
 * The deployment lock a command holds, if any (command-lock.ts sets it): a module without imports, so
 * run.ts can release it after any command without loading the lock's code for `--help`.
 */
let release: (() => Promise<void>) | undefined;

export function setHeldLock(next: (() => Promise<void>) | undefined): void {
  release = next;
}

export async function releaseHeldLock(): Promise<void> {
  const r = release;
  release = undefined;
  if (r) await r();
}

/** A first init takes its lock late (command-lock.ts lockLate): set by the hook, consumed by init. */
let late = false;

export function expectLateLock(value: boolean): void {
  late = value;
}

export function takeLateLockExpectation(): boolean {
  const was = late;
  late = false;
  return was;
}

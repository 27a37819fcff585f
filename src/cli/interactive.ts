/**
 * Prompts are only for a person at a terminal: never under CI, never when stdin is a pipe, never with
 * --non-interactive. In those cases a missing value is an error naming its flag.
 */
export function isInteractive(options: { nonInteractive?: boolean }): boolean {
  if (options.nonInteractive) return false;
  if (process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0') return false;
  return Boolean(process.stdin.isTTY);
}

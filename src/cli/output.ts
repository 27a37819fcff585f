/**
 * Terminal output: the only module that writes to stdout/stderr for humans. Colour only on a TTY and
 * never when NO_COLOR is set.
 */
const useColour = (stream: NodeJS.WriteStream): boolean => Boolean(stream.isTTY) && !process.env.NO_COLOR;

const paint = (stream: NodeJS.WriteStream, code: number, text: string): string =>
  useColour(stream) ? `\u001b[${code}m${text}\u001b[0m` : text;

export function printError(message: string, hint?: string): void {
  process.stderr.write(`${paint(process.stderr, 31, 'error:')} ${message}\n`);
  if (hint) process.stderr.write(`${paint(process.stderr, 2, 'hint:')} ${hint}\n`);
}

export function printWarning(message: string): void {
  process.stderr.write(`${paint(process.stderr, 33, 'warning:')} ${message}\n`);
}

export function printLine(text = ''): void {
  process.stdout.write(`${text}\n`);
}

export function printStep(text: string): void {
  process.stdout.write(`${paint(process.stdout, 32, '✓')} ${text}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export const bold = (text: string): string => paint(process.stdout, 1, text);

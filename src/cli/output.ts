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

/**
 * --quiet: only what was asked for (lists, JSON, PEM, the final result lines) and errors; no progress
 * steps, no warnings. --verbose: also printVerbose lines (and a bug's stack trace).
 */
export type OutputLevel = 'quiet' | 'normal' | 'verbose';
let level: OutputLevel = 'normal';

export function setOutputLevel(next: OutputLevel): void {
  level = next;
}

export function printVerbose(text: string): void {
  if (level === 'verbose') process.stderr.write(`${paint(process.stderr, 2, text)}\n`);
}

export function printWarning(message: string): void {
  if (level === 'quiet') return;
  process.stderr.write(`${paint(process.stderr, 33, 'warning:')} ${message}\n`);
}

/** Progress that must not mix with a command's output on stdout (e.g. --json): stderr, silenced by --quiet. */
export function printNote(text: string): void {
  if (level === 'quiet') return;
  process.stderr.write(`${text}\n`);
}

export function printLine(text = ''): void {
  process.stdout.write(`${text}\n`);
}

export function printStep(text: string): void {
  if (level === 'quiet') return;
  process.stdout.write(`${paint(process.stdout, 32, '✓')} ${text}\n`);
}

export const bold = (text: string): string => paint(process.stdout, 1, text);

/**
 * The one shape of every `--json` report: camelCase keys (payloads of other APIs, such as a Messages API
 * body, are passed through as they are) and a schemaVersion, so scripts can tell an incompatible change.
 * The schemas are in docs/json.md, keyed by `report`.
 */
export const JSON_SCHEMA_VERSION = 1;

/** The way a report reaches stdout (printRecord below is the only other JSON there): with --json, nothing else is printed there. */
export function printReport(report: string, value: object): void {
  process.stdout.write(`${JSON.stringify({ schemaVersion: JSON_SCHEMA_VERSION, report, ...value }, null, 2)}\n`);
}

/**
 * The stream twin of printReport, for a command whose output never ends (logs --json): one compact JSON
 * object per line (NDJSON), so a reader can act on each as it arrives. Its record schema is in docs/json.md.
 */
export function printRecord(record: object): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

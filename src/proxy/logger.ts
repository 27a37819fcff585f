import type { LogLevel } from '../deployment/proxy-config.js';

/**
 * The proxy's structured log: one JSON object per line, `{time, level, msg, ...fields}`.
 *
 * The messages users grep for are fixed by docs/contract.md 3 ("route configured", "request started", "no route for
 * host", "tls handshake failed", "IP validation failed: <ip> is not a private address"); callers pass them
 * verbatim. Fields never carry bodies, Authorization or token values, or query strings.
 *
 * Lines are batched and written with one call: on Linux a write to a pipe (what Docker gives a container's
 * stdout) is synchronous and wakes the reader, and one write per event-loop turn still cost a tenth of the
 * proxy's CPU at 16 busy connections (a CPU profile of `npm run bench`). So info and debug lines wait up to
 * FLUSH_INTERVAL_MS (invisible to a person reading `docker compose logs -f`), warn and error lines go out at
 * the end of the current turn, and a batch of FLUSH_BYTES goes out at once, which bounds the buffer.
 * `flush()` writes what is pending at once (call it before exiting).
 */
export type LogFields = Record<string, unknown>;

export interface Logger {
  readonly level: LogLevel;
  isEnabled(level: LogLevel): boolean;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** Writes buffered lines now. */
  flush(): void;
}

export interface JsonLoggerOptions {
  /** Lines below this level are dropped. Default: info. */
  level?: LogLevel;
  /** Where lines go (each chunk is one or more complete lines). Default: process.stdout. */
  write?: (chunk: string) => void;
  /** Clock for the `time` field (tests). */
  now?: () => Date;
  /** Batch lines (default true). false writes every line at once. */
  batch?: boolean;
  /** How long an info or debug line may wait in the batch. Default FLUSH_INTERVAL_MS. */
  flushIntervalMs?: number;
}

/** The longest an info or debug line waits before it is written. */
export const FLUSH_INTERVAL_MS = 20;
/** A batch this large is written at once. */
export const FLUSH_BYTES = 64 * 1024;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createJsonLogger(options: JsonLoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const threshold = RANK[level];
  const write = options.write ?? ((chunk: string) => void process.stdout.write(chunk));
  // The ISO time is formatted once per millisecond, not once per line (a busy proxy writes several per ms).
  let lastMs = -1;
  let lastIso = '';
  const custom = options.now;
  const stamp = custom
    ? () => custom().toISOString()
    : () => {
        const ms = Date.now();
        if (ms !== lastMs) {
          lastMs = ms;
          lastIso = new Date(ms).toISOString();
        }
        return lastIso;
      };
  const batch = options.batch ?? true;
  const interval = options.flushIntervalMs ?? FLUSH_INTERVAL_MS;
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;

  const flush = (): void => {
    if (timer) clearTimeout(timer);
    if (immediate) clearImmediate(immediate);
    timer = undefined;
    immediate = undefined;
    if (pending === '') return;
    const chunk = pending;
    pending = '';
    try {
      write(chunk);
    } catch {
      // A closed stdout must never take the proxy down; the line is lost, nothing else can be done.
    }
  };

  const emit = (lvl: LogLevel, msg: string, fields: LogFields | undefined): void => {
    if (RANK[lvl] < threshold) return;
    const line = `${serialise(stamp(), lvl, msg, fields)}\n`;
    if (!batch) {
      pending += line;
      flush();
      return;
    }
    pending += line;
    if (pending.length >= FLUSH_BYTES) flush();
    else if (RANK[lvl] >= RANK.warn) immediate ??= setImmediate(flush).unref();
    else timer ??= setTimeout(flush, interval).unref();
  };

  return {
    level,
    isEnabled: (lvl) => RANK[lvl] >= threshold,
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    flush,
  };
}

/** A logger that drops everything (library default for embedders that do not want output). */
export const silentLogger: Logger = {
  level: 'error',
  isEnabled: () => false,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  flush: () => undefined,
};

function serialise(time: string, level: LogLevel, msg: string, fields: LogFields | undefined): string {
  // Built as text rather than JSON.stringify(record): the same output (envelope first, then the fields in
  // order, undefined skipped) without a temporary object per line. time and level need no escaping.
  let out = `{"time":"${time}","level":"${level}","msg":${JSON.stringify(msg)}`;
  if (fields) {
    for (const key in fields) {
      // The three envelope keys are reserved: a field cannot overwrite them.
      if (key === 'time' || key === 'level' || key === 'msg') continue;
      const value = fields[key];
      if (value === undefined) continue;
      let text: string | undefined;
      if (typeof value === 'string') text = JSON.stringify(value);
      else if (typeof value === 'number') text = Number.isFinite(value) ? String(value) : 'null';
      else if (typeof value === 'boolean') text = value ? 'true' : 'false';
      else text = JSON.stringify(value instanceof Error ? errorText(value) : value) as string | undefined;
      // What JSON.stringify leaves out of an object (functions, symbols) is left out here too.
      if (text === undefined) continue;
      out += `,${JSON.stringify(key)}:${text}`;
    }
  }
  return `${out}}`;
}

/** An error as a short string for a log field: the code when there is one, and the first line of the message. */
export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const message = err.message.split('\n')[0] ?? '';
    if (code && !message.includes(code)) return message ? `${code}: ${message}` : code;
    return message || err.name;
  }
  return String(err);
}

/** The path of a request target without its query string (query values may carry tokens). */
export function pathWithoutQuery(url: string | undefined): string {
  if (!url) return '';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

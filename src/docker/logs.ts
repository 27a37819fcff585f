import { asDockerError, statusCode, type DockerConnection } from './client.js';

/**
 * Container logs through the Engine API: Docker multiplexes stdout and stderr of a non-TTY container into
 * frames (8-byte header: stream, 0, 0, 0, big-endian length); these helpers split them back into lines.
 */
export type LogStream = 'stdout' | 'stderr';

export interface LogLine {
  stream: LogStream;
  /** One line, without the trailing newline (and without the timestamp when timestamps were asked for). */
  text: string;
  /** RFC 3339 with nanoseconds, when asked for. */
  time?: string;
}

/** Incremental demultiplexer: feed it chunks, get complete lines per stream. */
export class LogDemuxer {
  private pending: Buffer = Buffer.alloc(0);
  private partial: Record<LogStream, string> = { stdout: '', stderr: '' };

  constructor(
    private readonly onLine: (line: LogLine) => void,
    private readonly timestamps = false,
    /** A TTY container's log is not multiplexed. */
    private readonly raw = false,
  ) {}

  push(chunk: Buffer): void {
    if (this.raw) {
      this.text('stdout', chunk.toString('utf8'));
      return;
    }
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length >= 8) {
      const type = this.pending[0];
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + size) break;
      const payload = this.pending.subarray(8, 8 + size);
      this.pending = this.pending.subarray(8 + size);
      this.text(type === 2 ? 'stderr' : 'stdout', payload.toString('utf8'));
    }
  }

  /** Emits what is left without a newline. */
  end(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream]) this.emit(stream, this.partial[stream]);
      this.partial[stream] = '';
    }
  }

  private text(stream: LogStream, text: string): void {
    const all = this.partial[stream] + text;
    const lines = all.split('\n');
    this.partial[stream] = lines.pop() ?? '';
    for (const line of lines) this.emit(stream, line.replace(/\r$/, ''));
  }

  private emit(stream: LogStream, line: string): void {
    if (this.timestamps) {
      const sp = line.indexOf(' ');
      if (sp > 0 && /^\d{4}-\d\d-\d\dT/.test(line)) {
        this.onLine({ stream, time: line.slice(0, sp), text: line.slice(sp + 1) });
        return;
      }
    }
    this.onLine({ stream, text: line });
  }
}

export interface ReadLogsOptions {
  /** Only lines logged at or after this time. */
  since?: Date;
  /** Only the last N lines. */
  tail?: number;
  /** Docker's TTY flag of the container (its log is then not multiplexed). */
  tty?: boolean;
}

/** Compares Docker's RFC 3339 nano timestamps with a Date (ms precision is enough for "since start"). */
export function loggedAtOrAfter(time: string | undefined, since: Date): boolean {
  if (!time) return true;
  const ms = Date.parse(time);
  return Number.isNaN(ms) || ms >= since.getTime() - 1;
}

/** The container's log so far, demultiplexed, as lines. */
export async function readContainerLogs(conn: DockerConnection, id: string, options: ReadLogsOptions = {}): Promise<LogLine[]> {
  let body: Buffer;
  try {
    const out = (await conn.docker.getContainer(id).logs({
      stdout: true,
      stderr: true,
      follow: false,
      timestamps: true,
      ...(options.tail !== undefined ? { tail: options.tail } : {}),
      ...(options.since ? { since: Math.floor(options.since.getTime() / 1000) } : {}),
    })) as unknown as Buffer | string;
    body = Buffer.isBuffer(out) ? out : Buffer.from(out, 'utf8');
  } catch (err) {
    if (statusCode(err) === 404) return [];
    throw asDockerError(err, conn, `reading the logs of ${id.slice(0, 12)}`);
  }
  const lines: LogLine[] = [];
  const demux = new LogDemuxer((l) => lines.push(l), true, options.tty ?? false);
  demux.push(body);
  demux.end();
  return options.since ? lines.filter((l) => loggedAtOrAfter(l.time, options.since!)) : lines;
}

export interface FollowLogsOptions {
  tail?: number;
  since?: Date;
  follow: boolean;
  tty?: boolean;
  signal?: AbortSignal;
  onLine: (line: LogLine) => void;
}

/** Streams one container's log (following it when asked) until it ends or the signal aborts. */
export async function streamContainerLogs(conn: DockerConnection, id: string, options: FollowLogsOptions): Promise<void> {
  if (!options.follow) {
    for (const line of await readContainerLogs(conn, id, { tail: options.tail, since: options.since, tty: options.tty })) options.onLine(line);
    return;
  }
  let stream: NodeJS.ReadableStream;
  try {
    stream = (await conn.docker.getContainer(id).logs({
      stdout: true,
      stderr: true,
      follow: true,
      timestamps: true,
      ...(options.tail !== undefined ? { tail: options.tail } : {}),
      ...(options.since ? { since: Math.floor(options.since.getTime() / 1000) } : {}),
    })) as NodeJS.ReadableStream;
  } catch (err) {
    if (statusCode(err) === 404) return;
    throw asDockerError(err, conn, `following the logs of ${id.slice(0, 12)}`);
  }
  const demux = new LogDemuxer(options.onLine, true, options.tty ?? false);
  await new Promise<void>((resolve) => {
    const done = (): void => {
      demux.end();
      options.signal?.removeEventListener('abort', onAbort);
      resolve();
    };
    const onAbort = (): void => {
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      done();
    };
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    stream.on('data', (chunk: Buffer) => demux.push(chunk));
    stream.on('end', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

/** cloudflared's line for each tunnel connection it registers with the edge (four when at full strength). */
export const REGISTERED_PATTERN = /Registered tunnel connection/;
export const FULL_STRENGTH_CONNECTIONS = 4;

/**
 * Connections currently registered according to the log: each "Registered tunnel connection connIndex=N"
 * adds N, "Unregistered tunnel connection connIndex=N" / "Connection terminated ... connIndex=N" removes it
 * (cloudflared re-registers a dropped connection under the same index). Lines without an index count once.
 */
export function countRegistrations(lines: readonly LogLine[]): number {
  const active = new Set<string>();
  let unindexed = 0;
  for (const { text } of lines) {
    const idx = /connIndex=(\d+)/.exec(text)?.[1];
    if (/Unregistered tunnel connection|Connection terminated/i.test(text)) {
      if (idx !== undefined) active.delete(idx);
      else if (unindexed > 0) unindexed--;
    } else if (REGISTERED_PATTERN.test(text)) {
      if (idx !== undefined) active.add(idx);
      else unindexed++;
    }
  }
  return active.size + unindexed;
}

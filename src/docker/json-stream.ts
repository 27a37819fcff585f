/**
 * The JSON-lines progress streams of `POST /images/create` (pull) and `POST /build`. Docker answers 200 and
 * then reports failures INSIDE the stream (`{"error": "...", "errorDetail": {...}}`): those are errors,
 * not progress, and a stream that ends with one failed.
 */
export interface DockerStreamMessage {
  id?: string;
  status?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  stream?: string;
  aux?: { ID?: string };
  error?: string;
  errorDetail?: { message?: string; code?: number };
}

export class StreamError extends Error {
  constructor(
    message: string,
    readonly detail: DockerStreamMessage,
  ) {
    super(message);
    this.name = 'StreamError';
  }
}

export class StreamStalledError extends Error {
  constructor(readonly idleMs: number) {
    super(`no progress for ${Math.round(idleMs / 1000)}s`);
    this.name = 'StreamStalledError';
  }
}

export interface ReadJsonStreamOptions {
  onMessage: (msg: DockerStreamMessage) => void;
  /** Fail when nothing arrives for this long (default: never). */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
}

/** The error text of a message, when it is an error. */
export function streamErrorText(msg: DockerStreamMessage): string | undefined {
  if (msg.errorDetail?.message) return msg.errorDetail.message;
  if (typeof msg.error === 'string' && msg.error) return msg.error;
  if (msg.errorDetail) return 'unknown error';
  return undefined;
}

/**
 * Reads the stream to its end, calling onMessage for each object; rejects with StreamError at the first
 * error message (after passing it to onMessage), with StreamStalledError when idle too long.
 */
export function readJsonStream(stream: NodeJS.ReadableStream, options: ReadJsonStreamOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let buffer = '';
    let settled = false;
    let idle: NodeJS.Timeout | undefined;
    const destroy = (): void => {
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
    };
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(idle);
      options.signal?.removeEventListener('abort', onAbort);
      if (err) {
        destroy();
        reject(err);
      } else resolve();
    };
    const armIdle = (): void => {
      if (!options.idleTimeoutMs) return;
      clearTimeout(idle);
      idle = setTimeout(() => finish(new StreamStalledError(options.idleTimeoutMs!)), options.idleTimeoutMs);
    };
    const onAbort = (): void => finish(options.signal?.reason instanceof Error ? options.signal.reason : new Error('aborted'));
    options.signal?.addEventListener('abort', onAbort);

    const handleLine = (line: string): void => {
      const text = line.trim();
      if (!text) return;
      let msg: DockerStreamMessage;
      try {
        msg = JSON.parse(text) as DockerStreamMessage;
      } catch {
        msg = { stream: `${text}\n` };
      }
      options.onMessage(msg);
      const error = streamErrorText(msg);
      if (error !== undefined) finish(new StreamError(error, msg));
    };

    armIdle();
    stream.on('data', (chunk: Buffer | string) => {
      if (settled) return;
      armIdle();
      buffer += chunk.toString();
      // Docker separates objects with \r\n or \n; an object never spans a newline (JSON strings escape them).
      let nl: number;
      while (!settled && (nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        handleLine(line);
      }
    });
    stream.on('end', () => {
      if (!settled && buffer) handleLine(buffer);
      finish();
    });
    stream.on('error', (err: Error) => finish(err));
    stream.on('close', () => {
      if (!settled && buffer) handleLine(buffer);
      finish();
    });
  });
}

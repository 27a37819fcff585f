import { readFileSync } from 'node:fs';
import Docker from 'dockerode';
import { EnvironmentError, UserError } from '../errors.js';
import { defaultSocketPath, endpointUnsupported, resolveDockerEndpoint, type DockerEndpoint } from './endpoint.js';

/**
 * The connection to the Docker Engine API, and the one place connection failures become one clear line:
 * no socket (not running / not installed), permission denied (docker group), nothing listening, timeouts.
 */
export interface DockerConnection {
  docker: Docker;
  /** For messages: "unix:///var/run/docker.sock", the DOCKER_HOST value or the context's host. */
  endpoint: string;
  /** The unix socket, when the endpoint is one. */
  socketPath?: string;
  /** Where the endpoint came from (DOCKER_HOST, DOCKER_CONTEXT, the docker CLI's current context, default). */
  source?: DockerEndpoint['source'];
  /** The docker context's name, when one chose the endpoint. */
  context?: string;
}

export interface ConnectOptions {
  /** Where DOCKER_HOST / DOCKER_CONTEXT / DOCKER_CONFIG come from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Where ~/.docker is looked for (default the user's home). */
  homeDir?: string;
}

export { defaultSocketPath };

function readPem(file: string | undefined): Buffer | undefined {
  if (!file) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new EnvironmentError(`cannot read the Docker TLS file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, 'check DOCKER_CERT_PATH or the docker context\'s TLS files', undefined, 'DOCKER_TLS_UNREADABLE');
  }
}

/**
 * A dockerode client for the endpoint the docker CLI would use (endpoint.ts: DOCKER_HOST, DOCKER_CONTEXT,
 * the current docker context, the default socket). Does not connect yet.
 */
export function connectDocker(options: ConnectOptions = {}): DockerConnection {
  const e = resolveDockerEndpoint({ env: options.env, homeDir: options.homeDir });
  const meta = { source: e.source, ...(e.context ? { context: e.context } : {}) };
  const host = e.host;
  if (host.startsWith('unix://') || host.startsWith('/')) {
    const socketPath = (host.startsWith('/') ? host : host.slice('unix://'.length)) || defaultSocketPath(options.homeDir);
    return { docker: new Docker({ socketPath }), endpoint: `unix://${socketPath}`, socketPath, ...meta };
  }
  const url = (() => {
    try {
      return new URL(host.includes('://') ? host : `tcp://${host}`);
    } catch {
      throw endpointUnsupported(host, e.source);
    }
  })();
  if (url.protocol === 'tcp:' || url.protocol === 'http:' || url.protocol === 'https:') {
    if (e.tls) {
      return {
        docker: new Docker({
          host: url.hostname,
          port: Number(url.port || 2376),
          protocol: 'https',
          ca: readPem(e.tls.caFile),
          cert: readPem(e.tls.certFile),
          key: readPem(e.tls.keyFile),
          ...(e.tls.verify ? {} : { rejectUnauthorized: false }),
        } as Docker.DockerOptions),
        endpoint: host,
        ...meta,
      };
    }
    return { docker: new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: 'http' }), endpoint: host, ...meta };
  }
  if (url.protocol === 'ssh:') {
    const env = options.env ?? process.env;
    return {
      docker: new Docker({
        protocol: 'ssh',
        host: url.hostname,
        port: Number(url.port || 22),
        username: decodeURIComponent(url.username) || undefined,
        sshOptions: { agent: env.SSH_AUTH_SOCK },
      } as Docker.DockerOptions),
      endpoint: host,
      ...meta,
    };
  }
  throw endpointUnsupported(host, e.source);
}

const CONNECTION_CODES = new Set(['ENOENT', 'EACCES', 'EPERM', 'ECONNREFUSED', 'ENOTSOCK', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'EPIPE']);

/** True for an error that means "could not talk to the daemon at all" (not an API answer). */
export function isConnectionError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && CONNECTION_CODES.has(code) && (err as { statusCode?: number }).statusCode === undefined;
}

/** One line for a connection failure, by cause. */
export function connectionError(err: unknown, conn: Pick<DockerConnection, 'endpoint' | 'socketPath'>): EnvironmentError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const where = conn.socketPath ?? conn.endpoint;
  switch (code) {
    case 'ENOENT':
      return new EnvironmentError(
        `Docker is not running or not installed: no Docker socket at ${where}`,
        'install Docker and start it (sudo systemctl start docker), or point DOCKER_HOST at the daemon',
        err,
        'DOCKER_NOT_RUNNING',
      );
    case 'EACCES':
    case 'EPERM':
      return new EnvironmentError(
        `permission denied connecting to the Docker socket ${where}`,
        'add yourself to the docker group (sudo usermod -aG docker $USER, then log in again) or use sudo',
        err,
        'DOCKER_PERMISSION_DENIED',
      );
    case 'ECONNREFUSED':
      return new EnvironmentError(
        conn.socketPath ? `Docker is not running: nothing listens on ${where}` : `Docker is not reachable at ${where}: connection refused`,
        conn.socketPath ? 'start the Docker daemon (sudo systemctl start docker)' : 'check DOCKER_HOST and that the daemon listens there',
        err,
        'DOCKER_UNREACHABLE',
      );
    case 'ENOTSOCK':
      return new EnvironmentError(`${where} is not a socket`, 'point DOCKER_HOST at the Docker daemon socket', err, 'DOCKER_HOST_INVALID');
    default:
      return new EnvironmentError(
        `cannot reach Docker at ${conn.endpoint}: ${code ?? (err as Error)?.message ?? String(err)}`,
        'check that the Docker daemon is running and DOCKER_HOST points at it',
        err,
        'DOCKER_UNREACHABLE',
      );
  }
}

/** The message Docker gave with an API error (dockerode puts the JSON body in err.json). */
export function apiMessage(err: unknown): string {
  const e = err as { json?: { message?: string } | string | null; reason?: string; message?: string; statusCode?: number };
  if (e?.json && typeof e.json === 'object' && typeof e.json.message === 'string') return e.json.message;
  if (typeof e?.json === 'string' && e.json.trim()) return e.json.trim();
  const msg = e?.message ?? String(err);
  return msg.replace(/^\(HTTP code \d+\)\s*[a-z ]*-\s*/i, '').trim() || msg;
}

export function statusCode(err: unknown): number | undefined {
  return (err as { statusCode?: number } | undefined)?.statusCode;
}

/**
 * Wraps a Docker API call: connection failures become the one-line EnvironmentError; API errors become
 * "<what> failed: <Docker's message>". UserErrors pass through.
 */
export async function dockerCall<T>(conn: DockerConnection, what: string, call: () => Promise<T>, hint?: string): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw asDockerError(err, conn, what, hint);
  }
}

export function asDockerError(err: unknown, conn: DockerConnection, what: string, hint?: string): UserError {
  if (err instanceof UserError) return err;
  if (isConnectionError(err)) return connectionError(err, conn);
  return new EnvironmentError(`${what} failed: ${apiMessage(err)}`, hint ?? 'see the Docker daemon log (journalctl -u docker) for details', err, 'DOCKER_API_FAILED');
}

/** Pings the daemon within timeoutMs; throws the one-line EnvironmentError when it cannot be reached. */
export async function pingDocker(conn: DockerConnection, timeoutMs = 10_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new EnvironmentError(`Docker at ${conn.endpoint} did not answer within ${Math.round(timeoutMs / 1000)}s`, 'check that the Docker daemon is healthy (docker info)', undefined, 'DOCKER_TIMEOUT')),
      timeoutMs,
    );
  });
  try {
    await Promise.race([conn.docker.ping(), timeout]);
  } catch (err) {
    if (err instanceof UserError) throw err;
    if (isConnectionError(err)) throw connectionError(err, conn);
    throw new EnvironmentError(`Docker at ${conn.endpoint} answered the ping with an error: ${apiMessage(err)}`, 'check the daemon (docker info)', err, 'DOCKER_API_FAILED');
  } finally {
    clearTimeout(timer);
  }
}

export interface DaemonInfo {
  serverVersion: string;
  rootless: boolean;
  securityOptions: string[];
  /** Docker's root directory, for messages. */
  dockerRootDir?: string;
}

/** `docker info`, reduced to what the preflight needs. A rootless daemon lists "name=rootless" in SecurityOptions. */
export async function daemonInfo(conn: DockerConnection): Promise<DaemonInfo> {
  const info = (await dockerCall(conn, 'docker info', () => conn.docker.info())) as {
    ServerVersion?: string;
    SecurityOptions?: string[] | null;
    DockerRootDir?: string;
  };
  const securityOptions = info.SecurityOptions ?? [];
  return {
    serverVersion: info.ServerVersion ?? 'unknown',
    rootless: securityOptions.some((o) => o.split(',').includes('name=rootless')),
    securityOptions,
    dockerRootDir: info.DockerRootDir,
  };
}

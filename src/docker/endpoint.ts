import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EnvironmentError, ExitCode, UserError } from '../errors.js';

/**
 * Which Docker daemon to talk to, chosen as the docker CLI chooses it: DOCKER_HOST, then DOCKER_CONTEXT,
 * then the current context of the docker config (DOCKER_CONFIG or ~/.docker: config.json's currentContext,
 * described by contexts/meta/<sha256(name)>/meta.json, TLS material in contexts/tls/<sha256(name)>/docker/),
 * then the default socket. So `docker context use colima` moves mcp-tunnel with the docker CLI.
 */
export interface DockerEndpoint {
  /** unix:///path, tcp://host:port, ssh://user@host */
  host: string;
  /** Where the choice came from, for status/doctor. */
  source: 'DOCKER_HOST' | 'DOCKER_CONTEXT' | 'docker context' | 'default';
  /** The context's name, when a context chose it. */
  context?: string;
  /** TLS files (PEM paths) and whether to verify the daemon, for tcp endpoints that use TLS. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string; verify: boolean };
}

export interface ResolveOptions {
  env?: NodeJS.ProcessEnv;
  homeDir?: string;
}

export function defaultSocketPath(homeDir = os.homedir()): string {
  const user = path.join(homeDir, '.docker', 'run', 'docker.sock');
  return existsSync(user) ? user : '/var/run/docker.sock';
}

const contextError = (message: string, hint: string, code: string): UserError => new UserError(message, { hint, code, exitCode: ExitCode.environment });

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw contextError(`cannot read ${file}: ${(err as Error).message.split('\n')[0]}`, 'fix or remove the file (the docker CLI reads it too)', 'DOCKER_CONFIG_UNREADABLE');
  }
}

function tlsFiles(dir: string): DockerEndpoint['tls'] | undefined {
  const file = (name: string): string | undefined => (existsSync(path.join(dir, name)) ? path.join(dir, name) : undefined);
  const caFile = file('ca.pem');
  const certFile = file('cert.pem');
  const keyFile = file('key.pem');
  return caFile || certFile || keyFile ? { caFile, certFile, keyFile, verify: true } : undefined;
}

function fromContext(configDir: string, name: string, source: DockerEndpoint['source'], homeDir: string): DockerEndpoint {
  if (name === 'default') return { host: `unix://${defaultSocketPath(homeDir)}`, source, context: name };
  const id = createHash('sha256').update(name).digest('hex');
  const metaFile = path.join(configDir, 'contexts', 'meta', id, 'meta.json');
  const meta = readJson(metaFile) as { Endpoints?: { docker?: { Host?: string; SkipTLSVerify?: boolean } } } | undefined;
  if (meta === undefined) {
    throw contextError(
      `docker context "${name}" (from ${source === 'DOCKER_CONTEXT' ? 'DOCKER_CONTEXT' : `${path.join(configDir, 'config.json')}`}) does not exist`,
      'list the contexts with docker context ls, then docker context use NAME (or unset DOCKER_CONTEXT)',
      'DOCKER_CONTEXT_NOT_FOUND',
    );
  }
  const host = meta.Endpoints?.docker?.Host;
  if (typeof host !== 'string' || !host) {
    throw contextError(`docker context "${name}" has no docker endpoint (${metaFile})`, 'docker context inspect NAME shows it; recreate the context', 'DOCKER_CONTEXT_INVALID');
  }
  const tls = tlsFiles(path.join(configDir, 'contexts', 'tls', id, 'docker'));
  const skip = meta.Endpoints?.docker?.SkipTLSVerify === true;
  return { host, source, context: name, ...(tls ? { tls: { ...tls, verify: !skip } } : {}) };
}

export function resolveDockerEndpoint(options: ResolveOptions = {}): DockerEndpoint {
  const env = options.env ?? process.env;
  const homeDir = options.homeDir ?? os.homedir();
  const dockerHost = env.DOCKER_HOST?.trim();
  if (dockerHost) {
    const certPath = env.DOCKER_CERT_PATH?.trim() || path.join(homeDir, '.docker');
    const verify = env.DOCKER_TLS_VERIFY !== undefined && env.DOCKER_TLS_VERIFY !== '' && env.DOCKER_TLS_VERIFY !== '0';
    const tls = verify || /:2376\/?$/.test(dockerHost) || dockerHost.startsWith('https://') ? (tlsFiles(certPath) ?? { verify }) : undefined;
    return { host: dockerHost, source: 'DOCKER_HOST', ...(tls ? { tls: { ...tls, verify } } : {}) };
  }
  const configDir = env.DOCKER_CONFIG?.trim() || path.join(homeDir, '.docker');
  const fromEnv = env.DOCKER_CONTEXT?.trim();
  if (fromEnv) return fromContext(configDir, fromEnv, 'DOCKER_CONTEXT', homeDir);
  const config = readJson(path.join(configDir, 'config.json')) as { currentContext?: unknown } | undefined;
  const current = typeof config?.currentContext === 'string' ? config.currentContext.trim() : '';
  if (current && current !== 'default') return fromContext(configDir, current, 'docker context', homeDir);
  return { host: `unix://${defaultSocketPath(homeDir)}`, source: 'default' };
}

/** One phrase for status/doctor: "unix:///var/run/docker.sock (docker context colima)". */
export function describeEndpoint(e: Pick<DockerEndpoint, 'host' | 'source' | 'context'>): string {
  switch (e.source) {
    case 'DOCKER_HOST':
      return `${e.host} (DOCKER_HOST)`;
    case 'DOCKER_CONTEXT':
      return `${e.host} (DOCKER_CONTEXT=${e.context})`;
    case 'docker context':
      return `${e.host} (docker context ${e.context})`;
    default:
      return `${e.host} (default)`;
  }
}

export function endpointUnsupported(host: string, source: DockerEndpoint['source']): EnvironmentError {
  return new EnvironmentError(
    `the Docker endpoint "${host}" (${source}) is not one mcp-tunnel can use`,
    'use unix:///var/run/docker.sock, tcp://HOST:PORT or ssh://USER@HOST, or unset DOCKER_HOST / choose another docker context',
    undefined, 'DOCKER_HOST_INVALID',
  );
}

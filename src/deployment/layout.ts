import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * Where everything lives in a deployment directory. data/ keeps the setup component's layout
 * (docs/contract.md §4) so the official setup container and mcp-tunnel can share a directory.
 */
export interface DeploymentPaths {
  dir: string;
  /** The compose file that is there (compose.yaml, docker-compose.yaml, ...), else where init writes compose.yaml. */
  compose: string;
  env: string;
  envPrevious: string;
  gitignore: string;
  configDir: string;
  proxyConfig: string;
  buildDir: string;
  dataDir: string;
  caCert: string;
  caKey: string;
  tlsCert: string;
  tlsKey: string;
  tunnelId: string;
  tunnelDomain: string;
  tunnelToken: string;
  /** CA bundle for https upstreams (init --upstream-ca-file). */
  upstreamCa: string;
}

/**
 * Compose's file names in docker-compose 1.29's order of preference. Anthropic's Compose guide writes
 * docker-compose.yaml, mcp-tunnel writes compose.yaml: a directory has one of them.
 */
export const COMPOSE_FILENAMES = ['docker-compose.yml', 'docker-compose.yaml', 'compose.yml', 'compose.yaml'] as const;
/** What init writes when the directory has no compose file yet. */
export const DEFAULT_COMPOSE_FILENAME = 'compose.yaml';

/** The one place the compose file's name is resolved: the first that exists, else compose.yaml. */
export function resolveComposeFile(dir: string): string {
  const root = path.resolve(dir);
  const found = COMPOSE_FILENAMES.find((f) => existsSync(path.join(root, f)));
  return path.join(root, found ?? DEFAULT_COMPOSE_FILENAME);
}

export function deploymentPaths(dir: string): DeploymentPaths {
  const root = path.resolve(dir);
  const data = path.join(root, 'data');
  return {
    dir: root,
    compose: resolveComposeFile(root),
    env: path.join(root, '.env'),
    envPrevious: path.join(root, '.env.previous'),
    gitignore: path.join(root, '.gitignore'),
    configDir: path.join(root, 'config'),
    proxyConfig: path.join(root, 'config', 'mcp-proxy.yaml'),
    buildDir: path.join(root, 'build'),
    dataDir: data,
    caCert: path.join(data, 'ca.crt'),
    caKey: path.join(data, 'ca.key'),
    tlsCert: path.join(data, 'tls.crt'),
    tlsKey: path.join(data, 'tls.key'),
    tunnelId: path.join(data, 'tunnel-id'),
    tunnelDomain: path.join(data, 'tunnel-domain'),
    tunnelToken: path.join(data, 'tunnel-token'),
    upstreamCa: path.join(data, 'upstream-ca.crt'),
  };
}

/** Paths as the containers see them (the proxy mounts ./data at /data, read-only). */
export const CONTAINER_PATHS = {
  config: '/etc/mcp-gateway/config.yaml',
  tlsCert: '/data/tls.crt',
  tlsKey: '/data/tls.key',
  upstreamCa: '/data/upstream-ca.crt',
} as const;

/** Compose's default project name is the directory name, normalised the way compose does it. */
export function projectNameFor(dir: string): string {
  const base = path.basename(path.resolve(dir)).toLowerCase().replace(/[^a-z0-9_-]/g, '');
  const trimmed = base.replace(/^[^a-z0-9]+/, '');
  return trimmed || 'mcp-tunnel';
}

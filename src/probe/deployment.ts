import fs from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, UserError, ValidationError } from '../errors.js';
import { deploymentPaths } from '../deployment/layout.js';
import { requireDeploymentDir } from '../deployment/deployment-dir.js';
import { lookupRoute, parseProxyConfig, type ProxyConfig } from '../deployment/proxy-config.js';
import { tunnelHost } from './tunnel-protocol.js';

/** What the probe needs from a deployment directory: the tunnel domain, the routes and the CA. */
export interface ProbeDeployment {
  dir: string;
  configFile: string;
  caFile: string;
  domain: string;
  caPem: string;
  config: ProxyConfig;
  /** Route keys in file order. */
  routes: string[];
}

const DIR_HINT = 'run in the deployment directory, or pass --dir DIR (or set MCP_TUNNEL_DIR); mcp-tunnel init creates it';

async function readText(file: string, what: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ValidationError(`no ${what} at ${file}`, DIR_HINT, 'DEPLOYMENT_FILE_MISSING');
    if (code === 'EACCES') throw new ValidationError(`cannot read ${what} at ${file}: permission denied`, 'run as a user who can read it', 'DEPLOYMENT_FILE_UNREADABLE');
    if (code === 'EISDIR') throw new ValidationError(`${file} is a directory, not ${what}`, DIR_HINT, 'DEPLOYMENT_FILE_IS_DIRECTORY');
    throw err;
  }
}

/**
 * Reads DIR/config/mcp-proxy.yaml (tunnel_domain, routes) and DIR/data/ca.crt; the domain falls back to
 * DIR/data/tunnel-domain. Every problem is a ValidationError/ConfigError naming the file (exit 2).
 */
export async function loadProbeDeployment(dir: string): Promise<ProbeDeployment> {
  const paths = deploymentPaths(dir);
  await requireDeploymentDir(paths.dir, DIR_HINT);

  const configText = await readText(paths.proxyConfig, 'proxy config');
  let config: ProxyConfig;
  try {
    config = parseProxyConfig(configText);
  } catch (err) {
    if (err instanceof UserError) throw new ConfigError(`${rel(paths.dir, paths.proxyConfig)}: ${err.message}`, err.hint, err.code);
    throw err;
  }
  const caPem = await readText(paths.caCert, 'CA certificate');
  if (!caPem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ValidationError(`${paths.caCert} holds no PEM certificate`, 'data/ca.crt must be the CA certificate registered with the tunnel (-----BEGIN CERTIFICATE-----)', 'CA_CERT_INVALID');
  }
  let domain = config.tunnelDomain;
  if (!domain) {
    const fromFile = await fs.readFile(paths.tunnelDomain, 'utf8').catch(() => '');
    domain = fromFile.split('\n')[0]?.trim().toLowerCase() || undefined;
  }
  if (!domain) {
    throw new ValidationError(
      `the tunnel domain is unknown: neither tunnel_domain in ${rel(paths.dir, paths.proxyConfig)} nor data/tunnel-domain gives it`,
      'set tunnel_domain in the proxy config to the domain shown for the tunnel in the Console',
      'TUNNEL_DOMAIN_UNKNOWN',
    );
  }
  return { dir: paths.dir, configFile: paths.proxyConfig, caFile: paths.caCert, domain, caPem, config, routes: [...config.routes.keys()] };
}

/**
 * Resolves the ROUTE argument against the configured routes: a bare name ("docs") or a full hostname
 * ("docs.abcd1234.tunnel.anthropic.com"). Unknown -> one line listing what is configured.
 */
export function resolveProbeRoute(dep: Pick<ProbeDeployment, 'config' | 'domain' | 'routes'>, route: string): { key: string; host: string } {
  const r = route.trim().toLowerCase().replace(/\.$/, '');
  const configured = dep.routes.length ? dep.routes.join(', ') : '(none)';
  const hint = `configured routes: ${configured}; add one with mcp-tunnel routes add NAME URL`;
  if (!r || !/^[a-z0-9.-]+$/.test(r)) throw new ValidationError(`invalid route "${route}": expected a route name such as docs`, hint, 'ROUTE_NAME_INVALID');
  const host = tunnelHost(r, dep.domain);
  const hit = lookupRoute({ routes: dep.config.routes, tunnelDomain: dep.domain }, host);
  if (!hit) throw new ValidationError(`no route "${route}" in config/mcp-proxy.yaml`, hint, 'ROUTE_NOT_FOUND');
  return { key: hit.key, host };
}

function rel(dir: string, file: string): string {
  return path.relative(dir, file) || file;
}

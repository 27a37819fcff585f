import YAML from 'yaml';
import { readTextIfExists } from './atomic-file.js';
import { parseEnvFile, readEnvTextIfExists } from './env-file.js';
import type { DeploymentPaths } from './layout.js';
import { BUILTIN_PROXY_IMAGE_REPO } from './images.js';
import { COMPOSE_SERVICES } from './compose-file.js';
import { ConfigError } from '../errors.js';
import { ROUTES_LIST_PROBLEM } from './proxy-config.js';
import { parseDuration } from './duration.js';

/**
 * What an earlier init (or the official setup component) left in a deployment directory. A re-run
 * starts from this, so `mcp-tunnel init` with no flags reuses everything and changes nothing.
 */
export interface ExistingDeployment {
  tunnelId?: string;
  tunnelDomain?: string;
  tunnelToken?: string;
  routes?: Array<{ name: string; url: string }>;
  /** Why the routes of an existing config could not be read (a YAML list, broken YAML): a re-run without --route says this, not "missing --route". */
  routesProblem?: ConfigError;
  allowedIps?: string[];
  upstreamTls?: { caFile?: string; includeSystemCas?: boolean };
  engine?: 'official' | 'builtin';
  /** How long compose lets the proxy drain before it kills it (its stop_grace_period; compose's default 10s). */
  proxyStopGraceMs?: number;
  envText?: string;
  gitignoreText?: string;
}

const firstLine = (text: string | undefined): string | undefined => text?.split('\n')[0]?.trim() || undefined;

export async function readExistingDeployment(paths: DeploymentPaths): Promise<ExistingDeployment> {
  const [tunnelId, tunnelDomain, tokenFile, envText, configText, composeText, gitignoreText] = await Promise.all([
    readTextIfExists(paths.tunnelId),
    readTextIfExists(paths.tunnelDomain),
    readTextIfExists(paths.tunnelToken),
    readEnvTextIfExists(paths.env),
    readTextIfExists(paths.proxyConfig),
    readTextIfExists(paths.compose),
    readTextIfExists(paths.gitignore),
  ]);
  const env = envText === undefined ? {} : parseEnvFile(envText);
  const result: ExistingDeployment = {
    tunnelId: firstLine(tunnelId),
    tunnelDomain: firstLine(tunnelDomain),
    tunnelToken: env.TUNNEL_TOKEN || firstLine(tokenFile),
    envText,
    gitignoreText,
  };
  const fromConfig = routesFrom(configText);
  result.routes = fromConfig.routes;
  result.routesProblem = fromConfig.routesProblem;
  result.allowedIps = fromConfig.allowedIps;
  result.upstreamTls = fromConfig.upstreamTls;
  result.tunnelDomain ??= fromConfig.tunnelDomain;
  if (composeText !== undefined) {
    result.engine = engineFrom(composeText);
    result.proxyStopGraceMs = stopGraceFrom(composeText);
  }
  return result;
}

/** The engine is whatever image the mcp-proxy service runs (other services may use the builtin image too). */
function engineFrom(composeText: string): ExistingDeployment['engine'] {
  try {
    const doc = YAML.parse(composeText) as { services?: Record<string, { image?: unknown }> } | null;
    const image = doc?.services?.[COMPOSE_SERVICES.proxy]?.image;
    if (typeof image !== 'string') return undefined;
    return image.startsWith(`${BUILTIN_PROXY_IMAGE_REPO}:`) ? 'builtin' : 'official';
  } catch {
    return undefined;
  }
}

const COMPOSE_DEFAULT_STOP_GRACE_MS = 10_000;

function stopGraceFrom(composeText: string): number | undefined {
  try {
    const doc = YAML.parse(composeText) as { services?: Record<string, { stop_grace_period?: unknown } | null> } | null;
    const svc = doc?.services?.[COMPOSE_SERVICES.proxy];
    if (!svc) return undefined;
    const raw = svc.stop_grace_period;
    return raw === undefined || raw === null ? COMPOSE_DEFAULT_STOP_GRACE_MS : parseDuration(String(raw));
  } catch {
    return undefined;
  }
}

/** Best effort: a config we cannot read contributes no routes (init will then ask for them, or say why it cannot read them). */
function routesFrom(configText: string | undefined): Pick<ExistingDeployment, 'routes' | 'routesProblem' | 'allowedIps' | 'tunnelDomain' | 'upstreamTls'> {
  if (configText === undefined) return {};
  try {
    const doc = YAML.parse(configText) as Record<string, unknown>;
    const out: Pick<ExistingDeployment, 'routes' | 'routesProblem' | 'allowedIps' | 'tunnelDomain' | 'upstreamTls'> = {};
    if (Array.isArray(doc?.routes)) out.routesProblem = new ConfigError(`${CONFIG_REL}: ${ROUTES_LIST_PROBLEM.message}`, ROUTES_LIST_PROBLEM.hint, 'PROXY_CONFIG_INVALID');
    if (doc?.routes && typeof doc.routes === 'object' && !Array.isArray(doc.routes)) {
      out.routes = Object.entries(doc.routes as Record<string, unknown>).map(([name, url]) => ({ name, url: String(url) }));
    }
    const upstream = doc?.upstream as { allowed_ips?: unknown; tls?: { ca_file?: unknown; include_system_cas?: unknown } } | undefined;
    if (Array.isArray(upstream?.allowed_ips)) out.allowedIps = upstream.allowed_ips.map(String);
    if (upstream?.tls && (typeof upstream.tls.ca_file === 'string' || upstream.tls.include_system_cas === true)) {
      out.upstreamTls = {
        caFile: typeof upstream.tls.ca_file === 'string' ? upstream.tls.ca_file : undefined,
        includeSystemCas: upstream.tls.include_system_cas === true,
      };
    }
    if (typeof doc?.tunnel_domain === 'string') out.tunnelDomain = doc.tunnel_domain;
    return out;
  } catch (err) {
    return { routesProblem: new ConfigError(`${CONFIG_REL} is not valid YAML: ${(err as Error).message.split('\n')[0]}`, 'fix the line it names (mcp-tunnel doctor checks the whole file), or pass --route and --force to rewrite it', 'PROXY_CONFIG_INVALID') };
  }
}

const CONFIG_REL = 'config/mcp-proxy.yaml';

/** The lines a deployment's .gitignore must have; the user's own lines are kept. */
export const GITIGNORE_LINES = ['.env', '.env.previous', 'data/'];

export function updateGitignore(existing: string | undefined): string {
  const lines = existing === undefined ? ['# Written by mcp-tunnel: secrets and credentials stay out of version control.'] : existing.replace(/\n$/, '').split('\n');
  for (const needed of GITIGNORE_LINES) if (!lines.some((l) => l.trim() === needed || l.trim() === `/${needed}`)) lines.push(needed);
  return lines.join('\n') + '\n';
}

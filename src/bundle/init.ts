import { ValidationError } from '../errors.js';
import fs from 'node:fs/promises';
import { readTextIfExists } from './atomic-file.js';
import { hasRenewerService, renderComposeFile, renewerAccess, type RenewerAccess } from './compose-file.js';
import { resolveCa, resolveServerCert, type CaResolution, type ServerCertResolution } from './credentials.js';
import { parseEnvFile, updateEnvFile, type EnvEntry } from './env-file.js';
import { updateGitignore, type ExistingDeployment } from './existing.js';
import { writeBuildContext } from './build-context.js';
import type { TransactionHooks } from './transaction.js';
import { applyChanges, classifyFiles, type FileChange, type PlannedDir, type PlannedFile } from './file-plan.js';
import { CONTAINER_PATHS, deploymentPaths, projectNameFor, type DeploymentPaths } from './layout.js';
import { containerIdentity, type ContainerIdentity } from './ownership.js';
import { DEFAULT_ALLOWED_IPS } from './proxy-config.js';
import { renderProxyConfig } from './proxy-config-render.js';
import { cidrContains, parseIpv4Cidr, parseUpstream } from './validate.js';
import net from 'node:net';

export type { ProxyEngine } from './compose-file.js';
import type { ProxyEngine } from './compose-file.js';

/** Everything init needs, already validated one value at a time by the CLI. */
export interface InitSettings {
  dir: string;
  tunnelId: string;
  tunnelDomain: string;
  tunnelToken: string;
  routes: Array<{ name: string; url: string }>;
  /** Replaces the default private ranges when given. */
  allowedIps?: string[];
  engine: ProxyEngine;
  /** Builtin engine: base image for the local build (MCP_TUNNEL_BASE_IMAGE). */
  baseImage?: string;
  /** PEM of the CA bundle that signs https upstreams (copied to data/upstream-ca.crt). */
  upstreamCaPem?: string;
  /** Also trust the system CAs for https upstreams. */
  upstreamSystemCas?: boolean;
  /** Add the cert-renewer service (init --auto-renew); undefined keeps what compose.yaml already has. */
  autoRenew?: boolean;
}

export interface InitPlan {
  paths: DeploymentPaths;
  dirs: PlannedDir[];
  changes: FileChange[];
  ca: CaResolution;
  server: ServerCertResolution;
  identity: ContainerIdentity;
  engine: ProxyEngine;
  /** compose.yaml gets the cert-renewer service (and DIR/build/, whatever the engine). */
  autoRenew: boolean;
  /** What data/ and ca.key need for the renewer when init runs as root (compose-file.ts, renewerAccess). */
  renewerAccess?: RenewerAccess;
}

export interface InitContext {
  now: Date;
  invoker: { uid: number; gid: number };
  version: string;
}

/**
 * Works out every file init would write and how each differs from what is there, writing nothing.
 * Cross-field checks live here: they need the whole picture.
 */
export async function planInit(settings: InitSettings, existing: ExistingDeployment, ctx: InitContext): Promise<InitPlan> {
  checkUpstreamsAllowed(settings.routes, settings.allowedIps);
  const upstreamTls = {
    caFile: settings.upstreamCaPem !== undefined ? CONTAINER_PATHS.upstreamCa : existing.upstreamTls?.caFile,
    includeSystemCas: settings.upstreamSystemCas ?? existing.upstreamTls?.includeSystemCas ?? false,
  };
  checkHttpsUpstreams(settings.routes, upstreamTls);
  const paths = deploymentPaths(settings.dir);
  const identity = containerIdentity(ctx.invoker);
  const ca = await resolveCa(paths, ctx.now);
  const server = await resolveServerCert(paths, ca.pair, settings.tunnelDomain, ctx.now);
  const proxyOwner = identity.chownProxyFiles ? { uid: identity.uid, gid: identity.gid } : undefined;
  const autoRenew = settings.autoRenew ?? hasRenewerService(await readTextIfExists(paths.compose));
  const access = autoRenew ? renewerAccess(identity) : undefined;

  const env: EnvEntry[] = [
    { key: 'TUNNEL_TOKEN', value: settings.tunnelToken, comment: 'The tunnel token cloudflared connects with (secret).' },
    { key: 'MCP_TUNNEL_UID', value: String(identity.uid), comment: 'The containers run as this user and group: the owner of data/tls.key (see README, "Key permissions").' },
    { key: 'MCP_TUNNEL_GID', value: String(identity.gid) },
    // The project name is the stack's identity (its containers and network carry it): once written it is
    // kept, so a moved or copied directory re-run with no flags changes nothing.
    { key: 'COMPOSE_PROJECT_NAME', value: (existing.envText && parseEnvFile(existing.envText).COMPOSE_PROJECT_NAME) || projectNameFor(settings.dir), comment: 'Names the containers <project>-<service>-1 for docker compose and mcp-tunnel alike.' },
  ];
  if (settings.baseImage) env.push({ key: 'MCP_TUNNEL_BASE_IMAGE', value: settings.baseImage, comment: 'Base image of the builtin proxy build (needs node >= 22).' });

  const file = (p: string, content: string, mode: number, owner?: { uid: number; gid: number }): PlannedFile => ({
    path: p,
    label: p.slice(paths.dir.length + 1),
    content,
    mode,
    owner,
  });
  // Order matters: an interrupted run leaves the CA (and what follows it) for the re-run to reuse, and
  // compose.yaml, written last, only appears once everything it mounts is in place.
  const planned: PlannedFile[] = [
    access ? file(paths.caKey, ca.pair.keyPem, access.caKey.mode, { uid: ctx.invoker.uid, gid: access.caKey.gid }) : file(paths.caKey, ca.pair.keyPem, 0o600),
    file(paths.caCert, ca.pair.certPem, 0o644),
    file(paths.tlsKey, server.pair.keyPem, 0o600, proxyOwner),
    file(paths.tlsCert, server.pair.certPem, 0o644, proxyOwner),
    file(paths.tunnelId, `${settings.tunnelId}\n`, 0o644),
    file(paths.tunnelDomain, `${settings.tunnelDomain}\n`, 0o644),
    file(paths.tunnelToken, `${settings.tunnelToken}\n`, 0o600),
    ...(settings.upstreamCaPem !== undefined ? [file(paths.upstreamCa, settings.upstreamCaPem, 0o644)] : []),
    file(paths.proxyConfig, renderProxyConfig({ tunnelDomain: settings.tunnelDomain, routes: settings.routes, allowedIps: settings.allowedIps, upstreamTls }), 0o644),
    file(paths.env, updateEnvFile(existing.envText, env), 0o600),
    file(paths.gitignore, updateGitignore(existing.gitignoreText), 0o644),
    file(paths.compose, renderComposeFile({ engine: settings.engine, version: ctx.version, autoRenew }), 0o644),
  ];
  return {
    paths,
    dirs: [
      { path: paths.dir, mode: 0o755 },
      { path: paths.dataDir, mode: access?.dataDir.mode ?? identity.dataDirMode },
      { path: paths.configDir, mode: 0o755 },
    ],
    changes: await classifyFiles(planned),
    ca,
    server,
    identity,
    engine: settings.engine,
    autoRenew,
    renewerAccess: access,
  };
}

/**
 * An upstream given as an IP literal that allowed_ips does not cover would be refused by the proxy at
 * the first request. Say so now, while the user is still at the keyboard.
 */
export function checkUpstreamsAllowed(routes: InitSettings['routes'], allowedIps: string[] | undefined): void {
  const ranges = (allowedIps?.length ? allowedIps : [...DEFAULT_ALLOWED_IPS]).map(parseIpv4Cidr);
  for (const route of routes) {
    const { host } = parseUpstream(route.url, route.name);
    if (!net.isIPv4(host) || ranges.some((r) => cidrContains(r, host))) continue;
    const loopback = host.startsWith('127.');
    throw new ValidationError(
      `route "${route.name}" points to ${host}, which the proxy will refuse: it is outside the allowed IPs (${ranges.map((r) => r.text).join(', ')})`,
      loopback
        ? 'inside the proxy container 127.0.0.1 is the container itself: use the host\'s LAN address or a service name on a shared network'
        : `add --allowed-ip ${host}/32 (it replaces the defaults, so list every range your upstreams use)`,
    );
  }
}

/** An https upstream is verified by the proxy; without a CA to verify against, every request would fail. */
export function checkHttpsUpstreams(routes: InitSettings['routes'], tls: { caFile?: string; includeSystemCas?: boolean }): void {
  const https = routes.find((r) => r.url.startsWith('https://'));
  if (!https || tls.caFile || tls.includeSystemCas) return;
  throw new ValidationError(
    `route "${https.name}" has an https upstream, but there is no CA to verify it with`,
    'pass --upstream-ca-file FILE (the CA bundle that signed the upstream) or --upstream-system-cas',
  );
}

export { deploymentPaths };

/**
 * Writes the plan. The builtin engine also gets DIR/build/, the context `docker compose` builds the
 * proxy image from, refreshed on every run so it always matches this version of mcp-tunnel.
 */
export async function applyInit(plan: InitPlan, options: { packageRoot?: string; hooks?: TransactionHooks } = {}): Promise<void> {
  await applyChanges(plan.dirs, plan.changes, 'init', options.hooks);
  if (plan.renewerAccess) await fs.chown(plan.paths.dataDir, -1, plan.renewerAccess.dataDir.gid);
  if (plan.engine === 'builtin' || plan.autoRenew) await writeBuildContext(plan.paths.dir, options);
}

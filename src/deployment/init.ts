import { ExitCode, UserError, ValidationError } from '../errors.js';
import path from 'node:path';
import type { CaKeyType } from '../pki/index.js';
import fs from 'node:fs/promises';
import { readTextIfExists } from './atomic-file.js';
import YAML from 'yaml';
import { COMPOSE_SERVICES, hasRenewerService, hasSampleService, isGeneratedComposeFile, renderComposeFile, renewerAccess, type RenewerAccess } from './compose-file.js';
import { resolveCa, resolveServerCert, type CaResolution, type ServerCertResolution } from './credentials.js';
import { parseEnvFile, updateEnvFile, type EnvEntry } from './env-file.js';
import { updateGitignore, type ExistingDeployment } from './existing.js';
import { writeBuildContext } from './build-context.js';
import type { TransactionHooks } from './transaction.js';
import { applyChanges, classifyFiles, type FileChange, type PlannedDir, type PlannedFile } from './file-plan.js';
import { CONTAINER_PATHS, deploymentPaths, projectNameFor, type DeploymentPaths } from './layout.js';
import { parseImageReference, parsePinnedImageReference } from './images.js';
import { containerIdentity, type ContainerIdentity } from './ownership.js';
import { DEFAULT_ALLOWED_IPS } from './proxy-config.js';
import { renderProxyConfig } from './proxy-config-render.js';
import { addressVerdict, describeHost, isDottedQuad } from './upstream-address.js';
import { mergeProxyConfig } from './proxy-config-merge.js';
import { parseIpv4Cidr, parseUpstream } from './validate.js';

export type { ProxyEngine } from './compose-file.js';
import type { ProxyEngine } from './compose-file.js';

/** Everything init needs, already validated one value at a time by the CLI. */
export interface InitSettings {
  dir: string;
  tunnelId: string;
  tunnelDomain: string;
  tunnelToken: string;
  /** `writtenHost`: the host as the user wrote it, when it is not the canonical one in `url` (messages name both). */
  routes: Array<{ name: string; url: string; writtenHost?: string }>;
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
  /** The key type of a CA init creates (--ca-key); an existing CA is kept whatever its type. */
  caKeyType?: CaKeyType;
  /** Add the sample `hello` MCP server service (init --sample-server); undefined keeps what compose.yaml has. */
  sampleServer?: boolean;
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
  /** The operator's compose file (not written by mcp-tunnel), kept as it is; undefined when init writes compose.yaml. */
  adoptedCompose?: string;
  /** compose.yaml gets the sample `hello` MCP server (and DIR/build/, whatever the engine). */
  sampleServer: boolean;
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
  // .env holds it and compose passes it to the build as is: only an image reference may go there.
  const baseImage = settings.baseImage === undefined ? undefined : parseImageReference(settings.baseImage, '--base-image').text;
  checkUpstreamsAllowed(settings.routes, settings.allowedIps);
  const upstreamTls = {
    caFile: settings.upstreamCaPem !== undefined ? CONTAINER_PATHS.upstreamCa : existing.upstreamTls?.caFile,
    includeSystemCas: settings.upstreamSystemCas ?? existing.upstreamTls?.includeSystemCas ?? false,
  };
  checkHttpsUpstreams(settings.routes, upstreamTls);
  const paths = deploymentPaths(settings.dir);
  const identity = containerIdentity(ctx.invoker);
  const ca = await resolveCa(paths, ctx.now, settings.caKeyType);
  const server = await resolveServerCert(paths, ca.pair, settings.tunnelDomain, ctx.now);
  const proxyOwner = identity.chownProxyFiles ? { uid: identity.uid, gid: identity.gid } : undefined;
  const composeText = await readTextIfExists(paths.compose);
  // A directory laid out by Anthropic's tools (their docker-compose.yaml): init adds what is missing and
  // leaves what it did not create as it is, modes and owners included (their containers read them so).
  const adoptedCompose = composeText !== undefined && !isGeneratedComposeFile(composeText) ? path.basename(paths.compose) : undefined;
  if (adoptedCompose !== undefined && (settings.autoRenew || settings.sampleServer)) {
    throw new UserError(`${settings.autoRenew ? '--auto-renew' : '--sample-server'} would edit ${adoptedCompose}, which mcp-tunnel did not write`, {
      hint: 'schedule renewal on the host instead (cron: mcp-tunnel renew-cert --dir DIR), or move the file away to let init write compose.yaml',
      code: 'COMPOSE_NOT_OURS',
      exitCode: ExitCode.usage,
    });
  }
  const autoRenew = settings.autoRenew ?? hasRenewerService(composeText);
  const sampleServer = settings.sampleServer ?? hasSampleService(composeText);
  const access = autoRenew ? renewerAccess(identity) : undefined;

  const env: EnvEntry[] = [
    { key: 'TUNNEL_TOKEN', value: settings.tunnelToken, comment: 'The tunnel token cloudflared connects with (secret).' },
    { key: 'MCP_TUNNEL_UID', value: String(identity.uid), comment: 'The containers run as this user and group: the owner of data/tls.key (see README, "Key permissions").' },
    { key: 'MCP_TUNNEL_GID', value: String(identity.gid) },
    // The project name is the stack's identity (its containers and network carry it): once written it is
    // kept, so a moved or copied directory re-run with no flags changes nothing.
    { key: 'COMPOSE_PROJECT_NAME', value: (existing.envText && parseEnvFile(existing.envText).COMPOSE_PROJECT_NAME) || projectNameFor(settings.dir), comment: 'Names the containers <project>-<service>-1 for docker compose and mcp-tunnel alike.' },
  ];
  if (baseImage) env.push({ key: 'MCP_TUNNEL_BASE_IMAGE', value: baseImage, comment: 'Base image of the builtin proxy build (needs node >= 22).' });

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
    file(
      paths.proxyConfig,
      mergeProxyConfig(await readTextIfExists(paths.proxyConfig), renderProxyConfig({ tunnelDomain: settings.tunnelDomain, routes: settings.routes, allowedIps: settings.allowedIps, upstreamTls })),
      0o644,
    ),
    file(paths.env, updateEnvFile(existing.envText, env), 0o600),
    file(paths.gitignore, updateGitignore(existing.gitignoreText), 0o644),
    ...(adoptedCompose === undefined
      ? [file(paths.compose, renderComposeFile({ engine: settings.engine, version: ctx.version, autoRenew, sampleServer, images: pinnedImages(composeText, settings.engine) }), 0o644)]
      : []),
  ];
  const changes = await classifyFiles(planned);
  return {
    paths,
    dirs: [
      { path: paths.dir, mode: 0o755, keepExisting: adoptedCompose !== undefined },
      { path: paths.dataDir, mode: access?.dataDir.mode ?? identity.dataDirMode, keepExisting: adoptedCompose !== undefined },
      { path: paths.configDir, mode: 0o755, keepExisting: adoptedCompose !== undefined },
    ],
    changes: adoptedCompose === undefined ? changes : changes.map((c) => (c.status === 'repair' ? { ...c, status: 'unchanged' } : c)),
    adoptedCompose,
    ca,
    server,
    identity,
    engine: settings.engine,
    autoRenew,
    renewerAccess: access,
    sampleServer,
  };
}

/**
 * An upstream given as an IP literal that allowed_ips does not cover would be refused by the proxy at
 * the first request. Say so now, while the user is still at the keyboard.
 */
export function checkUpstreamsAllowed(
  routes: InitSettings['routes'],
  allowedIps: string[] | undefined,
  allowHint: (ip: string) => string = (ip) => `add --allowed-ip ${ip}/32 (it replaces the defaults, so list every range your upstreams use)`,
): void {
  const ranges = (allowedIps?.length ? allowedIps : [...DEFAULT_ALLOWED_IPS]).map(parseIpv4Cidr);
  for (const route of routes) {
    const up = parseUpstream(route.url, route.name);
    // A name is resolved (and every address checked) by the proxy when it dials; only literals are judged here.
    if (!isDottedQuad(up.host)) continue;
    const verdict = addressVerdict(up.host, ranges);
    if (verdict.allowed) continue;
    const shown = describeHost(route.writtenHost ?? up.writtenHost ?? up.host, verdict.ip);
    const why = verdict.reason === 'this-network' ? 'it is in 0.0.0.0/8 ("this host"), which no catch-all range allows' : `it is outside the allowed IPs (${ranges.map((r) => r.text).join(', ')})`;
    const loopback = verdict.ip.startsWith('127.') || verdict.reason === 'this-network';
    throw new UserError(`route "${route.name}" points to ${shown}, which the proxy will refuse: ${why}`, {
      code: 'UPSTREAM_ADDRESS_REFUSED',
      exitCode: ExitCode.usage,
      hint: loopback
        ? 'inside the proxy container 127.0.0.1 is the container itself: use the host\'s LAN address or a service name on a shared network'
        : allowHint(verdict.ip),
    });
  }
}

/** An https upstream is verified by the proxy; without a CA to verify against, every request would fail. */
export function checkHttpsUpstreams(routes: InitSettings['routes'], tls: { caFile?: string; includeSystemCas?: boolean }): void {
  const https = routes.find((r) => r.url.startsWith('https://'));
  if (!https || tls.caFile || tls.includeSystemCas) return;
  throw new ValidationError(
    `route "${https.name}" has an https upstream, but there is no CA to verify it with`,
    'pass --upstream-ca-file FILE (the CA bundle that signed the upstream) or --upstream-system-cas',
    'UPSTREAM_CA_MISSING',
  );
}

export { deploymentPaths };

/**
 * The digests `mcp-tunnel images` moved the official images to: a re-run keeps them (init writes the pins
 * it ships with only where the file has no other pin). Only name@sha256 references count.
 */
export function pinnedImages(composeText: string | undefined, engine: ProxyEngine): { proxy?: string; cloudflared?: string } {
  if (composeText === undefined) return {};
  let services: Record<string, { image?: unknown }> | undefined;
  try {
    services = (YAML.parse(composeText) as { services?: Record<string, { image?: unknown }> } | null)?.services;
  } catch {
    return {};
  }
  const pinned = (image: unknown): string | undefined => {
    if (typeof image !== 'string') return undefined;
    try {
      return parsePinnedImageReference(image, 'image').text;
    } catch {
      return undefined;
    }
  };
  return {
    ...(engine === 'official' && pinned(services?.[COMPOSE_SERVICES.proxy]?.image) ? { proxy: pinned(services?.[COMPOSE_SERVICES.proxy]?.image) } : {}),
    ...(pinned(services?.[COMPOSE_SERVICES.cloudflared]?.image) ? { cloudflared: pinned(services?.[COMPOSE_SERVICES.cloudflared]?.image) } : {}),
  };
}

/**
 * Writes the plan. The builtin engine also gets DIR/build/, the context `docker compose` builds the
 * proxy image from, refreshed on every run so it always matches this version of mcp-tunnel.
 */
export async function applyInit(plan: InitPlan, options: { packageRoot?: string; hooks?: TransactionHooks } = {}): Promise<void> {
  await applyChanges(plan.dirs, plan.changes, 'init', options.hooks);
  if (plan.renewerAccess) await fs.chown(plan.paths.dataDir, -1, plan.renewerAccess.dataDir.gid);
  if (plan.engine === 'builtin' || plan.autoRenew || plan.sampleServer) await writeBuildContext(plan.paths.dir, options);
}

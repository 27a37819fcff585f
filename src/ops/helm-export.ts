import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import { readWifSettings, type CredentialFlow } from '../anthropic/settings.js';
import { ensureDir, readTextIfExists, writeFileSafely } from '../deployment/atomic-file.js';
import { parseEnvFile, readEnvTextIfExists } from '../deployment/env-file.js';
import { asEnvironmentError } from '../deployment/fs-errors.js';
import { deploymentPaths } from '../deployment/layout.js';
import { parseProxyConfig, type ProxyConfig } from '../deployment/proxy-config.js';
import { validateTunnelToken } from '../deployment/validate.js';
import { ConfigError, UserError, ValidationError } from '../errors.js';
import { inspectCertificate, RENEW_BEFORE } from '../pki/index.js';
import { EDGE_CIDRS } from './doctor/environment.js';

/**
 * `export helm`: the deployment as values for Anthropic's Helm chart (docs/contract.md §5), for users who outgrow
 * one host. values.yaml never holds a secret; in the manual flow the token and the server key pair go
 * into the two Secret manifests the chart reads (mcp-tunnel-token: tunnel-token; mcp-tunnel-cert:
 * tls.crt, tls.key), written 0600.
 *
 * Only the values the chart documents are written (DOCUMENTED_HELM_VALUES, docs/contract.md), and only
 * with a value: an empty string would shadow the chart's default. So:
 * - gateway.config carries the proxy config minus listen_addr and tls (the chart owns the listener and
 *   mounts the certificate Secret itself);
 * - networkPolicy.egress.mcpServers is left to the operator: its shape is not documented, so the upstream
 *   addresses are printed as a warning instead of written in an invented shape;
 * - api.wif.tokenFile is never written (the chart's default is its projected service-account token);
 *   api.wif.audience only when this deployment's identity token names another audience than the chart's
 *   default (api.anthropic.com);
 * - tunnel.tokenVersion starts at 1 (bump it to rotate the token, as with the setup component);
 * - the Secrets are `Opaque`, what `kubectl create secret generic ... | kubectl apply` (the docs' renewal
 *   command) makes: a Secret's type cannot change, so a kubernetes.io/tls one could not be updated that way.
 */
export const HELM_CHART = 'oci://us-docker.pkg.dev/anthropic-public-registry/charts/mcp-tunnel';
export const HELM_CHART_VERSION = '2.0.2';
export const TOKEN_SECRET = { name: 'mcp-tunnel-token', key: 'tunnel-token' } as const;
export const CERT_SECRET = { name: 'mcp-tunnel-cert', certKey: 'tls.crt', keyKey: 'tls.key' } as const;
export const DEFAULT_CRON_SCHEDULE = '0 3 * * *';
export const DEFAULT_RENEW_BEFORE = RENEW_BEFORE;
export const HELM_NAMESPACE = 'mcp-tunnel';
/** The chart's audience when api.wif.audience is not set. */
export const CHART_DEFAULT_AUDIENCE = 'api.anthropic.com';

/**
 * The value paths the chart documents (docs/contract.md, "Scale out"). A path ending in ".*" admits
 * anything below it: gateway.config takes the proxy config's own fields.
 */
export const DOCUMENTED_HELM_VALUES = [
  'api.wif.federationRuleId',
  'api.wif.organizationId',
  'api.wif.workspaceId',
  'api.wif.tokenFile',
  'api.wif.audience',
  'tunnel.id',
  'tunnel.tokenVersion',
  'gateway.config.*',
  'networkPolicy.ingress.enabled',
  'networkPolicy.egress.enabled',
  'networkPolicy.egress.mcpServers',
  'networkPolicy.egress.cloudflaredEgressCIDRs',
  'serverCert.cronSchedule',
  'serverCert.renewBefore',
  'setup.enabled',
  'setup.force',
  'setup.extraVolumes',
  'setup.extraVolumeMounts',
] as const;

export interface HelmFile {
  name: string;
  content: string;
  mode: number;
  /** Set on a Secret manifest. */
  secret?: HelmSecret;
}

/**
 * What export helm could not carry over, or what the operator must still do. The codes are stable (scripts
 * and `--json` readers compare them; docs/json.md lists them); the messages may be reworded.
 */
export type HelmWarningCode =
  | 'upstream-ca-file-mount'
  | 'upstream-hostname'
  | 'upstream-loopback'
  | 'egress-upstreams-not-written'
  | 'wif-audience-default'
  | 'wif-ids-missing'
  | 'tunnel-ca-slots'
  | 'manual-flow-renewal';

export interface HelmWarning {
  code: HelmWarningCode;
  message: string;
  /** The route it is about (upstream-hostname, upstream-loopback). */
  route?: string;
  /** The upstreams networkPolicy.egress.mcpServers must allow (egress-upstreams-not-written). */
  upstreams?: McpServerEgress[];
}

/** A Secret manifest: its name and the keys of its data (never the values). */
export interface HelmSecret {
  name: string;
  keys: string[];
}

export interface HelmExport {
  flow: CredentialFlow;
  tunnelId: string;
  files: HelmFile[];
  /** The chart value paths values.yaml sets (DOCUMENTED_HELM_VALUES; gateway.config as one). */
  valueKeys: string[];
  warnings: HelmWarning[];
}

export interface McpServerEgress {
  name: string;
  cidr?: string;
  host?: string;
  port: number;
}

export function mcpServersFrom(config: Pick<ProxyConfig, 'routes'>): McpServerEgress[] {
  return [...config.routes.entries()].map(([name, up]) => (net.isIPv4(up.host) ? { name, cidr: `${up.host}/32`, port: up.port } : { name, host: up.host, port: up.port }));
}

/**
 * The documented value paths a values document sets: a path the chart documents (or one whose fields are
 * free, gateway.config) is one key; anything else is walked into.
 */
export function helmValueKeys(values: Record<string, unknown>): string[] {
  const documented = new Set<string>(DOCUMENTED_HELM_VALUES);
  const out: string[] = [];
  const walk = (value: unknown, at: string): void => {
    const leaf = value === null || typeof value !== 'object' || Array.isArray(value);
    if (at && (leaf || documented.has(at) || documented.has(`${at}.*`))) {
      out.push(at);
      return;
    }
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) walk(v, at ? `${at}.${k}` : k);
  };
  walk(values, '');
  return out;
}

function jwtAudience(jwt: string | undefined): string | undefined {
  const payload = jwt?.trim().split('.')[1];
  if (!payload) return undefined;
  try {
    const aud = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { aud?: unknown }).aud;
    return typeof aud === 'string' ? aud : Array.isArray(aud) && typeof aud[0] === 'string' ? aud[0] : undefined;
  } catch {
    return undefined;
  }
}

function secretManifest(name: string, type: string, data: Record<string, string>, comment: string): string {
  const doc = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'mcp-tunnel-export' } },
    type,
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')])),
  };
  return `# ${comment}\n# Secret material: keep this file out of version control (kubectl apply it, then delete it).\n${YAML.stringify(doc)}`;
}

export async function buildHelmExport(dir: string): Promise<HelmExport> {
  const paths = deploymentPaths(dir);
  const [configText, envText, tunnelIdText, tokenFileText] = await Promise.all([
    readTextIfExists(paths.proxyConfig),
    readEnvTextIfExists(paths.env),
    readTextIfExists(paths.tunnelId),
    readTextIfExists(paths.tunnelToken),
  ]);
  if (configText === undefined) throw new ValidationError(`no config/mcp-proxy.yaml in ${paths.dir}`, 'pass --dir to the deployment directory (mcp-tunnel init writes it)', 'CONFIG_FILE_MISSING');
  let config: ProxyConfig;
  try {
    config = parseProxyConfig(configText);
  } catch (err) {
    if (err instanceof UserError) throw new ConfigError(`config/mcp-proxy.yaml: ${err.message}`, err.hint, err.code);
    throw err;
  }
  const tunnelId = tunnelIdText?.split('\n')[0]?.trim();
  if (!tunnelId) throw new ValidationError('data/tunnel-id is missing', 'write the tunnel ID (tnl_...) from the Console into data/tunnel-id, or re-run mcp-tunnel init', 'TUNNEL_ID_MISSING');
  const wif = readWifSettings(envText);
  const flow: CredentialFlow = wif.flow ?? 'manual';
  const warnings: HelmWarning[] = [];

  const upstream: Record<string, unknown> = {};
  if (config.upstream.allowedIps === undefined) upstream.disable_ip_validation = true;
  else upstream.allowed_ips = config.upstream.allowedIps.map((c) => c.text);
  if (config.upstream.caFile || config.upstream.includeSystemCas) {
    upstream.tls = { ...(config.upstream.caFile ? { ca_file: config.upstream.caFile } : {}), ...(config.upstream.includeSystemCas ? { include_system_cas: true } : {}) };
    if (config.upstream.caFile) warnings.push({ code: 'upstream-ca-file-mount', message: `upstream.tls.ca_file (${config.upstream.caFile}) must exist in the proxy pod: mount your CA bundle there (e.g. from a ConfigMap) or the https upstreams fail` });
  }
  const gatewayConfig: Record<string, unknown> = {
    log_level: config.logLevel,
    shutdown_timeout: `${Math.round(config.shutdownTimeoutMs / 1000)}s`,
    ...(config.tunnelDomain ? { tunnel_domain: config.tunnelDomain } : {}),
    routes: Object.fromEntries([...config.routes.entries()].map(([k, up]) => [k, up.url])),
    upstream,
  };

  const mcpServers = mcpServersFrom(config);
  for (const s of mcpServers) {
    if (s.host) warnings.push({ code: 'upstream-hostname', route: s.name, message: `route ${s.name}: upstream ${s.host} is a hostname; a NetworkPolicy needs addresses` });
    if (s.cidr?.startsWith('127.')) warnings.push({ code: 'upstream-loopback', route: s.name, message: `route ${s.name}: ${s.cidr} is loopback, which inside a pod is the pod itself: point the route at the server's cluster or LAN address` });
  }
  if (mcpServers.length > 0) {
    warnings.push({
      code: 'egress-upstreams-not-written',
      upstreams: mcpServers,
      message: `networkPolicy.egress.mcpServers is not written (the chart documents the key, not its shape): allow the upstreams there as the chart's values reference describes: ${mcpServers.map((s) => `${s.name} ${s.cidr ?? s.host}:${s.port}`).join(', ')}`,
    });
  }

  const values: Record<string, unknown> = {
    tunnel: { id: tunnelId, ...(flow === 'wif' ? { tokenVersion: 1 } : {}) },
  };
  if (flow === 'wif') {
    const jwt = wif.identityTokenFile ? await fs.readFile(wif.identityTokenFile, 'utf8').catch(() => undefined) : undefined;
    const audience = jwtAudience(jwt);
    const isDefaultAudience = audience !== undefined && audience.replace(/^https:\/\//, '').replace(/\/$/, '') === CHART_DEFAULT_AUDIENCE;
    if (!audience) warnings.push({ code: 'wif-audience-default', message: `api.wif.audience is left to the chart's default (${CHART_DEFAULT_AUDIENCE}): set it if your federation rule expects another audience` });
    if (!wif.federationRuleId || !wif.organizationId) warnings.push({ code: 'wif-ids-missing', message: 'api.wif.federationRuleId and api.wif.organizationId are not in .env: set them in values.yaml before installing' });
    values.api = {
      wif: {
        ...(wif.federationRuleId ? { federationRuleId: wif.federationRuleId } : {}),
        ...(wif.organizationId ? { organizationId: wif.organizationId } : {}),
        ...(wif.workspaceId ? { workspaceId: wif.workspaceId } : {}),
        ...(audience && !isDefaultAudience ? { audience } : {}),
      },
    };
    const caText = await readTextIfExists(paths.caCert).catch(() => undefined);
    const fp = caText ? inspectCertificate(caText).fingerprintSha256 : undefined;
    warnings.push({
      code: 'tunnel-ca-slots',
      message: `the chart's setup hook registers its own CA with ${tunnelId}; a tunnel holds at most two: once the cluster serves, archive this host's CA${fp ? ` (data/ca.crt, fingerprint ${fp})` : ''} in the Console or with the Tunnels API`,
    });
  }
  values.setup = { enabled: flow === 'wif' };
  values.gateway = { config: gatewayConfig };
  values.networkPolicy = {
    ingress: { enabled: true },
    egress: { enabled: true, cloudflaredEgressCIDRs: [...EDGE_CIDRS] },
  };
  values.serverCert = { cronSchedule: DEFAULT_CRON_SCHEDULE, renewBefore: DEFAULT_RENEW_BEFORE };

  const header = [
    `# values.yaml for Anthropic's mcp-tunnel Helm chart ${HELM_CHART_VERSION}, exported by mcp-tunnel from ${paths.dir}.`,
    `# Flow: ${flow}. ${flow === 'manual' ? 'The token and certificate come from the Secrets mcp-tunnel-token and mcp-tunnel-cert (exported beside this file).' : 'The setup hook provisions the token and the CA through Workload Identity Federation.'}`,
    '# No secret is in this file. gateway.config is config/mcp-proxy.yaml without listen_addr and tls (the chart sets those).',
    '# networkPolicy.egress.mcpServers: add your upstreams (export helm printed them) in the shape the chart\'s values reference gives.',
    '',
  ].join('\n');
  const files: HelmFile[] = [{ name: 'values.yaml', content: header + YAML.stringify(values), mode: 0o644 }];

  if (flow === 'manual') {
    const env = parseEnvFile(envText ?? '');
    const token = env.TUNNEL_TOKEN || tokenFileText?.split('\n')[0]?.trim();
    if (!token) throw new ValidationError('no tunnel token in .env (TUNNEL_TOKEN) or data/tunnel-token', 'mcp-tunnel rotate-token --tunnel-token-file FILE stores it', 'TUNNEL_TOKEN_MISSING');
    validateTunnelToken(token, 'the deployment');
    const [certPem, keyPem] = await Promise.all([readTextIfExists(paths.tlsCert), readTextIfExists(paths.tlsKey)]);
    if (!certPem || !keyPem) throw new ValidationError('data/tls.crt or data/tls.key is missing', 'issue the pair: mcp-tunnel renew-cert --force', 'TLS_CERT_MISSING');
    files.push(
      {
        name: `${TOKEN_SECRET.name}.secret.yaml`,
        content: secretManifest(TOKEN_SECRET.name, 'Opaque', { [TOKEN_SECRET.key]: token }, 'The tunnel token cloudflared connects with.'),
        mode: 0o600,
        secret: { name: TOKEN_SECRET.name, keys: [TOKEN_SECRET.key] },
      },
      {
        name: `${CERT_SECRET.name}.secret.yaml`,
        content: secretManifest(CERT_SECRET.name, 'Opaque', { [CERT_SECRET.certKey]: certPem, [CERT_SECRET.keyKey]: keyPem }, 'The inner-TLS server certificate and key (signed by the CA registered with the tunnel).'),
        mode: 0o600,
        secret: { name: CERT_SECRET.name, keys: [CERT_SECRET.certKey, CERT_SECRET.keyKey] },
      },
    );
    warnings.push({ code: 'manual-flow-renewal', message: 'manual flow: the chart cannot renew the certificate without the CA key; renew here (mcp-tunnel renew-cert) and re-apply mcp-tunnel-cert, or move to the programmatic flow' });
  }
  return { flow, tunnelId, files, valueKeys: helmValueKeys(values), warnings };
}

export interface WrittenFile {
  path: string;
  mode: number;
  /** The HelmFile it came from; undefined for the .gitignore that keeps the Secret manifests out of git. */
  file?: HelmFile;
}

/** Writes the files into outDir (created 0700 when new: it may hold secrets). Returns what was written. */
export async function writeHelmExport(exp: HelmExport, outDir: string): Promise<WrittenFile[]> {
  const out = path.resolve(outDir);
  const st = await fs.stat(out).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw asEnvironmentError(err, { action: 'use --out', file: out });
  });
  if (st && !st.isDirectory()) throw new ValidationError(`--out ${outDir} is a file, not a directory; nothing was written`, 'pass --out a directory (it is created if missing)', 'OUT_NOT_A_DIRECTORY');
  if (!st) await ensureDir(out, 0o700);
  const written: WrittenFile[] = [];
  for (const f of exp.files) {
    const file = path.join(out, f.name);
    await writeFileSafely(file, f.content, { mode: f.mode });
    written.push({ path: file, mode: f.mode, file: f });
  }
  if (exp.files.some((f) => f.mode === 0o600)) {
    const gi = path.join(out, '.gitignore');
    if ((await readTextIfExists(gi)) === undefined) {
      await writeFileSafely(gi, '# Written by mcp-tunnel export helm: the Secret manifests hold credentials.\n*.secret.yaml\n', { mode: 0o644 });
      written.push({ path: gi, mode: 0o644 });
    }
  }
  return written;
}

export function installCommands(exp: HelmExport, outDir: string): string[] {
  const out = path.resolve(outDir);
  const secrets = exp.files.filter((f) => f.name.endsWith('.secret.yaml')).map((f) => `-f ${path.join(out, f.name)}`);
  return [
    `kubectl create namespace ${HELM_NAMESPACE}`,
    ...(secrets.length ? [`kubectl -n ${HELM_NAMESPACE} apply ${secrets.join(' ')}`] : []),
    `helm install mcp-tunnel ${HELM_CHART} --version ${HELM_CHART_VERSION} --namespace ${HELM_NAMESPACE} -f ${path.join(out, 'values.yaml')}`,
  ];
}

import fs from 'node:fs/promises';
import path from 'node:path';
import { hasRenewerService } from '../../bundle/compose-file.js';
import { parseEnvFile } from '../../bundle/env-file.js';
import { deploymentPaths } from '../../bundle/layout.js';
import { requireDeploymentDir } from '../../bundle/deployment-dir.js';
import { OFFICIAL_CONTAINER_ID } from '../../bundle/ownership.js';
import { checkCertificates } from './certificates.js';
import { checkProxyConfig } from './config.js';
import { checkEgress, checkStack, checkToken, DEFAULT_EDGE_TARGETS } from './environment.js';
import { checkPermissions } from './permissions.js';
import { fail, warn, type DoctorFinding, type DoctorStatus } from './types.js';
import { checkUpstreams } from './upstreams.js';

export type { DoctorFinding, DoctorStatus } from './types.js';
export { DEFAULT_EDGE_TARGETS, EDGE_CIDRS } from './environment.js';

/**
 * mcp-tunnel doctor: every documented way a deployment fails, checked before the user meets it. Reads
 * the deployment directory, connects to the upstreams and (optionally) the tunnel edge, asks Docker.
 * Never writes, never prints (src/cli does), never reveals a secret.
 */
export interface DoctorOptions {
  dir: string;
  now?: Date;
  /** host:port targets for the outbound 7844 check; false skips it. Default DEFAULT_EDGE_TARGETS. */
  edgeTargets?: readonly string[] | false;
  /** Per network check (TCP connect, HTTP answer, Docker ping). Default 3 s. */
  timeoutMs?: number;
  /** MCP endpoint path for the Host-header check. Default /mcp. */
  mcpPath?: string;
}

export interface DoctorReport {
  dir: string;
  findings: DoctorFinding[];
  counts: Record<DoctorStatus, number>;
  /** No finding failed. */
  ok: boolean;
}

async function readText(file: string): Promise<{ text?: string; error?: string }> {
  try {
    return { text: await fs.readFile(file, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? {} : { error: code ?? (err as Error).message };
  }
}

export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const now = options.now ?? new Date();
  const timeoutMs = options.timeoutMs ?? 3_000;
  const paths = deploymentPaths(options.dir);
  await requireDeploymentDir(paths.dir, 'pass --dir to the directory mcp-tunnel init wrote');

  const findings: DoctorFinding[] = [];
  const [envRead, composeRead, configRead, domainRead, tokenRead] = await Promise.all([
    readText(paths.env),
    readText(paths.compose),
    readText(paths.proxyConfig),
    readText(paths.tunnelDomain),
    readText(paths.tunnelToken),
  ]);
  if (envRead.error) findings.push(fail('files.env', `.env cannot be read by doctor (${envRead.error})`, 'run mcp-tunnel doctor as the user who ran init'));
  if (composeRead.text === undefined && !composeRead.error) findings.push(warn('files.compose', 'compose.yaml is missing', 'run mcp-tunnel init'));
  const env = parseEnvFile(envRead.text ?? '');
  const renewerScheduled = hasRenewerService(composeRead.text);

  const num = (v: string | undefined): number | undefined => (v !== undefined && /^\d+$/.test(v.trim()) ? Number(v) : undefined);
  const uid = num(env.MCP_TUNNEL_UID);
  const gid = num(env.MCP_TUNNEL_GID);
  const identity = { uid: uid ?? OFFICIAL_CONTAINER_ID, gid: gid ?? OFFICIAL_CONTAINER_ID };
  const identitySource = uid === undefined ? `no MCP_TUNNEL_UID in .env: compose's default ${OFFICIAL_CONTAINER_ID}` : 'MCP_TUNNEL_UID/GID in .env';

  const config = checkProxyConfig(configRead.error ? undefined : configRead.text);
  if (configRead.error) config.findings.splice(0, config.findings.length, fail('config.file', `config/mcp-proxy.yaml cannot be read by doctor (${configRead.error})`, 'run doctor as the user who ran init'));
  findings.push(...config.findings);

  const fileDomain = domainRead.text?.split('\n')[0]?.trim().toLowerCase() || undefined;
  const domain = config.tunnelDomain ?? fileDomain;
  const domainSource = config.tunnelDomain ? 'tunnel_domain in config/mcp-proxy.yaml' : 'data/tunnel-domain';
  if (config.tunnelDomain && fileDomain && config.tunnelDomain !== fileDomain) {
    findings.push(warn('config.domain', `tunnel_domain (${config.tunnelDomain}) differs from data/tunnel-domain (${fileDomain})`, 'make them agree: the domain shown for the tunnel in the Console is the right one'));
  }

  findings.push(...(await checkCertificates({ paths, domain, domainSource, now, renewerScheduled })));
  const extraDataFiles = config.caFile?.startsWith('/data/') ? [path.posix.basename(config.caFile)] : [];
  findings.push(...(await checkPermissions({ paths, identity, identitySource, renewer: renewerScheduled, extraDataFiles })));
  findings.push(...checkToken(env.TUNNEL_TOKEN, tokenRead.text?.split('\n')[0]));

  const [upstreams, stack, egress] = await Promise.all([
    checkUpstreams({ routes: config.routes, allowedIps: config.allowedIps, tunnelDomain: domain, mcpPath: options.mcpPath ?? '/mcp', timeoutMs }),
    checkStack({ dir: paths.dir, renewerScheduled, timeoutMs, now }),
    checkEgress(options.edgeTargets === undefined ? DEFAULT_EDGE_TARGETS : options.edgeTargets, timeoutMs),
  ]);
  findings.push(...upstreams, ...stack, ...egress);

  const counts: Record<DoctorStatus, number> = { ok: 0, warn: 0, fail: 0, skip: 0 };
  for (const f of findings) counts[f.status]++;
  return { dir: paths.dir, findings, counts, ok: counts.fail === 0 };
}

import fs from 'node:fs/promises';
import path from 'node:path';
import { hasRenewerService } from '../../deployment/compose-file.js';
import { parseEnvFile } from '../../deployment/env-file.js';
import { deploymentPaths } from '../../deployment/layout.js';
import { requireDeploymentDir } from '../../deployment/deployment-dir.js';
import { proxyContainerUser } from '../../deployment/ownership.js';
import { ValidationError } from '../../errors.js';
import { rotationFiles } from '../ca-rotate.js';
import { checkApi } from './api.js';
import { checkCertificates } from './certificates.js';
import { checkProxyConfig } from './config.js';
import { envDrift } from '../../docker/env-drift.js';
import { checkEgress, checkEnvDrift, checkStack, checkToken, DEFAULT_EDGE_TARGETS } from './environment.js';
import { checkPermissions } from './permissions.js';
import { checkCloudflaredCommand } from './runtime.js';
import { fail, skip, warn, type DoctorFinding, type DoctorStatus } from './types.js';
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
  /**
   * No network connection at all: upstreams, the tunnel edge and api.anthropic.com are skipped, and Docker
   * is asked only over a local unix socket.
   */
  offline?: boolean;
  /** The shell environment compared with .env (default process.env). */
  processEnv?: NodeJS.ProcessEnv;
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
  const composeName = path.basename(paths.compose);
  if (composeRead.text === undefined && !composeRead.error) findings.push(warn('files.compose', 'no compose file (compose.yaml or docker-compose.yaml)', 'run mcp-tunnel init'));
  const env = parseEnvFile(envRead.text ?? '');
  const renewerScheduled = hasRenewerService(composeRead.text);

  const user = proxyContainerUser(env, composeRead.text, composeName);
  const identity = { uid: user.uid, gid: user.gid };
  const identitySource = user.source;

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
  const rotation = await readText(rotationFiles(paths).state);
  if (rotation.text !== undefined) {
    let step = 'unknown';
    try {
      step = String((JSON.parse(rotation.text) as { step?: unknown }).step ?? 'unknown');
    } catch {
      // an unreadable record is reported by ca rotate itself
    }
    findings.push(warn('ca.rotation', `a CA rotation is in progress (data/ca-rotation.json, step: ${step}); the tunnel may trust two CAs until it ends`, `finish it: mcp-tunnel ca rotate --dir ${paths.dir}`));
  }
  const extraDataFiles = config.caFile?.startsWith('/data/') ? [path.posix.basename(config.caFile)] : [];
  findings.push(...(await checkPermissions({ paths, identity, identitySource, renewer: renewerScheduled, extraDataFiles })));
  findings.push(...checkToken(env.TUNNEL_TOKEN, tokenRead.text?.split('\n')[0]));
  findings.push(...checkCloudflaredCommand(composeRead.text));
  findings.push(...checkEnvDrift(envDrift(env, options.processEnv ?? process.env)));

  const offline = options.offline === true;
  const [upstreams, stack, egress] = await Promise.all([
    checkUpstreams({ routes: config.routes, allowedIps: config.allowedIps, tunnelDomain: domain, mcpPath: options.mcpPath ?? '/mcp', timeoutMs, offline }),
    checkStack({
      dir: paths.dir,
      renewerScheduled,
      timeoutMs,
      now,
      offline,
      proxyView: { routes: config.routes, allowedIps: config.allowedIps, tunnelDomain: domain, mcpPath: options.mcpPath ?? '/mcp', timeoutMs },
    }),
    offline ? [skip('egress.tcp-7844', 'not checked (--offline)')] : checkEgress(options.edgeTargets === undefined ? DEFAULT_EDGE_TARGETS : options.edgeTargets, timeoutMs),
  ]);
  findings.push(...upstreams, ...stack, ...egress);
  findings.push(
    ...(await checkApi({
      envText: envRead.text,
      tunnelId: (await readText(paths.tunnelId)).text?.split('\n')[0]?.trim() || undefined,
      caPem: (await readText(paths.caCert)).text,
      timeoutMs,
      offline,
      processEnv: options.processEnv ?? process.env,
    })),
  );

  // An upstream only the containers can resolve (a compose service name) gets a warning from the host-side
  // check; once it was checked from the proxy's own namespace, that verdict is the one that counts.
  const fromProxy = new Set(findings.filter((f) => f.id.startsWith('upstream.from-proxy.') && (f.status === 'ok' || f.status === 'fail')).map((f) => f.id.slice('upstream.from-proxy.'.length)));
  for (const [i, f] of findings.entries()) {
    const key = f.id.startsWith('upstream.allowed.') ? f.id.slice('upstream.allowed.'.length) : undefined;
    if (key !== undefined && f.status === 'warn' && fromProxy.has(key)) findings[i] = skip(f.id, `${f.message} (checked from the proxy's network namespace instead: upstream.from-proxy.${key})`);
  }

  const counts: Record<DoctorStatus, number> = { ok: 0, warn: 0, fail: 0, skip: 0 };
  for (const f of findings) counts[f.status]++;
  return { dir: paths.dir, findings, counts, ok: counts.fail === 0 };
}

import fs from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { COMPOSE_SERVICES, TUNNEL_TOKEN_MISSING_MESSAGE } from '../deployment/compose-file.js';
import { parseProxyConfig } from '../deployment/proxy-config.js';
import { isUserError } from '../errors.js';
import type { DaemonInfo } from './client.js';
import type { ComposeProject, ComposeService } from './compose-model.js';
import { stackRoles } from './containers.js';
import { formatMode as octal } from '../deployment/file-mode.js';

/**
 * Checks made before anything is created, each failing with one clear line (issue 4, point 3). Docker
 * reachability lives in client.ts (pingDocker) and unpullable images in images.ts (pullImage): both are
 * only known for real by trying.
 */
export interface PreflightFinding {
  check: 'rootless' | 'tunnel-token' | 'data-permissions' | 'proxy-config';
  level: 'error' | 'warning';
  /** Set on errors: the stable code of the UserError `up` throws for it. */
  code?: string;
  message: string;
  hint: string;
}

/** A rootless daemon maps container UIDs onto the user's subordinate range: the key's owner is not who it seems. */
export function checkRootless(info: DaemonInfo, project: ComposeProject): PreflightFinding | undefined {
  if (!info.rootless) return undefined;
  const users = [...new Set(project.services.map((s) => s.user).filter((u): u is string => Boolean(u)))];
  return {
    check: 'rootless',
    level: 'warning',
    message:
      `the Docker daemon is rootless: container user ${users.join(', ') || '(image default)'} is mapped to a subordinate UID on the host, ` +
      'so files in data/ owned by you (mode 0600) are not readable by it',
    hint: 'under rootless Docker, container root is your own user: set MCP_TUNNEL_UID=0 and MCP_TUNNEL_GID=0 in .env, or make data/tls.key readable by the mapped UID',
  };
}

/** The tunnel token cloudflared reads: missing or empty is an error (compose's ${VAR:?} catches the generated files; this catches the rest). */
export function checkTunnelToken(project: ComposeProject): PreflightFinding | undefined {
  const roles = stackRoles(project);
  const svc = project.services.find((s) => s.name === (roles.cloudflared ?? COMPOSE_SERVICES.cloudflared));
  if (!svc) return undefined;
  const value = svc.environment.TUNNEL_TOKEN;
  if (!('TUNNEL_TOKEN' in svc.environment) || value === null || value === undefined || value.trim() === '') {
    return { check: 'tunnel-token', level: 'error', code: 'TUNNEL_TOKEN_MISSING', message: TUNNEL_TOKEN_MISSING_MESSAGE, hint: 'mcp-tunnel rotate-token --tunnel-token-file FILE writes it, or add TUNNEL_TOKEN=... to .env (mode 0600)' };
  }
  if (!/^eyJ[A-Za-z0-9+/=_-]+$/.test(value.trim())) {
    return {
      check: 'tunnel-token',
      level: 'warning',
      message: 'TUNNEL_TOKEN does not look like a tunnel token (base64 JSON starting with "eyJ")',
      hint: 'copy the token exactly as the Console shows it (mcp-tunnel rotate-token writes it to .env)',
    };
  }
  return undefined;
}

interface Identity {
  uid: number;
  gid: number;
  /** cap_drop: ALL (or DAC_OVERRIDE) takes root's power to ignore file modes. */
  canOverride: boolean;
}

function identityOf(service: ComposeService): Identity | undefined {
  const m = /^(\d+)(?::(\d+))?$/.exec(service.user ?? '');
  if (!m) return undefined; // a user name, or the image's default: cannot be resolved from here
  const uid = Number(m[1]);
  const gid = m[2] !== undefined ? Number(m[2]) : uid;
  const dropped = (service.capDrop ?? []).map((c) => c.toUpperCase().replace(/^CAP_/, ''));
  const canOverride = uid === 0 && !dropped.includes('ALL') && !dropped.includes('DAC_OVERRIDE');
  return { uid, gid, canOverride };
}

function allowed(st: { uid: number; gid: number; mode: number }, who: Identity, want: 'r' | 'x'): boolean {
  if (who.canOverride) return true;
  const bit = want === 'r' ? 4 : 1;
  if (st.uid === who.uid) return ((st.mode >> 6) & bit) !== 0;
  if (st.gid === who.gid) return ((st.mode >> 3) & bit) !== 0;
  return (st.mode & bit) !== 0;
}


/** The container paths the proxy reads, from its config (tls files, upstream CA). */
async function proxyReadPaths(configHostPath: string | undefined): Promise<string[]> {
  const out = ['/data/tls.crt', '/data/tls.key'];
  if (!configHostPath) return out;
  try {
    const doc = YAML.parse(await fs.readFile(configHostPath, 'utf8')) as {
      tls?: { cert_file?: unknown; key_file?: unknown };
      upstream?: { tls?: { ca_file?: unknown } };
    } | null;
    const found = [doc?.tls?.cert_file, doc?.tls?.key_file, doc?.upstream?.tls?.ca_file].filter((p): p is string => typeof p === 'string' && p.startsWith('/'));
    return found.length ? found : out;
  } catch {
    return out; // an unreadable or broken config is the proxy's to report
  }
}

/**
 * Files the containers must read, checked against the user they run as (compose.yaml's user:, i.e.
 * MCP_TUNNEL_UID:MCP_TUNNEL_GID): every bind-mounted file, and the files the proxy's config names inside
 * a bind-mounted directory, with every directory on the way.
 */
export async function checkDataReadable(project: ComposeProject): Promise<PreflightFinding[]> {
  const findings: PreflightFinding[] = [];
  const roles = stackRoles(project);
  const rel = (p: string): string => path.relative(project.dir, p) || p;
  for (const svc of project.services) {
    const who = identityOf(svc);
    if (!who || svc.binds.length === 0) continue;
    const problem = (hostPath: string, st: { uid: number; gid: number; mode: number }, kind: 'file' | 'dir'): PreflightFinding => ({
      check: 'data-permissions',
      level: 'error',
      code: 'DATA_NOT_READABLE',
      message:
        kind === 'file'
          ? `${rel(hostPath)} is not readable by the container user ${who.uid}:${who.gid} of ${svc.name} (owner ${st.uid}:${st.gid}, mode ${octal(st.mode)})`
          : `${rel(hostPath)}/ cannot be entered by the container user ${who.uid}:${who.gid} of ${svc.name} (owner ${st.uid}:${st.gid}, mode ${octal(st.mode)})`,
      hint:
        st.uid !== 0
          ? `set MCP_TUNNEL_UID=${st.uid} and MCP_TUNNEL_GID=${st.gid} in .env (the files' owner), or run: sudo chown ${who.uid}:${who.gid} ${rel(hostPath)}`
          : `run: sudo chown ${who.uid}:${who.gid} ${rel(hostPath)} (keep keys 0600), or set MCP_TUNNEL_UID/MCP_TUNNEL_GID in .env to its owner`,
    });
    const targets: Array<{ host: string; root: string }> = [];
    for (const b of svc.binds) targets.push({ host: b.source, root: b.source });
    if (svc.name === roles.proxy) {
      const configBind = svc.binds.find((b) => b.target === '/etc/mcp-gateway/config.yaml');
      for (const p of await proxyReadPaths(configBind?.source)) {
        const bind = svc.binds
          .filter((b) => p === b.target || p.startsWith(`${b.target}/`))
          .sort((a, b) => b.target.length - a.target.length)[0];
        if (bind && p !== bind.target) targets.push({ host: path.join(bind.source, p.slice(bind.target.length)), root: bind.source });
      }
    }
    const seen = new Set<string>();
    for (const t of targets) {
      if (seen.has(t.host)) continue;
      seen.add(t.host);
      const st = await fs.stat(t.host).catch(() => undefined);
      if (!st) continue; // a missing file is reported by Docker (bind source) or the proxy (config)
      // Directories from the mount root down to the file must be searchable.
      const chain: string[] = [];
      for (let d = st.isDirectory() ? t.host : path.dirname(t.host); d.startsWith(t.root); d = path.dirname(d)) {
        chain.unshift(d);
        if (d === t.root || d === path.dirname(d)) break;
      }
      let blocked = false;
      for (const dir of chain) {
        const ds = await fs.stat(dir).catch(() => undefined);
        if (ds && !allowed(ds, who, 'x')) {
          if (!seen.has(`dir:${dir}`)) findings.push(problem(dir, ds, 'dir'));
          seen.add(`dir:${dir}`);
          blocked = true;
          break;
        }
      }
      if (blocked || st.isDirectory()) continue;
      if (!allowed(st, who, 'r')) findings.push(problem(t.host, st, 'file'));
    }
  }
  return findings;
}

/** Where the proxy reads its config (docs/contract.md §1: /etc/mcp-gateway/config.yaml), as bind-mounted from the host. */
const PROXY_CONFIG_TARGET = '/etc/mcp-gateway/config.yaml';

/**
 * The proxy's config, parsed as the proxy parses it: a config it refuses (a routes list, an upstream that is
 * not scheme://host:port, broken YAML) would only crash-loop after the pull. An unknown field is left to
 * the proxy: the official one may know fields the builtin one does not.
 */
export async function checkProxyConfig(project: ComposeProject): Promise<PreflightFinding | undefined> {
  const roles = stackRoles(project);
  const proxy = project.services.find((s) => s.name === (roles.proxy ?? COMPOSE_SERVICES.proxy));
  const bind = proxy?.binds.find((b) => b.target === PROXY_CONFIG_TARGET);
  if (!bind) return undefined;
  const text = await fs.readFile(bind.source, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined; // a missing bind source is Docker's to report, an unreadable one data-permissions'
  try {
    parseProxyConfig(text);
    return undefined;
  } catch (err) {
    if (!isUserError(err) || err.code === 'PROXY_CONFIG_UNKNOWN_FIELD') return undefined;
    const rel = path.relative(project.dir, bind.source) || bind.source;
    return { check: 'proxy-config', level: 'error', code: err.code, message: `${rel}: ${err.message}`, hint: err.hint ?? 'mcp-tunnel doctor checks the whole file' };
  }
}

export async function runPreflight(project: ComposeProject, info: DaemonInfo | undefined): Promise<PreflightFinding[]> {
  const findings: PreflightFinding[] = [];
  const config = await checkProxyConfig(project);
  if (config) findings.push(config);
  const token = checkTunnelToken(project);
  if (token) findings.push(token);
  if (info) {
    const rootless = checkRootless(info, project);
    if (rootless) findings.push(rootless);
  }
  // Under rootless Docker the host-side owner says nothing about the container's view: the warning covers it.
  if (!info?.rootless) findings.push(...(await checkDataReadable(project)));
  return findings;
}

import os from 'node:os';
import path from 'node:path';
import type { Bind, ComposeService, ServicePort } from './compose-types.js';
import {
  BUILD_KEYS,
  checkSecurityOpt,
  fail,
  isDict,
  isServicePort,
  parseBuildArgs,
  parseDependsOn,
  parseEnvironment,
  parseLabels,
  parsePortSpec,
  pyStr,
  splitPathMapping,
  toList,
  type Dict,
} from './compose-fields.js';
import { composeNanoseconds, composeTimeparse, shlexSplit, type PyJson } from './py-compat.js';

/**
 * One service's merged, interpolated dict turned into what docker-compose 1.29 holds for it: processService
 * is compose's process_service + finalize_service (paths resolved against the project directory, volumes
 * parsed into binds, environment and build args resolved, the remaining fields validated), and
 * toTypedService derives the typed ComposeService from it, whose `options` is compose's `Service.options`
 * (what the config hash is made of).
 */

const HEALTHCHECK_KEYS = new Set(['test', 'interval', 'timeout', 'retries', 'start_period', 'disable']);
const LOGGING_KEYS = new Set(['driver', 'options']);

// ---------------------------------------------------------------------------------------------------------
// process_service + finalize_service

function expandPath(dir: string, p: string): string {
  const home = process.env.HOME || os.homedir();
  const expanded = p === '~' ? home : p.startsWith('~/') ? path.join(home, p.slice(2)) : p;
  return path.resolve(dir, expanded);
}

function normpath(p: string): string {
  const n = path.posix.normalize(p);
  return n.length > 1 ? n.replace(/\/$/, '') : n;
}

export interface Processed {
  dict: Dict;
  ports: ServicePort[] | undefined;
  binds: Bind[];
}

export function processService(name: string, input: Dict, dir: string, env: Readonly<Record<string, string>>, serviceNames: Set<string>, rel: string): Processed {
  const where = `${rel}: service "${name}"`;
  const d: Dict = { ...input };

  if ('image' in d && typeof d.image !== 'string') fail(`${where}: image must be a string`);
  if (!('image' in d) && !('build' in d)) fail(`${where} has neither image nor build`, 'add image: (or build:)');

  // build
  if ('build' in d) {
    if (typeof d.build === 'string') d.build = expandPath(dir, d.build);
    else if (isDict(d.build)) {
      for (const k of Object.keys(d.build)) if (!BUILD_KEYS.has(k)) fail(`${where}: build.${k} is not supported by mcp-tunnel up`, `supported: ${[...BUILD_KEYS].join(', ')}`);
      d.build = { ...d.build };
      const b = d.build as Dict;
      if (typeof b.context !== 'string') fail(`${where}: build.context is required`);
      b.context = expandPath(dir, b.context);
    } else fail(`${where}: build must be a path or a mapping with context`);
  }

  // volumes (resolve_volume_path, then VolumeSpec.parse)
  const binds: Bind[] = [];
  const specs: PyJson[] = [];
  for (const v of toList(d.volumes)) {
    if (typeof v !== 'string') fail(`${where}: volumes: only the short syntax ("./host:/container:ro") is supported by mcp-tunnel up`);
    const [container, host] = splitPathMapping(v);
    if (host === null || host[0] === '') {
      fail(`${where}: anonymous volume "${v}" is not supported by mcp-tunnel up`, 'bind a host path ("./dir:/container") instead');
    }
    let hostPath = host[0];
    if (!hostPath.startsWith('.') && !hostPath.startsWith('/') && !hostPath.startsWith('~')) {
      fail(`${where}: named volume "${hostPath}" is not supported by mcp-tunnel up`, 'bind a host path ("./dir:/container") instead');
    }
    if (hostPath.startsWith('.')) hostPath = expandPath(dir, hostPath);
    if (hostPath.startsWith('~')) hostPath = expandPath(dir, hostPath);
    const parts = `${hostPath}:${container}${host[1] ? `:${host[1]}` : ''}`.split(':');
    if (parts.length > 3) fail(`${where}: volume "${v}" has an incorrect format, should be external:internal[:mode]`);
    const spec: Bind = { source: normpath(parts[0]!), target: normpath(parts[1]!), mode: parts[2] ?? 'rw' };
    if (binds.some((b) => b.target === spec.target)) fail(`${where}: duplicate mount point ${spec.target}`);
    binds.push(spec);
    specs.push([spec.source, spec.target, spec.mode]);
  }
  d.volumes = specs; // always present (Project.from_config sets it for every service)

  if ('labels' in d) d.labels = parseLabels(d.labels, where);
  if ('depends_on' in d) {
    d.depends_on = parseDependsOn(d.depends_on, where);
    for (const [dep, cond] of Object.entries(d.depends_on as Dict)) {
      if (!serviceNames.has(dep)) fail(`${where} depends on undefined service "${dep}"`);
      const c = isDict(cond) ? cond.condition : undefined;
      if (!['service_started', 'service_healthy', 'service_completed_successfully'].includes(String(c))) fail(`${where}: depends_on.${dep}.condition "${String(c)}" is not supported`);
    }
  }

  if ('healthcheck' in d) {
    if (!isDict(d.healthcheck)) fail(`${where}: healthcheck must be a mapping`);
    const hc: Dict = { ...d.healthcheck };
    for (const k of Object.keys(hc)) if (!HEALTHCHECK_KEYS.has(k)) fail(`${where}: healthcheck.${k} is not supported by mcp-tunnel up`);
    if ('disable' in hc) {
      delete hc.disable;
      hc.test = ['NONE'];
    }
    for (const f of ['interval', 'timeout', 'start_period']) {
      if (!(f in hc) || typeof hc[f] === 'number') continue;
      const ns = typeof hc[f] === 'string' ? composeNanoseconds(hc[f]) : undefined;
      if (ns === undefined) fail(`${where}: healthcheck.${f} "${String(hc[f])}" is not a duration such as 10s`);
      hc[f] = ns;
    }
    d.healthcheck = hc;
  }

  let ports: ServicePort[] | undefined;
  if ('ports' in d) {
    ports = toList(d.ports).flatMap((p) => (isServicePort(p) ? [p] : parsePortSpec(p, where)));
    d.ports = ports.map((p) => [p.target, p.published, p.protocol, p.mode, p.hostIp]);
  }

  if ('security_opt' in d) {
    const opts = toList(d.security_opt).map((v) => checkSecurityOpt(v, where));
    if (opts.length) d.security_opt = opts.map((v) => [v, null]);
  }

  for (const f of ['cap_add', 'cap_drop']) {
    if (f in d && (!Array.isArray(d[f]) || !(d[f] as unknown[]).every((c) => typeof c === 'string'))) fail(`${where}: ${f} must be a list of capability names`);
  }
  if ('group_add' in d && (!Array.isArray(d.group_add) || !(d.group_add as unknown[]).every((g) => typeof g === 'string' || typeof g === 'number'))) {
    fail(`${where}: group_add must be a list of group names or IDs`);
  }
  if ('user' in d && typeof d.user !== 'string') fail(`${where}: user must be a string such as "65532:65532" (quote it)`);
  if ('read_only' in d && typeof d.read_only !== 'boolean') fail(`${where}: read_only must be true or false`);
  if ('command' in d && typeof d.command !== 'string' && !(Array.isArray(d.command) && d.command.every((c) => typeof c === 'string' || typeof c === 'number'))) {
    fail(`${where}: command must be a string or a list of strings`);
  }
  if ('stop_grace_period' in d && (typeof d.stop_grace_period !== 'string' || composeTimeparse(d.stop_grace_period) === undefined)) {
    fail(`${where}: stop_grace_period "${String(d.stop_grace_period)}" is not a duration such as 30s`);
  }
  if ('logging' in d) {
    if (!isDict(d.logging)) fail(`${where}: logging must be a mapping with driver and options`);
    for (const k of Object.keys(d.logging)) if (!LOGGING_KEYS.has(k)) fail(`${where}: logging.${k} is not supported by mcp-tunnel up`);
  }
  if ('network_mode' in d) {
    const nm = d.network_mode;
    if (typeof nm !== 'string') fail(`${where}: network_mode must be a string`);
    if (nm.startsWith('service:')) {
      if (!serviceNames.has(nm.slice('service:'.length))) fail(`${where}: network_mode "${nm}" names an undefined service`);
    } else if (!['host', 'none', 'bridge'].includes(nm)) {
      fail(`${where}: network_mode "${nm}" is not supported by mcp-tunnel up`, 'supported: service:NAME, host, none, bridge');
    }
  }

  // finalize_service
  if ('environment' in d) {
    const parsed = parseEnvironment(d.environment, where);
    const resolved: Dict = {};
    for (const [k, v] of Object.entries(parsed)) resolved[k] = v !== null && v !== undefined ? v : k in env ? env[k] : null;
    d.environment = resolved;
  }
  if ('restart' in d) {
    const r = d.restart;
    if (!r) d.restart = null;
    else {
      if (typeof r !== 'string') fail(`${where}: restart must be a string such as unless-stopped`);
      const parts = r.split(':');
      if (parts.length > 2) fail(`${where}: restart ${r} has an incorrect format, should be mode[:max_retry]`);
      if (!['no', 'always', 'unless-stopped', 'on-failure'].includes(parts[0]!)) fail(`${where}: restart "${r}" is not one of no, always, unless-stopped, on-failure[:N]`);
      const n = parts.length === 2 ? Number.parseInt(parts[1]!, 10) : 0;
      if (Number.isNaN(n)) fail(`${where}: restart ${r}: the retry count is not a number`);
      d.restart = { Name: parts[0]!, MaximumRetryCount: n };
    }
  }
  if ('build' in d) {
    const build: Dict = typeof d.build === 'string' ? { context: d.build } : { ...(d.build as Dict) };
    if ('args' in build) {
      const args = parseBuildArgs(build.args, where);
      const out: Dict = {};
      for (const [k, v] of Object.entries(args)) {
        const value = v !== null && v !== undefined ? v : k in env ? env[k] : null;
        out[k] = value === null ? '' : String(pyStr(value));
      }
      build.args = out;
    }
    d.build = build;
  }
  return { dict: d, ports, binds };
}

// ---------------------------------------------------------------------------------------------------------
// Typed view

function formatEnvValue(v: unknown): string {
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return String(v);
}

export function toTypedService(project: string, name: string, p: Processed): ComposeService {
  const d = p.dict;
  const options: Record<string, PyJson> = {};
  for (const [k, v] of Object.entries(d)) if (k !== 'network_mode') options[k] = toPyJson(v);
  options.device_requests = null;
  options.platform = null;

  const environment: Record<string, string | null> = {};
  for (const [k, v] of Object.entries((d.environment as Dict | undefined) ?? {})) environment[k] = v === null || v === undefined ? null : formatEnvValue(v);
  const build = d.build as Dict | undefined;
  const hc = d.healthcheck as Dict | undefined;
  const nm = d.network_mode as string | undefined;
  const logging = d.logging as Dict | undefined;
  const stop = typeof d.stop_grace_period === 'string' ? composeTimeparse(d.stop_grace_period) : undefined;

  return {
    name,
    options,
    image: typeof d.image === 'string' ? d.image : `${project}_${name}`,
    build: build
      ? {
          context: build.context as string,
          ...(typeof build.dockerfile === 'string' ? { dockerfile: build.dockerfile } : {}),
          args: (build.args as Record<string, string> | undefined) ?? {},
        }
      : undefined,
    command: d.command === undefined || d.command === null ? undefined : typeof d.command === 'string' ? splitCommand(d.command, name) : (d.command as unknown[]).map(String),
    env: Object.entries(environment).map(([k, v]) => (v === null ? k : `${k}=${v}`)),
    environment,
    binds: p.binds,
    user: d.user === undefined || d.user === null ? undefined : String(d.user),
    readOnly: typeof d.read_only === 'boolean' ? d.read_only : undefined,
    securityOpt: Array.isArray(d.security_opt) ? (d.security_opt as Array<[string, null]>).map((o) => o[0]) : undefined,
    capAdd: d.cap_add as string[] | undefined,
    capDrop: d.cap_drop as string[] | undefined,
    groupAdd: Array.isArray(d.group_add) ? (d.group_add as unknown[]).map(String) : undefined,
    restart: (d.restart as ComposeService['restart'] | null | undefined) ?? undefined,
    stopTimeoutSeconds: stop === undefined ? undefined : Math.ceil(stop),
    logging: logging
      ? {
          driver: typeof logging.driver === 'string' ? logging.driver : '',
          ...(isDict(logging.options) ? { options: Object.fromEntries(Object.entries(logging.options).map(([k, v]) => [k, String(v)])) } : {}),
        }
      : undefined,
    networkMode: !nm
      ? { kind: 'default' }
      : nm.startsWith('service:')
        ? { kind: 'service', service: nm.slice('service:'.length) }
        : { kind: 'builtin', mode: nm as 'host' | 'none' | 'bridge' },
    dependsOn: (d.depends_on as Record<string, { condition: string }> | undefined) ?? {},
    healthcheck: hc
      ? {
          test: typeof hc.test === 'string' ? ['CMD-SHELL', hc.test] : ((hc.test as unknown[] | undefined) ?? []).map(String),
          ...(typeof hc.interval === 'number' ? { intervalNs: hc.interval } : {}),
          ...(typeof hc.timeout === 'number' ? { timeoutNs: hc.timeout } : {}),
          ...(typeof hc.start_period === 'number' ? { startPeriodNs: hc.start_period } : {}),
          ...(typeof hc.retries === 'number' ? { retries: hc.retries } : {}),
        }
      : undefined,
    ports: p.ports ?? [],
    labels: Object.fromEntries(Object.entries((d.labels as Dict | undefined) ?? {}).map(([k, v]) => [k, v === null || v === undefined ? '' : String(v)])),
  };
}

function splitCommand(command: string, service: string): string[] {
  try {
    return shlexSplit(command);
  } catch (err) {
    fail(`service "${service}": command cannot be split into words: ${(err as Error).message}`, 'check the quotes in command:');
  }
}

function toPyJson(v: unknown): PyJson {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (v instanceof Date) fail(`a date (${v.toISOString()}) where compose expects a string: quote the value`);
  if (Array.isArray(v)) return v.map(toPyJson);
  if (isDict(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toPyJson(x)]));
  return String(v);
}

import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { ValidationError } from '../errors.js';
import { parseEnvFile } from '../bundle/env-file.js';
import { projectNameFor } from '../bundle/layout.js';
import { interpolateValue, type InterpolationContext } from './interpolate.js';
import { composeNanoseconds, composeTimeparse, shlexSplit, type PyJson } from './py-compat.js';

/**
 * The deployment's compose files read exactly as docker-compose 1.29 reads them: the same files
 * (compose.yaml + compose.override.yaml, or COMPOSE_FILE), the same .env (the process environment wins),
 * the same interpolation, the same merge of an override file and the same normalisation, so that
 * `options` below is compose's own `Service.options` and the config hash we compute is the one
 * docker-compose computes (config-hash.ts).
 *
 * Only the subset of the Compose file format mcp-tunnel's files use is supported; anything else fails
 * with one line naming the key, instead of being silently ignored.
 */

type Dict = Record<string, unknown>;

/** Compose's files, in its order of preference (docker-compose 1.29: docker-compose.yml first). */
export const COMPOSE_FILENAMES = ['docker-compose.yml', 'docker-compose.yaml', 'compose.yml', 'compose.yaml'] as const;
export const COMPOSE_OVERRIDE_FILENAMES = [
  'docker-compose.override.yml',
  'docker-compose.override.yaml',
  'compose.override.yml',
  'compose.override.yaml',
] as const;

export const SUPPORTED_SERVICE_KEYS = [
  'image',
  'build',
  'command',
  'environment',
  'volumes',
  'user',
  'read_only',
  'security_opt',
  'cap_drop',
  'cap_add',
  'group_add',
  'restart',
  'stop_grace_period',
  'logging',
  'network_mode',
  'depends_on',
  'healthcheck',
  'ports',
  'labels',
] as const;
const SERVICE_KEYS = new Set<string>(SUPPORTED_SERVICE_KEYS);
const BUILD_KEYS = new Set(['context', 'args', 'dockerfile']);
const HEALTHCHECK_KEYS = new Set(['test', 'interval', 'timeout', 'retries', 'start_period', 'disable']);
const LOGGING_KEYS = new Set(['driver', 'options']);
const PORT_KEYS = new Set(['target', 'published', 'protocol', 'mode']);
const TOP_LEVEL_KEYS = new Set(['version', 'services', 'networks', 'volumes', 'secrets', 'configs']);

export interface ServicePort {
  target: number;
  /** A host port, a range "8000-8010", or null for "any free port". */
  published: number | string | null;
  protocol: string | null;
  mode: string | null;
  hostIp: string | null;
}

export interface Bind {
  source: string;
  target: string;
  mode: string;
}

export type NetworkModeSpec =
  | { kind: 'default' }
  | { kind: 'service'; service: string }
  | { kind: 'builtin'; mode: 'host' | 'none' | 'bridge' };

export interface HealthcheckSpec {
  test: string[];
  intervalNs?: number;
  timeoutNs?: number;
  startPeriodNs?: number;
  retries?: number;
}

export interface ComposeService {
  name: string;
  /** compose's `Service.options` for this service: what the config hash is made of. */
  options: Record<string, PyJson>;
  /** The image the container runs (compose's default for a build without image: <project>_<service>). */
  image: string;
  build?: { context: string; dockerfile?: string; args: Record<string, string> };
  command?: string[];
  /** Docker's Env entries ("KEY=value", or "KEY" for an unset one). */
  env: string[];
  /** The resolved environment (null: listed but unset). */
  environment: Record<string, string | null>;
  binds: Bind[];
  user?: string;
  readOnly?: boolean;
  securityOpt?: string[];
  capAdd?: string[];
  capDrop?: string[];
  groupAdd?: string[];
  restart?: { Name: string; MaximumRetryCount: number };
  stopTimeoutSeconds?: number;
  logging?: { driver: string; options?: Record<string, string> };
  networkMode: NetworkModeSpec;
  dependsOn: Record<string, { condition: string }>;
  healthcheck?: HealthcheckSpec;
  ports: ServicePort[];
  labels: Record<string, string>;
}

export interface ComposeProject {
  name: string;
  /** The project directory (compose's working_dir), absolute. */
  dir: string;
  /** The compose files in merge order, absolute. */
  configFiles: string[];
  /** The `com.docker.compose.project.config_files` label as docker-compose 1.29 run in DIR writes it. */
  configFilesLabel: string;
  /** What ${VAR} resolves from: DIR/.env overlaid by the process environment. */
  env: Record<string, string>;
  /** Dependencies first (depends_on, network_mode service:). */
  services: ComposeService[];
  /** Variables used but unset (compose warns "The X variable is not set. Defaulting to a blank string."). */
  unsetVariables: string[];
  /** The project's default network, <project>_default. */
  networkName: string;
}

export interface LoadOptions {
  /** The process environment to overlay on .env (default process.env). */
  processEnv?: NodeJS.ProcessEnv;
}

function fail(message: string, hint?: string): never {
  throw new ValidationError(message, hint ?? 'fix the compose file (docker compose config shows how compose reads it)');
}

const isDict = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** compose's project name normalisation: lower case, [-_a-z0-9] only. */
export function normaliseProjectName(name: string): string {
  return name.toLowerCase().replace(/[^-_a-z0-9]/g, '');
}

/** DIR/.env overlaid by the process environment (compose's Environment.from_env_file). */
export async function readComposeEnvironment(dir: string, processEnv: NodeJS.ProcessEnv = process.env): Promise<Record<string, string>> {
  const envFile = path.join(path.resolve(dir), '.env');
  let fromFile: Record<string, string> = {};
  try {
    fromFile = parseEnvFile(await fs.readFile(envFile, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES') {
      throw new ValidationError(`cannot read ${envFile}: permission denied`, 'run as the user who owns the deployment directory (it holds the tunnel token, mode 0600)');
    }
    if (code !== 'ENOENT' && code !== 'EISDIR') throw err;
  }
  const env: Record<string, string> = { ...fromFile };
  for (const [k, v] of Object.entries(processEnv)) if (v !== undefined) env[k] = v;
  return env;
}

/** The project name compose uses for DIR: COMPOSE_PROJECT_NAME (from .env or the environment) or the directory's name. */
export function projectNameFromEnv(dir: string, env: Readonly<Record<string, string>>): string {
  const fromEnv = env.COMPOSE_PROJECT_NAME ? normaliseProjectName(env.COMPOSE_PROJECT_NAME) : '';
  return fromEnv || projectNameFor(dir);
}

/** Resolves the project name without parsing compose.yaml (down/status/logs must work on a broken file). */
export async function resolveProjectName(dir: string, options: LoadOptions = {}): Promise<string> {
  return projectNameFromEnv(dir, await readComposeEnvironment(dir, options.processEnv));
}

/** The compose files for DIR: COMPOSE_FILE, or the first of COMPOSE_FILENAMES plus an override file. */
export function findComposeFiles(dir: string, env: Readonly<Record<string, string>>): string[] {
  const root = path.resolve(dir);
  if (env.COMPOSE_FILE) {
    const sep = env.COMPOSE_PATH_SEPARATOR || path.delimiter;
    return env.COMPOSE_FILE.split(sep)
      .filter(Boolean)
      .map((f) => path.resolve(root, f));
  }
  const main = COMPOSE_FILENAMES.find((f) => existsSync(path.join(root, f)));
  if (!main) {
    throw new ValidationError(`no compose.yaml in ${root}`, 'run in the deployment directory or pass --dir DIR (or set MCP_TUNNEL_DIR); mcp-tunnel init creates it');
  }
  const overrides = COMPOSE_OVERRIDE_FILENAMES.filter((f) => existsSync(path.join(root, f)));
  if (overrides.length > 1) fail(`more than one override file in ${root}: ${overrides.join(', ')}`, 'keep only one (compose refuses to choose)');
  return [path.join(root, main), ...overrides.map((f) => path.join(root, f))];
}

// ---------------------------------------------------------------------------------------------------------
// Reading one file

function readFileServices(file: string, dir: string): Record<string, Dict> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fail(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? String(err))}`);
  }
  const rel = path.relative(dir, file) || file;
  let doc: unknown;
  try {
    // YAML 1.1, as PyYAML (docker-compose) reads it: `no` is false, 22:22 is a number, and so on.
    doc = YAML.parse(text, { version: '1.1' });
  } catch (err) {
    fail(`${rel} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!isDict(doc)) fail(`${rel} must be a YAML mapping with a services: key`);
  for (const [key, value] of Object.entries(doc)) {
    if (key.startsWith('x-')) continue;
    if (!TOP_LEVEL_KEYS.has(key)) {
      fail(`${rel}: top-level key "${key}" is not supported by mcp-tunnel`, key === 'name' ? 'docker-compose 1.29 refuses it too: set COMPOSE_PROJECT_NAME in .env instead' : 'supported: version, services');
    }
    if (key === 'version' || key === 'services') continue;
    if (value !== null && !(isDict(value) && Object.keys(value).length === 0)) {
      fail(`${rel}: top-level "${key}:" is not supported by mcp-tunnel up (only the project's default network and bind mounts)`, 'use docker compose for this file, or remove the section');
    }
  }
  if (doc.version !== undefined && doc.version !== null && !/^[23](\.\d+)?$/.test(String(doc.version))) {
    fail(`${rel}: version "${String(doc.version)}" is not supported`, 'remove the version: key (the Compose Specification) or use version 2.x/3.x');
  }
  const services = doc.services;
  if (services === undefined || services === null) fail(`${rel} has no services:`);
  if (!isDict(services)) fail(`${rel}: services: must be a mapping of service names`);
  const out: Record<string, Dict> = {};
  for (const [name, svc] of Object.entries(services)) {
    if (!/^[a-zA-Z0-9._-]+$/.test(name)) fail(`${rel}: service name "${name}" may only hold letters, digits, ".", "_" and "-"`);
    if (!isDict(svc)) fail(`${rel}: service "${name}" must be a mapping`);
    for (const key of Object.keys(svc)) {
      if (!SERVICE_KEYS.has(key)) {
        fail(
          `${rel}: service "${name}": "${key}" is not supported by mcp-tunnel up`,
          `supported keys: ${SUPPORTED_SERVICE_KEYS.join(', ')}; use docker compose for this file, or remove the key`,
        );
      }
    }
    out[name] = svc;
  }
  return out;
}

// compose's ConversionMap, for the paths of the keys we support.
function toBoolean(v: unknown, where: string): unknown {
  if (typeof v !== 'string') return v;
  const s = v.toLowerCase();
  if (['y', 'yes', 'true', 'on'].includes(s)) return true;
  if (['n', 'no', 'false', 'off'].includes(s)) return false;
  fail(`${where}: "${v}" is not a valid boolean value`);
}
function toInt(v: unknown, where: string): unknown {
  if (typeof v !== 'string') return v;
  const s = v.trim();
  const n = /^0[0-9]+$/.test(s) ? Number.parseInt(s.slice(1), 8) : /^[-+]?\d+$/.test(s) ? Number.parseInt(s, 10) : NaN;
  if (Number.isNaN(n)) fail(`${where}: "${v}" is not a valid integer`);
  return n;
}
const pyStr = (v: unknown): unknown => (typeof v === 'boolean' ? (v ? 'True' : 'False') : typeof v === 'number' ? String(v) : v);

function interpolateService(name: string, svc: Dict, ctx: InterpolationContext, rel: string): Dict {
  const where = `${rel}: service "${name}"`;
  const out = interpolateValue(svc, ctx, where) as Dict;
  if (isDict(out.labels)) for (const k of Object.keys(out.labels)) out.labels[k] = pyStr(out.labels[k]);
  if ('read_only' in out) out.read_only = toBoolean(out.read_only, `${where}: read_only`);
  if (isDict(out.healthcheck)) {
    if ('retries' in out.healthcheck) out.healthcheck.retries = toInt(out.healthcheck.retries, `${where}: healthcheck.retries`);
    if ('disable' in out.healthcheck) out.healthcheck.disable = toBoolean(out.healthcheck.disable, `${where}: healthcheck.disable`);
  }
  if (Array.isArray(out.ports)) {
    for (const p of out.ports) {
      if (!isDict(p)) continue;
      if ('target' in p) p.target = toInt(p.target, `${where}: ports.target`);
      if ('published' in p) p.published = toInt(p.published, `${where}: ports.published`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// compose's parse helpers

function splitEnv(entry: string, where: string): [string, string | null] {
  const i = entry.indexOf('=');
  const key = i >= 0 ? entry.slice(0, i) : entry;
  if (/\s/.test(key)) fail(`${where}: environment variable name '${key}' may not contain whitespace`);
  return [key, i >= 0 ? entry.slice(i + 1) : null];
}

function parseDictOrList(value: unknown, split: (s: string) => [string, unknown], what: string, where: string): Dict {
  if (value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0)) return {};
  if (Array.isArray(value)) {
    const out: Dict = {};
    for (const item of value) {
      if (typeof item !== 'string') fail(`${where}: each ${what} entry must be a string such as KEY=value`);
      const [k, v] = split(item);
      out[k] = v;
    }
    return out;
  }
  if (isDict(value)) return { ...value };
  fail(`${where}: ${what} must be a list or a mapping`);
}

const parseEnvironment = (v: unknown, where: string): Dict => parseDictOrList(v, (s) => splitEnv(s, where), 'environment', `${where}: environment`);
const parseLabels = (v: unknown, where: string): Dict =>
  parseDictOrList(
    v,
    (s) => {
      const i = s.indexOf('=');
      return i >= 0 ? [s.slice(0, i), s.slice(i + 1)] : [s, ''];
    },
    'labels',
    `${where}: labels`,
  );
const parseBuildArgs = (v: unknown, where: string): Dict => parseDictOrList(v, (s) => splitEnv(s, where), 'build args', `${where}: build.args`);
const parseDependsOn = (v: unknown, where: string): Dict =>
  parseDictOrList(v, (s) => [s, { condition: 'service_started' }], 'depends_on', `${where}: depends_on`);

function toList(v: unknown): unknown[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

/** split_path_mapping: "host:container[:mode]" -> [container, [host, mode] | null]. */
function splitPathMapping(volume: string): [string, [string, string | null] | null] {
  const i = volume.indexOf(':');
  if (i < 0) return [volume, null];
  const host = volume.slice(0, i);
  let container = volume.slice(i + 1);
  let mode: string | null = null;
  const j = container.lastIndexOf(':');
  if (j >= 0) {
    mode = container.slice(j + 1);
    container = container.slice(0, j);
  }
  return [container, [host, mode]];
}

function joinPathMapping(container: string, host: [string, string | null] | null): string {
  if (host === null) return container;
  return `${host[0]}:${container}${host[1] ? `:${host[1]}` : ''}`;
}

const pyCompare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** SecurityOpt.parse -> the value (seccomp profiles from files are not supported). */
function checkSecurityOpt(value: unknown, where: string): string {
  if (typeof value !== 'string') fail(`${where}: security_opt entries must be strings`);
  let con = value.split('=');
  if (con.length === 1 && con[0] !== 'no-new-privileges') {
    if (!value.includes(':')) fail(`${where}: invalid security_opt: ${value}`);
    con = value.split(':');
  }
  if (con[0] === 'seccomp' && con[1] !== 'unconfined') fail(`${where}: security_opt seccomp profiles are not supported by mcp-tunnel up`, 'use docker compose for this file');
  return value;
}

// docker-py's split_port (ports.py)
const PORT_SPEC = /^((\[?(?<host>[a-fA-F\d.:]+)\]?:)?(?<ext>\d*)(-(?<extEnd>\d+))?:)?(?<int>\d+)(-(?<intEnd>\d+))?(?<proto>\/(udp|tcp|sctp))?$/;

function parsePortSpec(spec: unknown, where: string): ServicePort[] {
  if (isDict(spec)) {
    for (const k of Object.keys(spec)) if (!PORT_KEYS.has(k)) fail(`${where}: ports.${k} is not supported by mcp-tunnel up`);
    const target = spec.target;
    if (typeof target !== 'number') fail(`${where}: ports.target must be a port number`);
    const published = spec.published ?? null;
    if (published !== null && typeof published !== 'number') fail(`${where}: ports.published must be a port number`);
    return [{ target, published, protocol: (spec.protocol as string | undefined) ?? null, mode: (spec.mode as string | undefined) ?? null, hostIp: null }];
  }
  if (typeof spec !== 'string' && typeof spec !== 'number') fail(`${where}: ports entries must be strings such as "127.0.0.1:8081:8081"`);
  const m = PORT_SPEC.exec(String(spec));
  if (!m) fail(`${where}: invalid port "${String(spec)}"`, 'use [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL], quoted');
  const g = m.groups!;
  if (g.intEnd) fail(`${where}: port ranges ("${String(spec)}") are not supported by mcp-tunnel up`);
  const protocol = g.proto ? g.proto.slice(1) : null;
  const target = Number(g.int);
  let published: number | string | null = null;
  if (g.ext) {
    if (g.extEnd) published = `${g.ext}-${g.extEnd}`;
    else published = Number(g.ext);
  }
  return [{ target, published, protocol, mode: null, hostIp: g.host ?? null }];
}

const portKey = (p: ServicePort): string => JSON.stringify([p.target, p.published, p.hostIp, p.protocol]);

// ---------------------------------------------------------------------------------------------------------
// merge_service_dicts (only with an override file; a single file is not merged, as in compose)

function mergeMapping(base: unknown, override: unknown, parse: (v: unknown) => Dict): Dict {
  return { ...parse(base), ...parse(override) };
}

function mergeServices(base: Dict, override: Dict, where: string): Dict {
  const md: Dict = {};
  const needs = (f: string): boolean => f in base || f in override;
  const get = (d: Dict, f: string, dflt: unknown): unknown => (f in d ? d[f] : dflt);

  if (needs('environment')) md.environment = mergeMapping(base.environment, override.environment, (v) => parseEnvironment(v, where));
  if (needs('labels')) md.labels = mergeMapping(base.labels, override.labels, (v) => parseLabels(v, where));
  if (needs('depends_on')) md.depends_on = mergeMapping(base.depends_on, override.depends_on, (v) => parseDependsOn(v, where));
  if (needs('security_opt')) {
    const merged = new Map<string, string>();
    for (const v of [...toList(base.security_opt), ...toList(override.security_opt)]) {
      const s = checkSecurityOpt(v, where);
      merged.set(s, s);
    }
    md.security_opt = [...merged.values()].sort(pyCompare);
  }
  if (needs('volumes')) {
    const d = new Map<string, [string, string | null] | null>();
    for (const v of [...toList(get(base, 'volumes', [])), ...toList(get(override, 'volumes', []))]) {
      if (typeof v !== 'string') fail(`${where}: volumes: only the short syntax ("./host:/container:ro") is supported by mcp-tunnel up`);
      const [container, host] = splitPathMapping(v);
      d.set(container, host);
    }
    md.volumes = [...d.entries()].sort((a, b) => pyCompare(a[0], b[0])).map(([c, h]) => joinPathMapping(c, h));
  }
  for (const f of ['cap_add', 'cap_drop']) {
    if (needs(f)) md[f] = [...new Set([...toList(get(base, f, [])), ...toList(get(override, f, []))].map(String))].sort(pyCompare);
  }
  if (needs('logging')) {
    const b = (get(base, 'logging', {}) ?? {}) as Dict;
    const o = (get(override, 'logging', {}) ?? {}) as Dict;
    const l: Dict = {};
    if ('driver' in b || 'driver' in o) l.driver = 'driver' in o ? o.driver : b.driver;
    if (l.driver === b.driver || b.driver === undefined || b.driver === null) {
      if ('options' in b || 'options' in o) l.options = { ...((b.options as Dict | null) ?? {}), ...((o.options as Dict | null) ?? {}) };
    } else if (o.options) l.options = o.options;
    md.logging = l;
  }
  if (needs('ports')) {
    const merged = new Map<string, ServicePort>();
    for (const p of [...toList(base.ports), ...toList(override.ports)].flatMap((s) => (isServicePort(s) ? [s] : parsePortSpec(s, where)))) merged.set(portKey(p), p);
    // sorted(..., key=target) is stable: equal targets keep their insertion order
    md.ports = [...merged.values()].sort((a, b) => a.target - b.target);
  }
  if (needs('healthcheck')) {
    const b = (get(base, 'healthcheck', {}) ?? {}) as Dict;
    const o = (get(override, 'healthcheck', {}) ?? {}) as Dict;
    md.healthcheck = o.disabled === true ? o : { ...b, ...o };
  }
  // compose 1.29 merges group_add as a scalar: an override replaces the whole list.
  for (const f of ['image', 'command', 'user', 'group_add', 'read_only', 'restart', 'stop_grace_period', 'network_mode']) {
    if (needs(f)) md[f] = f in override ? override[f] : base[f];
  }
  if (needs('build')) {
    const toDict = (b: unknown): Dict => (typeof b === 'string' ? { context: b } : isDict(b) ? b : {});
    const b = toDict(base.build);
    const o = toDict(override.build);
    const out: Dict = {};
    for (const f of ['context', 'dockerfile']) if (f in b || f in o) out[f] = f in o ? o[f] : b[f];
    if ('args' in b || 'args' in o) out.args = mergeMapping(b.args, o.args, (v) => parseBuildArgs(v, where));
    for (const k of [...Object.keys(b), ...Object.keys(o)]) if (!BUILD_KEYS.has(k)) fail(`${where}: build.${k} is not supported by mcp-tunnel up`);
    md.build = out;
  }
  return md;
}

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

interface Processed {
  dict: Dict;
  ports: ServicePort[] | undefined;
  binds: Bind[];
}

function processService(name: string, input: Dict, dir: string, env: Readonly<Record<string, string>>, serviceNames: Set<string>, rel: string): Processed {
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

function isServicePort(v: unknown): v is ServicePort {
  return isDict(v) && 'hostIp' in v && 'target' in v;
}

// ---------------------------------------------------------------------------------------------------------
// Typed view

function formatEnvValue(v: unknown): string {
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return String(v);
}

function toTypedService(project: string, name: string, p: Processed): ComposeService {
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

/** Dependencies first (depends_on and network_mode service:), otherwise in file order; cycles fail. */
function orderServices(services: ComposeService[]): ComposeService[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  const out: ComposeService[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (s: ComposeService, chain: string[]): void => {
    const st = state.get(s.name);
    if (st === 'done') return;
    if (st === 'visiting') fail(`circular dependency between services: ${[...chain, s.name].join(' -> ')}`);
    state.set(s.name, 'visiting');
    const deps = [...Object.keys(s.dependsOn), ...(s.networkMode.kind === 'service' ? [s.networkMode.service] : [])];
    for (const dep of deps) visit(byName.get(dep)!, [...chain, s.name]);
    state.set(s.name, 'done');
    out.push(s);
  };
  for (const s of services) visit(s, []);
  return out;
}

/** Loads DIR's compose files and .env the way docker-compose 1.29 does. Throws ValidationError with one line. */
export async function loadComposeProject(dir: string, options: LoadOptions = {}): Promise<ComposeProject> {
  const root = path.resolve(dir);
  const st = await fs.stat(root).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new ValidationError(`deployment directory ${root} does not exist`, 'pass --dir DIR (or set MCP_TUNNEL_DIR); mcp-tunnel init creates it');
  }
  const env = await readComposeEnvironment(root, options.processEnv);
  const name = projectNameFromEnv(root, env);
  const files = findComposeFiles(root, env);
  const ctx: InterpolationContext = { env, unset: new Set() };

  const perFile = files.map((file) => {
    const rel = path.relative(root, file) || file;
    const services = readFileServices(file, root);
    return { rel, services: Object.fromEntries(Object.entries(services).map(([n, s]) => [n, interpolateService(n, s, ctx, rel)])) };
  });
  const mainRel = perFile[0]!.rel;
  let merged: Record<string, Dict>;
  if (perFile.length === 1) merged = perFile[0]!.services;
  else {
    merged = perFile.slice(1).reduce<Record<string, Dict>>((base, next) => {
      const names = new Set([...Object.keys(base), ...Object.keys(next.services)]);
      const out: Record<string, Dict> = {};
      for (const n of names) out[n] = mergeServices(base[n] ?? {}, next.services[n] ?? {}, `${next.rel}: service "${n}"`);
      return out;
    }, perFile[0]!.services);
  }
  // Keep the main file's order, then services only the overrides add.
  const order = [...new Set([...Object.keys(perFile[0]!.services), ...Object.keys(merged)])];
  const serviceNames = new Set(order);
  const services = order.map((n) => toTypedService(name, n, processService(n, merged[n]!, root, env, serviceNames, mainRel)));
  if (services.length === 0) fail(`${mainRel} defines no services`);

  return {
    name,
    dir: root,
    configFiles: files,
    configFilesLabel: files.map((f) => path.relative(root, f) || f).join(','),
    env,
    services: orderServices(services),
    unsetVariables: [...ctx.unset].sort(),
    networkName: `${name}_default`,
  };
}

export function findService(project: ComposeProject, name: string): ComposeService {
  const svc = project.services.find((s) => s.name === name);
  if (!svc) {
    throw new ValidationError(`no service "${name}" in ${project.configFilesLabel}`, `services: ${project.services.map((s) => s.name).join(', ')}`);
  }
  return svc;
}

import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { ValidationError } from '../errors.js';
import { parseEnvFile } from '../deployment/env-file.js';
import { projectNameFor, resolveComposeFile } from '../deployment/layout.js';
import { requireDeploymentDir } from '../deployment/deployment-dir.js';
import { interpolateValue, type InterpolationContext } from './interpolate.js';
import { fail, isDict, pyStr, type Dict } from './compose-fields.js';
import { mergeServices } from './compose-merge.js';
import { processService, toTypedService } from './compose-service.js';
import type { PyJson } from './py-compat.js';

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

export { COMPOSE_FILENAMES } from '../deployment/layout.js';
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
const TOP_LEVEL_KEYS = new Set(['version', 'services', 'networks', 'volumes', 'secrets', 'configs']);

export type { Bind, ComposeProject, ComposeService, HealthcheckSpec, NetworkModeSpec, ServicePort } from './compose-types.js';
import type { ComposeProject, ComposeService } from './compose-types.js';
import { composeToolName } from './compose-command.js';

export interface LoadOptions {
  /** The process environment to overlay on .env (default process.env). */
  processEnv?: NodeJS.ProcessEnv;
}

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
      throw new ValidationError(`cannot read ${envFile}: permission denied`, 'run as the user who owns the deployment directory (it holds the tunnel token, mode 0600)', 'DEPLOYMENT_FILE_UNREADABLE');
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
  const main = resolveComposeFile(root);
  if (!existsSync(main)) {
    throw new ValidationError(`no compose file (compose.yaml or docker-compose.yaml) in ${root}`, 'run in the deployment directory or pass --dir DIR (or set MCP_TUNNEL_DIR); mcp-tunnel init creates it', 'COMPOSE_FILE_MISSING');
  }
  const overrides = COMPOSE_OVERRIDE_FILENAMES.filter((f) => existsSync(path.join(root, f)));
  if (overrides.length > 1) fail(`more than one override file in ${root}: ${overrides.join(', ')}`, 'keep only one (compose refuses to choose)');
  return [main, ...overrides.map((f) => path.join(root, f))];
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
      fail(`${rel}: top-level "${key}:" is not supported by mcp-tunnel up (only the project's default network and bind mounts)`, `use ${composeToolName()} for this file, or remove the section`);
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
          `supported keys: ${SUPPORTED_SERVICE_KEYS.join(', ')}; use ${composeToolName()} for this file, or remove the key`,
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
  await requireDeploymentDir(root, 'pass --dir DIR (or set MCP_TUNNEL_DIR); mcp-tunnel init creates it');
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
    throw new ValidationError(`no service "${name}" in ${project.configFilesLabel}`, `services: ${project.services.map((s) => s.name).join(', ')}`, 'SERVICE_UNKNOWN');
  }
  return svc;
}

import { ValidationError } from '../errors.js';
import type { ServicePort } from './compose-types.js';
import { composeToolName, detectComposeCommand } from './compose-command.js';

/**
 * The small parsers docker-compose 1.29 applies to single service fields (environment, labels, build args,
 * depends_on, volumes' path mappings, security_opt, ports), plus the helpers every compose-* module shares:
 * the `Dict` type, `isDict`, and `fail`, which throws the one-line ValidationError the loader reports.
 * Shared by the override merge (compose-merge.ts), service processing (compose-service.ts) and the loader
 * (compose-model.ts); it imports nothing from them at run time, so there is no cycle.
 */

export type Dict = Record<string, unknown>;

export const BUILD_KEYS = new Set(['context', 'args', 'dockerfile']);
const PORT_KEYS = new Set(['target', 'published', 'protocol', 'mode']);

export function fail(message: string, hint?: string): never {
  throw new ValidationError(message, hint ?? `fix the compose file${detectComposeCommand() ? ` (${detectComposeCommand()} config shows how compose reads it)` : ''}`, 'COMPOSE_FILE_INVALID');
}

export const isDict = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

export const pyStr = (v: unknown): unknown => (typeof v === 'boolean' ? (v ? 'True' : 'False') : typeof v === 'number' ? String(v) : v);

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

export const parseEnvironment = (v: unknown, where: string): Dict => parseDictOrList(v, (s) => splitEnv(s, where), 'environment', `${where}: environment`);
export const parseLabels = (v: unknown, where: string): Dict =>
  parseDictOrList(
    v,
    (s) => {
      const i = s.indexOf('=');
      return i >= 0 ? [s.slice(0, i), s.slice(i + 1)] : [s, ''];
    },
    'labels',
    `${where}: labels`,
  );
export const parseBuildArgs = (v: unknown, where: string): Dict => parseDictOrList(v, (s) => splitEnv(s, where), 'build args', `${where}: build.args`);
export const parseDependsOn = (v: unknown, where: string): Dict =>
  parseDictOrList(v, (s) => [s, { condition: 'service_started' }], 'depends_on', `${where}: depends_on`);

export function toList(v: unknown): unknown[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

/** split_path_mapping: "host:container[:mode]" -> [container, [host, mode] | null]. */
export function splitPathMapping(volume: string): [string, [string, string | null] | null] {
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

export function joinPathMapping(container: string, host: [string, string | null] | null): string {
  if (host === null) return container;
  return `${host[0]}:${container}${host[1] ? `:${host[1]}` : ''}`;
}

export const pyCompare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** SecurityOpt.parse -> the value (seccomp profiles from files are not supported). */
export function checkSecurityOpt(value: unknown, where: string): string {
  if (typeof value !== 'string') fail(`${where}: security_opt entries must be strings`);
  let con = value.split('=');
  if (con.length === 1 && con[0] !== 'no-new-privileges') {
    if (!value.includes(':')) fail(`${where}: invalid security_opt: ${value}`);
    con = value.split(':');
  }
  if (con[0] === 'seccomp' && con[1] !== 'unconfined') fail(`${where}: security_opt seccomp profiles are not supported by mcp-tunnel up`, `use ${composeToolName()} for this file`);
  return value;
}

// docker-py's split_port (ports.py)
const PORT_SPEC = /^((\[?(?<host>[a-fA-F\d.:]+)\]?:)?(?<ext>\d*)(-(?<extEnd>\d+))?:)?(?<int>\d+)(-(?<intEnd>\d+))?(?<proto>\/(udp|tcp|sctp))?$/;

export function parsePortSpec(spec: unknown, where: string): ServicePort[] {
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

export const portKey = (p: ServicePort): string => JSON.stringify([p.target, p.published, p.hostIp, p.protocol]);

export function isServicePort(v: unknown): v is ServicePort {
  return isDict(v) && 'hostIp' in v && 'target' in v;
}

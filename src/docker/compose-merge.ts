import type { ServicePort } from './compose-types.js';
import {
  BUILD_KEYS,
  checkSecurityOpt,
  fail,
  isDict,
  isServicePort,
  joinPathMapping,
  parseBuildArgs,
  parseDependsOn,
  parseEnvironment,
  parseLabels,
  parsePortSpec,
  portKey,
  pyCompare,
  splitPathMapping,
  toList,
  type Dict,
} from './compose-fields.js';

/**
 * docker-compose 1.29's merge of an override file into the main file, service by service
 * (merge_service_dicts): mappings are merged key by key, lists such as volumes, ports, cap_add and
 * security_opt are merged and sorted the way compose sorts them, and scalars are replaced. Only used
 * when there is an override file; a single file is not merged, as in compose.
 */

// ---------------------------------------------------------------------------------------------------------
// merge_service_dicts (only with an override file; a single file is not merged, as in compose)

function mergeMapping(base: unknown, override: unknown, parse: (v: unknown) => Dict): Dict {
  return { ...parse(base), ...parse(override) };
}

export function mergeServices(base: Dict, override: Dict, where: string): Dict {
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

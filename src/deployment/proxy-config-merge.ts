import { isDeepStrictEqual } from 'node:util';
import YAML from 'yaml';
import { parseProxyConfig } from './proxy-config.js';
import { deleteYamlValue, parseYamlDocument, setYamlValue, type YamlPath } from './yaml-edit.js';

/**
 * An init re-run and a config/mcp-proxy.yaml the user edited: init owns only the fields it asks about
 * (the domain, where the certificates are, the routes, the allowed ranges, the upstream CA), and sets those
 * in the existing file, keeping every other key (log_level, shutdown_timeout, admin, limits, ...), the
 * comments and the layout. A file that does not load is replaced by the rendering (and shown as a diff).
 */
export const INIT_OWNED_PATHS: readonly YamlPath[] = [
  ['tunnel_domain'],
  ['tls', 'cert_file'],
  ['tls', 'key_file'],
  ['routes'],
  ['upstream', 'allowed_ips'],
  ['upstream', 'tls', 'ca_file'],
  ['upstream', 'tls', 'include_system_cas'],
];

function getIn(value: unknown, path: YamlPath): unknown {
  let v = value;
  for (const k of path) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

/** false and absent mean the same to the proxy for its boolean fields. */
const same = (a: unknown, b: unknown): boolean => isDeepStrictEqual(a === false ? undefined : a, b === false ? undefined : b);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Route by route, so the routes that stay keep their quoting and comments. */
function mergeRoutes(text: string, have: Record<string, unknown>, want: Record<string, unknown>): string {
  let out = text;
  // New ones first: a map never goes empty on the way, which would lose its layout.
  for (const [key, url] of Object.entries(want)) {
    if (have[key] !== url) out = setYamlValue(out, parseYamlDocument(out)!, ['routes', key], url).text;
  }
  for (const key of Object.keys(have)) {
    if (!(key in want)) out = deleteYamlValue(parseYamlDocument(out)!, ['routes', key]).text;
  }
  return out;
}

export function mergeProxyConfig(existingText: string | undefined, rendered: string): string {
  if (existingText === undefined) return rendered;
  try {
    parseProxyConfig(existingText);
  } catch {
    return rendered;
  }
  if (!parseYamlDocument(existingText)) return rendered;
  const want = YAML.parse(rendered) as unknown;
  let text = existingText;
  for (const path of INIT_OWNED_PATHS) {
    const doc = parseYamlDocument(text)!;
    const have = getIn(doc.toJS(), path);
    const target = getIn(want, path);
    if (same(have, target)) continue;
    if (path.length === 1 && path[0] === 'routes' && isRecord(have) && isRecord(target)) {
      text = mergeRoutes(text, have, target);
      continue;
    }
    text = target === undefined ? deleteYamlValue(doc, path).text : setYamlValue(text, doc, path, target).text;
  }
  try {
    parseProxyConfig(text);
    return text;
  } catch {
    // The user's keys and init's no longer agree (e.g. disable_ip_validation with new allowed_ips): init's
    // rendering is what it can vouch for; the diff shows what goes.
    return rendered;
  }
}

import { isDeepStrictEqual } from 'node:util';
import YAML, { isMap, isScalar, isSeq, Scalar, type Document, type Pair, type YAMLMap } from 'yaml';
import { readTextIfExists } from '../deployment/atomic-file.js';
import { rewriteFileKeepingMode } from '../deployment/rewrite-file.js';
import { checkUpstreamsAllowed } from '../deployment/init.js';
import { deploymentPaths, type DeploymentPaths } from '../deployment/layout.js';
import { parseProxyConfig, ROUTES_LIST_PROBLEM, type ProxyConfig } from '../deployment/proxy-config.js';
import { parseUpstream, validateRouteName } from '../deployment/validate.js';
import { ConfigError, UserError, ValidationError } from '../errors.js';

/**
 * `routes list|add|remove`: a validated edit of config/mcp-proxy.yaml that keeps the user's file.
 *
 * The edit is made twice: on a yaml Document (setIn/deleteIn: the semantic truth), and as a splice of the
 * original text (insert one line after the last route / delete the route's own lines), so every byte
 * outside the edited lines stays as it was: comments, quoting, indentation, blank lines, key order. The
 * splice is kept only when re-parsing it gives exactly the Document's result; otherwise (a flow-style
 * map, an empty routes key, anything unusual) the Document's toString() is written, which still keeps
 * comments and order. Either way the result must pass parseProxyConfig before it is written (atomically,
 * with the file's mode and owner).
 */

export interface RouteEntry {
  /** The key as written in the file. */
  name: string;
  url: string;
  /** The hostname Claude uses: NAME.<tunnel_domain>, or the key itself when it is a full hostname. */
  host: string;
}

export interface ProxyConfigFile {
  paths: DeploymentPaths;
  text: string;
  config: ProxyConfig;
  routes: RouteEntry[];
}

const rel = 'config/mcp-proxy.yaml';

function asConfigError(err: unknown): never {
  if (err instanceof UserError) throw new ConfigError(`${rel}: ${err.message}`, err.hint, err.code);
  throw err;
}

export async function readProxyConfigFile(dir: string): Promise<ProxyConfigFile> {
  const paths = deploymentPaths(dir);
  const text = await readTextIfExists(paths.proxyConfig);
  if (text === undefined) throw new ValidationError(`no ${rel} in ${paths.dir}`, 'run in the deployment directory or pass --dir (mcp-tunnel init creates it)', 'CONFIG_FILE_MISSING');
  let config: ProxyConfig;
  try {
    config = parseProxyConfig(text);
  } catch (err) {
    asConfigError(err);
  }
  const routes = [...config.routes.entries()].map(([key, up]) => ({
    name: key,
    url: up.url,
    host: key.includes('.') || !config.tunnelDomain ? key : `${key}.${config.tunnelDomain}`,
  }));
  return { paths, text, config, routes };
}

function parseDoc(text: string): Document.Parsed {
  const doc = YAML.parseDocument(text);
  if (doc.errors.length > 0) throw new ConfigError(`${rel} is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`, undefined, 'PROXY_CONFIG_INVALID');
  return doc;
}

function routesMap(doc: Document.Parsed): YAMLMap | undefined {
  const node = doc.get('routes', true);
  if (isSeq(node)) throw new ConfigError(`${rel}: ${ROUTES_LIST_PROBLEM.message}`, ROUTES_LIST_PROBLEM.hint, 'PROXY_CONFIG_INVALID');
  return isMap(node) ? node : undefined;
}

const keyText = (pair: Pair): string => String(isScalar(pair.key) ? pair.key.value : pair.key).toLowerCase();

function findPair(map: YAMLMap | undefined, name: string, domain: string | undefined): Pair | undefined {
  const n = name.toLowerCase();
  const wanted = new Set([n]);
  if (domain) {
    wanted.add(`${n}.${domain}`);
    if (n.endsWith(`.${domain}`)) wanted.add(n.slice(0, -domain.length - 1));
  }
  return (map?.items as Pair[] | undefined)?.find((p) => wanted.has(keyText(p)));
}

const lineStart = (text: string, offset: number): number => text.lastIndexOf('\n', offset - 1) + 1;
function lineEnd(text: string, offset: number): number {
  const nl = text.indexOf('\n', offset);
  return nl === -1 ? text.length : nl;
}

/** The value written the way the file's last route writes its value. */
function styled(url: string, like: unknown): string {
  const type = isScalar(like) ? like.type : undefined;
  if (type === Scalar.QUOTE_SINGLE) return `'${url}'`;
  if (type === Scalar.PLAIN) return url;
  return JSON.stringify(url);
}

function spliceAdd(text: string, map: YAMLMap, name: string, url: string): string | undefined {
  const items = map.items as Pair[];
  if (map.flow || items.length === 0) return undefined;
  const first = items[0]!.key as { range?: [number, number, number] } | null;
  const last = items.at(-1)!;
  const lastValue = last.value as { range?: [number, number, number] } | null;
  if (!first?.range || !lastValue?.range) return undefined;
  const indent = text.slice(lineStart(text, first.range[0]), first.range[0]);
  if (!/^[ \t]*$/.test(indent)) return undefined;
  const at = lineEnd(text, lastValue.range[1]);
  const line = `${indent}${name}: ${styled(url, last.value)}`;
  return at === text.length ? `${text}${text.endsWith('\n') || text === '' ? '' : '\n'}${line}\n` : `${text.slice(0, at)}\n${line}${text.slice(at)}`;
}

function spliceRemove(text: string, map: YAMLMap, pair: Pair): string | undefined {
  const key = pair.key as { range?: [number, number, number] } | null;
  const value = pair.value as { range?: [number, number, number] } | null;
  if (map.flow || !key?.range || !value?.range) return undefined;
  const start = lineStart(text, key.range[0]);
  if (!/^[ \t]*$/.test(text.slice(start, key.range[0]))) return undefined;
  const end = lineEnd(text, value.range[1]);
  return text.slice(0, start) + text.slice(Math.min(end + 1, text.length));
}

/** The splice when it means exactly what the Document edit means; else the Document's own rendering. */
function settle(expected: Document.Parsed, spliced: string | undefined): { text: string; preserved: boolean } {
  const want = expected.toJS();
  if (spliced !== undefined) {
    try {
      if (isDeepStrictEqual(YAML.parse(spliced), want)) return { text: spliced, preserved: true };
    } catch {
      // fall through to the Document rendering
    }
  }
  return { text: expected.toString(), preserved: false };
}

function validated(text: string): ProxyConfig {
  try {
    return parseProxyConfig(text);
  } catch (err) {
    if (err instanceof UserError) throw new ConfigError(`the edited ${rel} would be invalid: ${err.message}; nothing was written`, err.hint, err.code);
    throw err;
  }
}

export interface RouteEdit {
  text: string;
  /** Every byte outside the edited lines kept (false: re-rendered by the yaml library). */
  preserved: boolean;
  route: RouteEntry;
  config: ProxyConfig;
}

/** Adds NAME -> URL to the config text. One-line ValidationError/ConfigError on any bad input. */
export function addRoute(file: Pick<ProxyConfigFile, 'text' | 'config'>, rawName: string, rawUrl: string): RouteEdit {
  const name = validateRouteName(rawName);
  let url: string;
  let writtenHost: string | undefined;
  try {
    ({ url, writtenHost } = parseUpstream(rawUrl, name));
  } catch (err) {
    if (err instanceof UserError) throw new ValidationError(err.message, err.hint, err.code);
    throw err;
  }
  const domain = file.config.tunnelDomain;
  const doc = parseDoc(file.text);
  const map = routesMap(doc);
  const existing = findPair(map, name, domain);
  if (existing) {
    throw new ValidationError(
      `route "${name}" already exists (${String(isScalar(existing.value) ? existing.value.value : existing.value)})`,
      `remove it first (mcp-tunnel routes remove ${name}) or choose another name`,
      'ROUTE_EXISTS',
    );
  }
  if (file.config.upstream.allowedIps) {
    checkUpstreamsAllowed(
      [{ name, url, ...(writtenHost ? { writtenHost } : {}) }],
      file.config.upstream.allowedIps.map((c) => c.text),
      (ip) => `add "${ip}/32" to upstream.allowed_ips in ${rel} (the list replaces the defaults)`,
    );
  }
  const expected = doc.clone() as Document.Parsed;
  expected.setIn(['routes', name], url);
  const result = settle(expected, map ? spliceAdd(file.text, map, name, url) : undefined);
  const config = validated(result.text);
  return { ...result, config, route: { name, url, host: domain ? `${name}.${domain}` : name } };
}

/** Removes NAME (a bare name, or its full hostname) from the config text. */
export function removeRoute(file: Pick<ProxyConfigFile, 'text' | 'config'>, rawName: string): RouteEdit {
  const name = rawName.trim().toLowerCase().replace(/\.$/, '');
  const doc = parseDoc(file.text);
  const map = routesMap(doc);
  const domain = file.config.tunnelDomain;
  const pair = findPair(map, name, domain);
  const configured = [...file.config.routes.keys()].join(', ') || '(none)';
  if (!pair || !map) throw new ValidationError(`no route "${rawName}" in ${rel}`, `configured routes: ${configured}`, 'ROUTE_NOT_FOUND');
  if (map.items.length === 1) {
    throw new ValidationError(`"${rawName}" is the only route; the proxy needs at least one`, 'add the replacement first (mcp-tunnel routes add NAME URL), then remove this one', 'ROUTE_LAST');
  }
  const key = String(isScalar(pair.key) ? pair.key.value : pair.key);
  const url = String(isScalar(pair.value) ? pair.value.value : pair.value);
  const expected = doc.clone() as Document.Parsed;
  expected.deleteIn(['routes', key]);
  const result = settle(expected, spliceRemove(file.text, map, pair));
  const config = validated(result.text);
  return { ...result, config, route: { name: key, url, host: key.includes('.') || !domain ? key : `${key}.${domain}` } };
}

/** Writes the edited config atomically, keeping its mode (and owner, when we may). */
export async function writeProxyConfigText(paths: DeploymentPaths, text: string): Promise<void> {
  await rewriteFileKeepingMode(paths.proxyConfig, text);
}

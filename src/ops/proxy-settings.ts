import { readTextIfExists } from '../deployment/atomic-file.js';
import { readExistingDeployment } from '../deployment/existing.js';
import { deploymentPaths, type DeploymentPaths } from '../deployment/layout.js';
import { BUILTIN_DEFAULTS, DEFAULT_ALLOWED_IPS, DEFAULT_SHUTDOWN_TIMEOUT, LOG_LEVELS, parseProxyConfig, type ProxyConfig } from '../deployment/proxy-config.js';
import { rewriteFileKeepingMode } from '../deployment/rewrite-file.js';
import { COMPOSE_SERVICES } from '../deployment/compose-file.js';
import { formatDuration } from '../deployment/duration.js';
import { deleteYamlValue, hasYamlValue, parseYamlDocument, setYamlValue } from '../deployment/yaml-edit.js';
import { ExitCode, UserError } from '../errors.js';

/**
 * `mcp-tunnel config get|set|unset`: every field of config/mcp-proxy.yaml but routes (they have their own
 * command), the builtin engine's admin/limits included. A change is validated by the proxy's own config
 * parser (parseProxyConfig: one rule) on the whole edited file before anything is written; the file keeps
 * its comments and layout (yaml-edit.ts) and is replaced atomically with its mode.
 */
export type SettingKind = 'string' | 'duration' | 'boolean' | 'integer' | 'list' | 'enum' | 'address';

export interface SettingSpec {
  key: string;
  kind: SettingKind;
  /** What the proxy uses when the key is absent ("" when required or none). */
  default: string;
  description: string;
  /** builtin: an extension of the builtin engine (the official proxy does not know it). */
  engine: 'both' | 'builtin';
  /** Must stay in the file (unset refused). */
  required?: boolean;
}

export const PROXY_SETTINGS: readonly SettingSpec[] = [
  { key: 'listen_addr', kind: 'address', default: ':8080', description: 'address:port the proxy listens on (plain HTTP carrying WebSocket)', engine: 'both', required: true },
  { key: 'log_level', kind: 'enum', default: 'info', description: `one of ${LOG_LEVELS.join(', ')}`, engine: 'both' },
  { key: 'shutdown_timeout', kind: 'duration', default: DEFAULT_SHUTDOWN_TIMEOUT, description: 'wait for in-flight requests on shutdown (e.g. 30s)', engine: 'both' },
  { key: 'tunnel_domain', kind: 'string', default: '', description: 'the tunnel domain; bare route keys are subdomains of it', engine: 'both' },
  { key: 'tls.cert_file', kind: 'string', default: '', description: 'server certificate, as the container sees it', engine: 'both', required: true },
  { key: 'tls.key_file', kind: 'string', default: '', description: 'server key, as the container sees it', engine: 'both', required: true },
  { key: 'upstream.allowed_ips', kind: 'list', default: DEFAULT_ALLOWED_IPS.join(','), description: 'IPv4 CIDRs the proxy may dial (comma-separated; replaces the default)', engine: 'both' },
  { key: 'upstream.disable_ip_validation', kind: 'boolean', default: 'false', description: 'turn the SSRF guard off (exclusive with allowed_ips)', engine: 'both' },
  { key: 'upstream.tls.ca_file', kind: 'string', default: '', description: 'CA bundle for https upstreams, as the container sees it', engine: 'both' },
  { key: 'upstream.tls.include_system_cas', kind: 'boolean', default: 'false', description: 'also trust the system CAs for https upstreams', engine: 'both' },
  { key: 'admin.listen_addr', kind: 'address', default: BUILTIN_DEFAULTS.adminListenAddr, description: 'health/readiness/metrics listener ("" turns it off)', engine: 'builtin' },
  { key: 'limits.max_connections', kind: 'integer', default: String(BUILTIN_DEFAULTS.maxConnections), description: 'concurrent tunnel connections', engine: 'builtin' },
  { key: 'limits.max_header_bytes', kind: 'integer', default: String(BUILTIN_DEFAULTS.maxHeaderBytes), description: 'largest request head', engine: 'builtin' },
  { key: 'limits.handshake_timeout', kind: 'duration', default: `${BUILTIN_DEFAULTS.handshakeTimeoutMs / 1000}s`, description: 'WebSocket + inner TLS handshake bound', engine: 'builtin' },
  { key: 'limits.idle_timeout', kind: 'duration', default: `${BUILTIN_DEFAULTS.idleTimeoutMs / 1000}s`, description: 'close a connection idle this long', engine: 'builtin' },
];

const REL = 'config/mcp-proxy.yaml';
const usage = (message: string, hint: string | undefined, code: string): UserError => new UserError(message, { hint, code, exitCode: ExitCode.usage });

export function settingSpec(rawKey: string): SettingSpec {
  const key = rawKey.trim();
  if (key === 'routes' || key.startsWith('routes.')) {
    throw usage(`routes are not a config setting`, 'use mcp-tunnel routes add NAME URL | remove NAME | list', 'CONFIG_KEY_ROUTES');
  }
  const spec = PROXY_SETTINGS.find((s) => s.key === key);
  if (!spec) throw usage(`unknown proxy setting "${key}"`, `known settings: ${PROXY_SETTINGS.map((s) => s.key).join(', ')}`, 'CONFIG_KEY_UNKNOWN');
  return spec;
}

/** VALUE as typed on the command line -> the YAML value, by the setting's kind (the proxy validates it after). */
export function settingValue(spec: SettingSpec, raw: string): unknown {
  const text = raw.trim();
  switch (spec.kind) {
    case 'boolean':
      if (text === 'true') return true;
      if (text === 'false') return false;
      throw usage(`${spec.key} must be true or false, not "${text}"`, `e.g. mcp-tunnel config set ${spec.key} true`, 'CONFIG_VALUE_INVALID');
    case 'integer':
      if (!/^\d+$/.test(text)) throw usage(`${spec.key} must be a whole number, not "${text}"`, `e.g. mcp-tunnel config set ${spec.key} ${spec.default}`, 'CONFIG_VALUE_INVALID');
      return Number(text);
    case 'list': {
      const items = text.replace(/^\[|\]$/g, '').split(',').map((s) => s.trim().replace(/^["']|["']$/g, '')).filter(Boolean);
      if (items.length === 0) throw usage(`${spec.key} needs at least one entry`, `e.g. mcp-tunnel config set ${spec.key} 10.0.0.0/8,192.168.1.0/24 (or unset it for the default)`, 'CONFIG_VALUE_INVALID');
      return items;
    }
    default:
      return text;
  }
}

export interface ProxySettingsFile {
  paths: DeploymentPaths;
  text: string;
  config: ProxyConfig;
  engine: 'official' | 'builtin' | undefined;
  /** compose.yaml's stop_grace_period for the proxy, when there is a compose file with the proxy service. */
  proxyStopGraceMs?: number;
  /** The tunnel's domain as data/tunnel-domain has it (what the server certificate was issued for). */
  storedTunnelDomain?: string;
}

export async function readProxySettings(dir: string): Promise<ProxySettingsFile> {
  const paths = deploymentPaths(dir);
  const text = await readTextIfExists(paths.proxyConfig);
  if (text === undefined) throw usage(`no ${REL} in ${paths.dir}`, 'run in the deployment directory or pass --dir (mcp-tunnel init creates it)', 'CONFIG_FILE_MISSING');
  const config = validated(text, `${REL}: `, '');
  const existing = await readExistingDeployment(paths);
  const stored = (await readTextIfExists(paths.tunnelDomain))?.split('\n')[0]?.trim().toLowerCase() || undefined;
  return { paths, text, config, engine: existing.engine, proxyStopGraceMs: existing.proxyStopGraceMs, storedTunnelDomain: stored };
}

function validated(text: string, prefix: string, suffix: string): ProxyConfig {
  try {
    return parseProxyConfig(text);
  } catch (err) {
    if (err instanceof UserError) throw usage(`${prefix}${err.message}${suffix}`, err.hint ?? 'mcp-tunnel config get lists every setting and its current value', 'CONFIG_VALUE_INVALID');
    throw err;
  }
}

export interface SettingView {
  key: string;
  /** The value in the file (YAML, as JSON), or undefined when absent. */
  value: unknown;
  /** What the proxy uses: the file's value or the default. */
  effective: string;
  source: 'file' | 'default';
  engine: SettingSpec['engine'];
  description: string;
}

function display(value: unknown): string {
  if (Array.isArray(value)) return value.map(String).join(',');
  return value === null || value === undefined ? '' : String(value);
}

export function getSettings(file: ProxySettingsFile, key?: string): SettingView[] {
  const doc = parseYamlDocument(file.text);
  if (!doc) throw usage(`${REL} is not valid YAML`, 'fix it by hand', 'CONFIG_VALUE_INVALID');
  const specs = key === undefined ? PROXY_SETTINGS : [settingSpec(key)];
  return specs.map((spec) => {
    const path = spec.key.split('.');
    const present = hasYamlValue(doc, path);
    const value = present ? (doc.getIn(path) as { toJSON?: () => unknown } | unknown) : undefined;
    const plain = value && typeof (value as { toJSON?: unknown }).toJSON === 'function' ? (value as { toJSON: () => unknown }).toJSON() : value;
    return { key: spec.key, value: plain, effective: present ? display(plain) : spec.default, source: present ? 'file' : 'default', engine: spec.engine, description: spec.description };
  });
}

export interface SettingEdit {
  key: string;
  /** What else the change affects (one line each). */
  warnings: string[];
  before: SettingView;
  text: string;
  preserved: boolean;
  changed: boolean;
  config: ProxyConfig;
}

function checkEngine(spec: SettingSpec, file: ProxySettingsFile): void {
  if (spec.engine === 'builtin' && file.engine === 'official') {
    throw usage(
      `${spec.key} is a setting of the builtin proxy; this deployment runs the official one, which does not know it`,
      're-run mcp-tunnel init --proxy builtin to switch engines, or leave it out',
      'CONFIG_BUILTIN_ONLY',
    );
  }
}

/** The edited text for `config set KEY VALUE`, validated as the proxy would; writes nothing. */
export function planSet(file: ProxySettingsFile, rawKey: string, rawValue: string): SettingEdit {
  const spec = settingSpec(rawKey);
  checkEngine(spec, file);
  const value = settingValue(spec, rawValue);
  const doc = parseYamlDocument(file.text)!;
  const before = getSettings(file, spec.key)[0]!;
  const edit = setYamlValue(file.text, doc, spec.key.split('.'), value);
  const config = validated(edit.text, '', '; nothing was written');
  const warnings: string[] = [];
  // cloudflared's command dials the proxy at localhost:8080 (compose.yaml): another port needs its --url too.
  if (spec.key === 'listen_addr' && config.listenAddr.port !== 8080) {
    warnings.push(`cloudflared's command in compose.yaml dials http://localhost:8080: change its --url to port ${config.listenAddr.port} too, or Claude's requests will not reach the proxy`);
  }
  // The domain is the tunnel's (the Console's or the API's); the server certificate covers that one only.
  if (spec.key === 'tunnel_domain' && file.storedTunnelDomain && config.tunnelDomain && config.tunnelDomain !== file.storedTunnelDomain) {
    warnings.push(
      `tunnel_domain ${config.tunnelDomain} is not the tunnel's domain in data/tunnel-domain (${file.storedTunnelDomain}), which data/tls.crt covers: every TLS handshake will fail; to move to another tunnel run mcp-tunnel init --tunnel-domain ${config.tunnelDomain} (it issues a matching certificate)`,
    );
  }
  // Docker kills the proxy once stop_grace_period is over: a longer drain would be cut short (docs/contract.md §2).
  if (spec.key === 'shutdown_timeout' && file.proxyStopGraceMs !== undefined && config.shutdownTimeoutMs > file.proxyStopGraceMs) {
    warnings.push(
      `compose.yaml stops ${COMPOSE_SERVICES.proxy} after its stop_grace_period of ${formatDuration(file.proxyStopGraceMs)}, before a ${formatDuration(config.shutdownTimeoutMs)} drain ends: raise stop_grace_period to ${formatDuration(config.shutdownTimeoutMs)} there too`,
    );
  }
  if (spec.key === 'upstream.disable_ip_validation' && value === true) warnings.push('IP validation is the proxy\'s SSRF defence: with it off, any address an upstream name resolves to is dialled');
  return { key: spec.key, warnings, before, ...edit, changed: edit.text !== file.text, config };
}

/** The edited text for `config unset KEY` (the proxy's default applies again). */
export function planUnset(file: ProxySettingsFile, rawKey: string): SettingEdit {
  const spec = settingSpec(rawKey);
  if (spec.required) throw usage(`${spec.key} is required by the proxy and cannot be unset`, `set another value: mcp-tunnel config set ${spec.key} VALUE`, 'CONFIG_KEY_REQUIRED');
  const doc = parseYamlDocument(file.text)!;
  const before = getSettings(file, spec.key)[0]!;
  if (before.source === 'default') return { key: spec.key, warnings: [], before, text: file.text, preserved: true, changed: false, config: file.config };
  const edit = deleteYamlValue(doc, spec.key.split('.'));
  const config = validated(edit.text, `without ${spec.key}: `, '; nothing was written');
  return { key: spec.key, warnings: [], before, ...edit, changed: edit.text !== file.text, config };
}

export async function writeSettingEdit(file: ProxySettingsFile, edit: SettingEdit): Promise<void> {
  if (edit.changed) await rewriteFileKeepingMode(file.paths.proxyConfig, edit.text);
}

import YAML from 'yaml';
import { DEFAULT_ALLOWED_IPS, parseProxyConfig, type ProxyConfig } from '../../deployment/proxy-config.js';
import { parseIpv4Cidr, parseUpstream, type Ipv4Cidr, type Upstream } from '../../deployment/validate.js';
import { UserError } from '../../errors.js';
import { fail, ok, warn, type DoctorFinding } from './types.js';

/**
 * The proxy config, checked piece by piece from the raw YAML (so one mistake does not hide the others),
 * then as a whole with the proxy's own parser.
 */
export interface ConfigRoute {
  key: string;
  raw: string;
  upstream?: Upstream;
}

export interface ConfigFacts {
  findings: DoctorFinding[];
  tunnelDomain?: string;
  routes: ConfigRoute[];
  /** undefined = IP validation disabled. */
  allowedIps: Ipv4Cidr[] | undefined;
  caFile?: string;
  config?: ProxyConfig;
}

const REL = 'config/mcp-proxy.yaml';
const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function checkProxyConfig(text: string | undefined): ConfigFacts {
  const facts: ConfigFacts = { findings: [], routes: [], allowedIps: DEFAULT_ALLOWED_IPS.map(parseIpv4Cidr) };
  const out = facts.findings;
  if (text === undefined) {
    out.push(fail('config.file', `${REL} is missing`, 'run mcp-tunnel init (or pass --dir to the deployment directory)'));
    return facts;
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    out.push(fail('config.file', `${REL} is not valid YAML: ${(err as Error).message.split('\n')[0]}`, `fix the line named above in ${REL}`));
    return facts;
  }
  if (!isMap(doc)) {
    out.push(fail('config.file', `${REL} is not a YAML mapping`, 'mcp-tunnel init --force rewrites it from your routes'));
    return facts;
  }
  if (typeof doc.tunnel_domain === 'string' && doc.tunnel_domain.trim()) facts.tunnelDomain = doc.tunnel_domain.trim().toLowerCase().replace(/\.$/, '');

  let failed = false;
  if (Array.isArray(doc.routes)) {
    failed = true;
    out.push(
      fail(
        'config.routes-map',
        'routes is a YAML list; the proxy needs a map of hostname to upstream URL and refuses to start',
        `in ${REL} write each route as "  name: http://host:port" under routes:, without a leading "-"`,
      ),
    );
  } else if (!isMap(doc.routes) || Object.keys(doc.routes).length === 0) {
    failed = true;
    out.push(fail('config.routes-map', 'routes is missing or empty', 'add one: mcp-tunnel routes add NAME http://HOST:PORT'));
  } else {
    out.push(ok('config.routes-map', `routes is a map (${Object.keys(doc.routes).length} route${Object.keys(doc.routes).length === 1 ? '' : 's'})`));
    for (const [key, value] of Object.entries(doc.routes)) {
      const route: ConfigRoute = { key: key.toLowerCase(), raw: String(value) };
      try {
        route.upstream = parseUpstream(typeof value === 'string' ? value : String(value), key);
        out.push(ok(`upstream.format.${key}`, `${key} -> ${route.upstream.url}`));
      } catch (err) {
        failed = true;
        const m = /"([^"]*)" has a path, query or fragment \("([^"]*)"\)/.exec((err as Error).message);
        out.push(
          fail(
            `upstream.format.${key}`,
            `${(err as Error).message}: the proxy refuses to start with this config`,
            m
              ? `in ${REL} write ${key}: "${m[1]!.slice(0, m[1]!.length - m[2]!.length)}" (drop "${m[2]}": the request path travels with each request), then restart the proxy`
              : `in ${REL} write it as http://HOST:PORT or https://HOST:PORT, then restart the proxy`,
          ),
        );
      }
      facts.routes.push(route);
    }
  }

  const upstream = isMap(doc.upstream) ? doc.upstream : {};
  if (upstream.disable_ip_validation === true) {
    facts.allowedIps = undefined;
    out.push(warn('config.ip-validation', 'upstream.disable_ip_validation is true: the proxy may connect anywhere (its SSRF defence is off)', `list your upstreams' ranges in upstream.allowed_ips instead and remove disable_ip_validation`));
  } else if (Array.isArray(upstream.allowed_ips)) {
    try {
      facts.allowedIps = upstream.allowed_ips.map((e) => parseIpv4Cidr(String(e)));
    } catch (err) {
      failed = true;
      out.push(fail('config.allowed-ips', `upstream.allowed_ips: ${(err as Error).message}`, 'list IPv4 addresses or CIDRs only, e.g. "10.0.0.0/8"'));
    }
  }
  if (isMap(upstream.tls) && typeof upstream.tls.ca_file === 'string') facts.caFile = upstream.tls.ca_file;

  try {
    facts.config = parseProxyConfig(text);
    out.push(ok('config.valid', `${REL} is accepted by the proxy's parser`));
  } catch (err) {
    // Already explained above in detail: do not say it twice.
    if (!failed) out.push(fail('config.valid', `${REL}: ${err instanceof UserError ? err.message : String(err)}`, err instanceof UserError && err.hint ? err.hint : `fix ${REL}`));
  }
  return facts;
}

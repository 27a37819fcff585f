import { CONTAINER_PATHS } from './layout.js';
import { DEFAULT_LISTEN_ADDR, DEFAULT_SHUTDOWN_TIMEOUT, parseProxyConfig, type LogLevel } from './proxy-config.js';

export interface ProxyConfigInput {
  tunnelDomain: string;
  /** route name (DNS label) -> upstream URL (already validated as scheme://host:port). */
  routes: Array<{ name: string; url: string }>;
  /** Replaces the default private ranges when given. */
  allowedIps?: string[];
  logLevel?: LogLevel;
  /** For https upstreams: a CA bundle path as the container sees it, and/or the system CAs. */
  upstreamTls?: { caFile?: string; includeSystemCas?: boolean };
}

/**
 * Renders config/mcp-proxy.yaml, the file both engines read. Only official fields are written, so the
 * official image accepts it as is; the builtin engine's extensions keep their defaults unless the user
 * adds them. The result is parsed back before it is returned: we never write a config the proxy rejects.
 */
export function renderProxyConfig(input: ProxyConfigInput): string {
  const routeLines = input.routes.map((r) => `  ${r.name}: "${r.url}"`);
  const tls = input.upstreamTls ?? {};
  const tlsLines = tls.caFile || tls.includeSystemCas
    ? [
        '  # https upstreams are verified against these.',
        '  tls:',
        ...(tls.caFile ? [`    ca_file: ${tls.caFile}`] : []),
        ...(tls.includeSystemCas ? ['    include_system_cas: true'] : []),
      ]
    : [];
  const allowedLines = input.allowedIps?.length
    ? [
        '  # Replaces the default private ranges (10/8, 172.16/12, 192.168/16): only these may be dialled.',
        '  allowed_ips:',
        ...input.allowedIps.map((ip) => `    - "${ip}"`),
      ]
    : ['  # allowed_ips: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]   # the default; a list here replaces it'];
  const upstream = input.allowedIps?.length || tlsLines.length
    ? ['upstream:', ...allowedLines, ...tlsLines]
    : ['# upstream:', ...allowedLines.map((l) => `#${l.slice(1)}`)];
  const text = [
    '# MCP tunnel proxy configuration, written by mcp-tunnel init.',
    '# Read by the proxy container at /etc/mcp-gateway/config.yaml. After editing, restart the proxy',
    '# (`mcp-tunnel routes ...` does both); the certificate files are hot-reloaded without a restart.',
    `listen_addr: "${DEFAULT_LISTEN_ADDR}"`,
    `log_level: ${input.logLevel ?? 'info'}`,
    `shutdown_timeout: ${DEFAULT_SHUTDOWN_TIMEOUT}`,
    '',
    '# Route keys are bare subdomains of this domain: docs -> docs.<tunnel_domain>.',
    `tunnel_domain: ${input.tunnelDomain}`,
    '',
    'tls:',
    `  cert_file: ${CONTAINER_PATHS.tlsCert}`,
    `  key_file: ${CONTAINER_PATHS.tlsKey}`,
    '',
    '# subdomain (or full hostname) -> upstream, exactly scheme://host:port (no path).',
    'routes:',
    ...routeLines,
    '',
    ...upstream,
    '',
  ].join('\n');
  parseProxyConfig(text);
  return text;
}

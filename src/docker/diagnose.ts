import type { LogLine } from './logs.js';

/**
 * Known failure signatures in the proxy's and cloudflared's logs, each mapped to its likely fix. The first
 * rule (in this order) that matches any of the recent lines wins: the order puts the root causes first
 * (a refused token explains a missing registration; a config error explains an unhealthy proxy).
 */
export interface Diagnosis {
  /** One line: what is wrong. */
  problem: string;
  /** One line: what to do about it. */
  fix: string;
  /** The service whose log showed it. */
  service: string;
  /** The log line that matched. */
  line: string;
  rule: string;
}

interface Rule {
  id: string;
  /** Only for this role's log (proxy or cloudflared); any when absent. */
  role?: 'proxy' | 'cloudflared';
  pattern: RegExp;
  problem: string;
  fix: string;
}

export const DIAGNOSIS_RULES: readonly Rule[] = [
  {
    id: 'no-ingress',
    role: 'cloudflared',
    pattern: /No ingress rules/i,
    problem: 'cloudflared has no ingress rule: its command lacks --url, so it answers every request with an error',
    fix: 'cloudflared\'s command must be "tunnel --no-autoupdate run --url http://localhost:8080" (compose.yaml); then mcp-tunnel up',
  },
  {
    id: 'token-missing',
    role: 'cloudflared',
    pattern: /requires the ID or name of the tunnel|TUNNEL_TOKEN is missing|TUNNEL_TOKEN is not set/i,
    problem: 'cloudflared started without a tunnel token',
    fix: 'put TUNNEL_TOKEN in .env beside compose.yaml (mcp-tunnel rotate-token writes it), then mcp-tunnel up',
  },
  {
    id: 'token-invalid',
    role: 'cloudflared',
    pattern: /token is not valid|invalid tunnel token|Unauthorized|unauthorized|Invalid tunnel secret|tunnel .*(not found|deleted)|authentication failed/i,
    problem: 'the tunnel token was refused (wrong, rotated or revoked)',
    fix: 'get a new token (Console: Rotate token, or mcp-tunnel rotate-token) and run mcp-tunnel rotate-token',
  },
  {
    id: 'edge-unreachable',
    role: 'cloudflared',
    pattern: /failed to dial to edge|edge discovery|DNS lookup failed|Failed to dial a quic connection|dial tcp .*:7844|no such host.*argotunnel|Unable to establish connection/i,
    problem: "cloudflared cannot reach Cloudflare's tunnel edge",
    fix: 'allow outbound TCP and UDP port 7844 to 198.41.192.0/19 and 2606:4700:a0::/44 (and DNS) from this host',
  },
  {
    id: 'origin-unreachable',
    role: 'cloudflared',
    pattern: /Unable to reach the origin service|origin .* not reachable|connection refused.*:8080|dial tcp .*:8080/i,
    problem: 'cloudflared cannot reach the proxy on localhost:8080',
    fix: 'check that mcp-proxy is running and listens on :8080 (listen_addr in config/mcp-proxy.yaml), and that cloudflared uses network_mode: "service:mcp-proxy"',
  },
  {
    id: 'key-permission',
    role: 'proxy',
    pattern: /(EACCES|permission denied).*(tls\.key|tls\.crt|\/data\/)|(tls\.key|tls\.crt|\/data\/).*(EACCES|permission denied)/i,
    problem: 'the proxy cannot read its certificate or key in data/ (permission denied)',
    fix: 'set MCP_TUNNEL_UID/MCP_TUNNEL_GID in .env to the owner of data/tls.key (or chown the files to the container user), then mcp-tunnel up',
  },
  {
    id: 'config-error',
    role: 'proxy',
    pattern: /unknown config field|config is not valid YAML|cannot read the proxy config|routes is required|routes must be|listen_addr|tls\.cert_file and tls\.key_file|invalid upstream|is not a DNS name|config must be a YAML mapping|error: .*config/i,
    problem: 'the proxy refused its configuration (config/mcp-proxy.yaml)',
    fix: 'fix config/mcp-proxy.yaml as the log line says, then mcp-tunnel up (routes: mcp-tunnel routes list)',
  },
  {
    id: 'cert-error',
    role: 'proxy',
    pattern: /certificate.*(expired|not yet valid|does not match|cannot be read|invalid)|key does not match|no PEM|cannot read .*(tls\.crt|tls\.key)/i,
    problem: "the proxy's server certificate or key is unusable",
    fix: 'renew it: mcp-tunnel renew-cert (data/tls.crt must be signed by the CA registered with the tunnel)',
  },
  {
    id: 'tls-unknown-ca',
    role: 'proxy',
    pattern: /tls handshake failed.*(unknown certificate authority|unknown ca|bad certificate|certificate unknown)/i,
    problem: "Anthropic's side does not trust the proxy's certificate (unknown certificate authority): the CA that signed data/tls.crt is not registered for this tunnel",
    fix: 'register data/ca.crt in the Console for this tunnel (or the CA that signed data/tls.crt), and check with mcp-tunnel doctor that tls.crt is signed by it',
  },
  {
    id: 'tls-handshake',
    role: 'proxy',
    pattern: /tls handshake failed/i,
    problem: 'inner TLS handshakes are failing: the client does not accept the proxy certificate (or the reverse)',
    fix: 'register data/ca.crt in the Console for this tunnel and check data/tls.crt is signed by it and covers *.<tunnel domain> (mcp-tunnel probe ROUTE)',
  },
  {
    id: 'no-route',
    role: 'proxy',
    pattern: /no route for host/i,
    problem: 'requests arrive for a hostname with no route',
    fix: 'add the route (mcp-tunnel routes add NAME URL) or use a configured name: routes are subdomains of tunnel_domain',
  },
  {
    id: 'ip-validation',
    role: 'proxy',
    pattern: /IP validation failed/i,
    problem: 'an upstream resolves to an address outside upstream.allowed_ips',
    fix: 'add its range to upstream.allowed_ips in config/mcp-proxy.yaml (default: the private ranges), then restart mcp-proxy',
  },
  {
    id: 'upstream-failed',
    role: 'proxy',
    pattern: /upstream request failed/i,
    problem: 'the proxy cannot reach an upstream MCP server',
    fix: 'check the route URL in config/mcp-proxy.yaml and that the MCP server is reachable from the proxy container',
  },
  {
    id: 'port-in-use',
    role: 'proxy',
    pattern: /EADDRINUSE|address already in use/i,
    problem: 'the proxy cannot listen: the port is already in use',
    fix: 'change listen_addr/admin.listen_addr in config/mcp-proxy.yaml or stop what uses the port',
  },
];

/** Finds the likely cause among a service's recent log lines (newest lines win within a rule). */
export function diagnose(service: string, role: 'proxy' | 'cloudflared' | undefined, lines: readonly LogLine[]): Diagnosis | undefined {
  for (const rule of DIAGNOSIS_RULES) {
    if (rule.role && role && rule.role !== role) continue;
    for (let i = lines.length - 1; i >= 0; i--) {
      const line = lines[i]!.text;
      if (rule.pattern.test(line)) return { problem: rule.problem, fix: rule.fix, service, line, rule: rule.id };
    }
  }
  return undefined;
}

/** The last `max` lines worth showing: warnings and errors first choice, else simply the last lines. */
export function relevantLines(lines: readonly LogLine[], max = 12): LogLine[] {
  const important = lines.filter((l) => /\b(ERR|ERROR|WRN|WARN|FATAL|error|warn|fatal|panic)\b|"level":"(warn|error)"|^error:/i.test(l.text));
  const pick = important.length ? important : lines;
  return pick.slice(-max);
}

export interface SignatureHit {
  rule: string;
  problem: string;
  fix: string;
  /** How many lines matched. */
  count: number;
  /** The newest matching line. */
  line: string;
}

/** Every known failure signature in a service's lines (doctor's log scan), in rule order. */
export function findSignatures(role: 'proxy' | 'cloudflared', lines: readonly LogLine[]): SignatureHit[] {
  const hits: SignatureHit[] = [];
  for (const rule of DIAGNOSIS_RULES) {
    if (rule.role && rule.role !== role) continue;
    let count = 0;
    let last = '';
    for (const l of lines) {
      if (rule.pattern.test(l.text)) {
        count++;
        last = l.text;
      }
    }
    // The specific unknown-CA rule explains the generic handshake lines it matched.
    if (count > 0 && !(rule.id === 'tls-handshake' && hits.some((h) => h.rule === 'tls-unknown-ca') && count === hits.find((h) => h.rule === 'tls-unknown-ca')!.count)) {
      hits.push({ rule: rule.id, problem: rule.problem, fix: rule.fix, count, line: last });
    }
  }
  return hits;
}

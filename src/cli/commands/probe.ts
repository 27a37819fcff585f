import { Command, Option } from 'commander';
import { parseDuration } from '../../deployment/duration.js';
import { EnvironmentError, ValidationError } from '../../errors.js';
import { loadProbeDeployment, resolveProbeRoute, runProbe, TUNNEL_PROTOCOL, type ProbeStep } from '../../probe/index.js';
import { locateProxy } from '../../ops/stack.js';
import { printLine, printReport, printStep } from '../output.js';

interface ProbeOptions {
  dir: string;
  proxy?: string;
  path: string;
  timeout: string;
  json?: boolean;
  call?: string;
  args?: string;
}

export function registerProbe(program: Command): void {
  program
    .command('probe')
    .description("Play Anthropic's side locally: WebSocket -> inner TLS (certificate checked against data/ca.crt) -> MCP initialize -> tools/list")
    .argument('<route>', 'route name from config/mcp-proxy.yaml (or the full hostname)')
    .addOption(new Option('--path <path>', "the MCP endpoint's path").env('MCP_TUNNEL_PROBE_PATH').default(TUNNEL_PROTOCOL.defaultMcpPath))
    .addOption(
      new Option('--proxy <url>', `the proxy's WebSocket URL (default: the running mcp-proxy container, found through Docker as routes does; else ${TUNNEL_PROTOCOL.defaultProxyUrl})`).env(
        'MCP_TUNNEL_PROXY_URL',
      ),
    )
    .addOption(new Option('--dir <dir>', 'deployment directory (config/mcp-proxy.yaml, data/ca.crt)').env('MCP_TUNNEL_DIR').default('.'))
    .addOption(new Option('--timeout <duration>', 'bound for each step (e.g. 10s, 500ms)').env('MCP_TUNNEL_PROBE_TIMEOUT').default('10s'))
    .addOption(new Option('--call <tool>', 'also call this tool after tools/list'))
    .addOption(new Option('--args <json>', 'arguments for --call, a JSON object'))
    .addOption(new Option('--json', 'print the result as JSON (docs/json.md: probe)').env('MCP_TUNNEL_JSON'))
    .addHelpText(
      'after',
      [
        '',
        'Every option can also come from the environment: MCP_TUNNEL_DIR, MCP_TUNNEL_PROXY_URL,',
        'MCP_TUNNEL_PROBE_PATH, MCP_TUNNEL_PROBE_TIMEOUT (a flag wins over its variable).',
        '',
        'Exit status: 0 every step passed, 3 a step failed (the message names the layer: websocket, tls,',
        'routing, upstream or mcp, and the fix), 2 bad input (unknown route, bad --proxy, missing files).',
        '',
        'Examples:',
        '  mcp-tunnel probe docs',
        '  mcp-tunnel probe docs --proxy ws://10.0.0.7:8080 --call search --args \'{"q":"tunnel"}\' --json',
      ].join('\n'),
    )
    .action(async (route: string, options: ProbeOptions) => probeCommand(route, options));
}

/** --proxy: ws:// or wss:// (http:// and https:// are taken to mean the same listener). */
export function parseProxyUrl(raw: string): string {
  const hint = 'give the proxy\'s WebSocket URL, e.g. --proxy ws://127.0.0.1:8080 (it listens on plain HTTP; no "https")';
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new ValidationError(`invalid --proxy "${raw}": not a URL`, hint, 'PROXY_URL_INVALID');
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (!TUNNEL_PROTOCOL.proxySchemes.includes(url.protocol)) throw new ValidationError(`invalid --proxy "${raw}": scheme must be ws:// (or wss://)`, hint, 'PROXY_URL_INVALID');
  if (!url.hostname) throw new ValidationError(`invalid --proxy "${raw}": no host`, hint, 'PROXY_URL_INVALID');
  if (url.username || url.password) throw new ValidationError(`invalid --proxy "${raw}": credentials in the URL are not supported`, hint, 'PROXY_URL_INVALID');
  return url.href;
}

function parsePath(raw: string): string {
  if (!raw.startsWith('/') || /[\s#]/.test(raw)) {
    throw new ValidationError(`invalid --path "${raw}": must be a URL path starting with /`, 'e.g. --path /mcp (the MCP server\'s streamable HTTP endpoint)', 'MCP_PATH_INVALID');
  }
  return raw;
}

function parseTimeout(raw: string): number {
  const ms = parseDuration(raw, '--timeout');
  if (ms <= 0) throw new ValidationError(`invalid --timeout "${raw}": must be more than 0`, 'e.g. --timeout 10s', 'DURATION_OUT_OF_RANGE');
  return ms;
}

function parseArgs(raw: string | undefined, call: string | undefined): Record<string, unknown> | undefined {
  if (raw === undefined) return undefined;
  if (call === undefined) throw new ValidationError('--args needs --call TOOL', 'e.g. --call hello --args \'{"name":"me"}\'', 'PROBE_ARGS_INVALID');
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new ValidationError(`invalid --args: not JSON (${(err as Error).message})`, 'give a JSON object, e.g. --args \'{"name":"me"}\'', 'PROBE_ARGS_INVALID');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError('invalid --args: must be a JSON object', 'e.g. --args \'{"name":"me"}\'', 'PROBE_ARGS_INVALID');
  }
  return value as Record<string, unknown>;
}

const pad = (s: string, n: number): string => (s.length >= n ? s : s + ' '.repeat(n - s.length));

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}

/** One line per step: "✓ tls         12.3 ms  TLSv1.3, ..." */
export function printProbeStep(step: ProbeStep): void {
  const text = `${pad(step.step, 11)} ${pad(formatMs(step.ms), 9)} ${step.detail}`;
  if (step.ok) printStep(text);
  else printLine(`✗ ${text}${step.error ? ` [${step.error.layer}]` : ''}`);
}

async function probeCommand(route: string, options: ProbeOptions): Promise<void> {
  // All input is checked before anything touches the network.
  const given = options.proxy === undefined ? undefined : parseProxyUrl(options.proxy);
  const path = parsePath(options.path);
  const timeoutMs = parseTimeout(options.timeout);
  const args = parseArgs(options.args, options.call);
  const dep = await loadProbeDeployment(options.dir);
  const { host } = resolveProbeRoute(dep, route);
  // A default deployment publishes no port: reach the proxy where it runs.
  const located = given === undefined ? await locateProxy(options.dir, dep.config.listenAddr.port) : undefined;
  const proxyUrl = given ?? located?.url ?? parseProxyUrl(TUNNEL_PROTOCOL.defaultProxyUrl);

  if (!options.json) printLine(`probing https://${host}${path} through ${proxyUrl}${located ? ` (${located.how})` : ''}`);
  const result = await runProbe({
    route: host,
    path,
    proxyUrl,
    domain: dep.domain,
    caPem: dep.caPem,
    caSource: 'data/ca.crt',
    timeoutMs,
    callTool: options.call ? { name: options.call, args } : undefined,
    onStep: options.json ? undefined : printProbeStep,
  });
  result.route = route;

  if (options.json) printReport('probe', result);
  if (!result.ok && result.failure) {
    throw new EnvironmentError(`${result.failure.layer}: ${result.failure.message}`, result.failure.hint, undefined, result.failure.code);
  }
  if (!options.json) printLine(`the tunnel path to ${host} works (${formatMs(result.totalMs)} in all)`);
}

import { ExitCode, UserError } from '../errors.js';

/**
 * `connect`: how Claude uses a deployment's tunnel, as data. Pure: the CLI reads the routes and prints.
 * The facts (headers, body shape, Console steps) are Anthropic's, summarised in docs/contract.md
 * ("Using the tunnel from Claude"); they live here and nowhere else.
 */

export const MESSAGES_API = {
  url: 'https://api.anthropic.com/v1/messages',
  version: '2023-06-01',
  /** The MCP connector's beta: not the Tunnels API's `mcp-tunnels-...` one. */
  beta: 'mcp-client-2025-11-20',
} as const;

export const DEFAULT_MODEL = 'claude-sonnet-4-5';
export const DEFAULT_PATH = '/mcp';

export interface ConnectRoute {
  name: string;
  /** The hostname Claude uses: NAME.<tunnel-domain> (or the key itself when it is a full hostname). */
  host: string;
  upstream: string;
}

export interface ConnectInput {
  tunnelId?: string;
  tunnelDomain?: string;
  routes: ConnectRoute[];
  /** Only this route (name or full hostname); all of them when absent. */
  route?: string;
  path?: string;
  model?: string;
}

export interface McpServerEntry {
  type: 'url';
  url: string;
  name: string;
}

export interface ConnectInfo {
  tunnelId: string | null;
  tunnelDomain: string | null;
  path: string;
  servers: Array<{ name: string; subdomain: string; url: string; upstream: string }>;
  messagesApi: {
    url: string;
    headers: Record<string, string>;
    body: {
      model: string;
      max_tokens: number;
      messages: Array<{ role: 'user'; content: string }>;
      mcp_servers: McpServerEntry[];
      tools: Array<{ type: 'mcp_toolset'; mcp_server_name: string }>;
    };
  };
  curl: string;
  typescript: string;
  managedAgents: string[];
  caveats: string[];
}

/** A URL path: starts with '/', no scheme, host, query or whitespace (the proxy forwards it untouched). */
export function normalisePath(raw: string | undefined): string {
  const p = (raw ?? DEFAULT_PATH).trim();
  const candidate = p.startsWith('/') ? p : `/${p}`;
  if (/[\s?#]/.test(candidate) || candidate.startsWith('//')) {
    throw new UserError(`--path ${JSON.stringify(raw)} is not a URL path`, { hint: 'pass the path the MCP server serves, e.g. --path /mcp', code: 'CONNECT_BAD_PATH', exitCode: ExitCode.usage });
  }
  return candidate;
}

/** The MCP server name Claude sees: the route name, made a safe identifier when it is a full hostname. */
const serverName = (route: ConnectRoute): string => route.name.replace(/[^A-Za-z0-9_-]/g, '-');

export function connectionInfo(input: ConnectInput): ConnectInfo {
  const path = normalisePath(input.path);
  let routes = input.routes;
  if (input.route !== undefined) {
    const wanted = input.route.toLowerCase();
    routes = routes.filter((r) => r.name.toLowerCase() === wanted || r.host.toLowerCase() === wanted);
    if (routes.length === 0) {
      const known = input.routes.map((r) => r.name).join(', ') || 'none';
      throw new UserError(`no route ${input.route} in config/mcp-proxy.yaml (configured: ${known})`, { hint: 'mcp-tunnel routes list shows them; routes add NAME URL adds one', code: 'CONNECT_UNKNOWN_ROUTE', exitCode: ExitCode.usage });
    }
  }
  if (routes.length === 0) {
    throw new UserError('the deployment has no routes, so Claude has nothing to reach', { hint: 'add one: mcp-tunnel routes add NAME http://host:port', code: 'CONNECT_NO_ROUTES', exitCode: ExitCode.usage });
  }
  const servers = routes.map((r) => ({ name: serverName(r), subdomain: r.host.split('.')[0]!, url: `https://${r.host}${path}`, upstream: r.upstream }));
  const mcpServers: McpServerEntry[] = servers.map((s) => ({ type: 'url', url: s.url, name: s.name }));
  const body = {
    model: input.model ?? DEFAULT_MODEL,
    max_tokens: 1024,
    messages: [{ role: 'user' as const, content: 'Which tools do you have? Call one of them.' }],
    mcp_servers: mcpServers,
    tools: servers.map((s) => ({ type: 'mcp_toolset' as const, mcp_server_name: s.name })),
  };
  const headers = {
    'x-api-key': '$ANTHROPIC_API_KEY',
    'anthropic-version': MESSAGES_API.version,
    'anthropic-beta': MESSAGES_API.beta,
    'content-type': 'application/json',
  };
  return {
    tunnelId: input.tunnelId ?? null,
    tunnelDomain: input.tunnelDomain ?? null,
    path,
    servers,
    messagesApi: { url: MESSAGES_API.url, headers, body },
    curl: curlSnippet(headers, body),
    typescript: typescriptSnippet(body),
    managedAgents: managedAgentsSteps(servers, path),
    caveats: caveats(input.tunnelId),
  };
}

function curlSnippet(headers: Record<string, string>, body: unknown): string {
  const lines = [`curl ${MESSAGES_API.url} \\`];
  // Double quotes only around the key header, so the shell expands $ANTHROPIC_API_KEY and nothing else.
  for (const [k, v] of Object.entries(headers)) lines.push(v.startsWith('$') ? `  -H "${k}: ${v}" \\` : `  -H '${k}: ${v}' \\`);
  lines.push(`  -d '${JSON.stringify(body, null, 2).replace(/'/g, "'\\''")}'`);
  return lines.join('\n');
}

function typescriptSnippet(body: ConnectInfo['messagesApi']['body']): string {
  const args = JSON.stringify({ ...body, betas: [MESSAGES_API.beta] }, null, 2)
    .replace(/^( +)"([A-Za-z_][A-Za-z0-9_]*)":/gm, '$1$2:');
  return [
    "import Anthropic from '@anthropic-ai/sdk';",
    '',
    "// An API key of the tunnel's workspace (ANTHROPIC_API_KEY).",
    'const client = new Anthropic();',
    `const message = await client.beta.messages.create(${args});`,
    'console.log(JSON.stringify(message.content, null, 2));',
  ].join('\n');
}

function managedAgentsSteps(servers: ConnectInfo['servers'], path: string): string[] {
  return [
    'Console: Managed Agents > Sessions > New session > Create new agent > + MCP Server.',
    "Pick the tunnel at the top of the list (the current workspace's tunnels with at least one active certificate appear there).",
    ...servers.map((s) => `Subdomain: ${s.subdomain}   Path: ${path}   ("Resolves to" shows ${s.url})`),
    'API: put {"type":"url","name":NAME,"url":URL} in the agent\'s mcp_servers and {"type":"mcp_toolset","mcp_server_name":NAME} in its tools; upstream credentials come from vaults (vault_ids when the session is created).',
  ];
}

function caveats(tunnelId: string | undefined): string[] {
  return [
    `Tunnels belong to a workspace: use an API key of the workspace that owns ${tunnelId ?? 'the tunnel'}, or send the anthropic-workspace-id header when the key spans several workspaces.`,
    'The tunnel does not authenticate callers to your MCP server: the server should require OAuth or a bearer token itself (pass it as "authorization_token" in the mcp_servers entry).',
  ];
}

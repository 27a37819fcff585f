import { Command, Option } from 'commander';
import { readExistingDeployment } from '../../deployment/existing.js';
import { connectionInfo, DEFAULT_MODEL, DEFAULT_PATH, type ConnectInfo } from '../../ops/connect.js';
import { readProxyConfigFile } from '../../ops/routes.js';
import { bold, printLine, printReport } from '../output.js';

interface ConnectOptions {
  dir: string;
  path: string;
  model: string;
  json?: boolean;
}

export function registerConnect(program: Command): void {
  program
    .command('connect')
    .description("How Claude uses the tunnel: the URL(s), a ready Messages API request (curl and TypeScript), the Managed Agents steps, the caveats")
    .argument('[route]', 'only this route (name or full hostname); default: every route')
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .addOption(new Option('--path <path>', 'the path the MCP server serves (forwarded untouched)').env('MCP_TUNNEL_CONNECT_PATH').default(DEFAULT_PATH))
    .addOption(new Option('--model <model>', 'model in the sample request').env('MCP_TUNNEL_MODEL').default(DEFAULT_MODEL))
    .addOption(new Option('--json', 'print it as JSON (docs/json.md: connect)').env('MCP_TUNNEL_JSON'))
    .action(async (route: string | undefined, options: ConnectOptions) => {
      const info = await loadConnectionInfo(options.dir, { route, path: options.path, model: options.model });
      if (options.json) printReport('connect', info);
      else printConnect(info);
    });
}

export async function loadConnectionInfo(dir: string, opts: { route?: string; path?: string; model?: string } = {}): Promise<ConnectInfo> {
  const file = await readProxyConfigFile(dir);
  const existing = await readExistingDeployment(file.paths);
  return connectionInfo({
    tunnelId: existing.tunnelId,
    tunnelDomain: file.config.tunnelDomain ?? existing.tunnelDomain,
    routes: file.routes.map((r) => ({ name: r.name, host: r.host, upstream: r.url })),
    ...opts,
  });
}

export function printConnect(info: ConnectInfo): void {
  printLine(bold('Claude reaches:'));
  for (const s of info.servers) printLine(`  ${s.url}   (route ${s.name} -> ${s.upstream})`);
  printLine();
  printLine(bold(`Messages API (MCP connector, beta ${info.messagesApi.headers['anthropic-beta']}):`));
  printLine(info.curl);
  printLine();
  printLine(bold('TypeScript (@anthropic-ai/sdk):'));
  printLine(info.typescript);
  printLine();
  printLine(bold('Managed Agents:'));
  for (const step of info.managedAgents) printLine(`  - ${step}`);
  printLine();
  printLine(bold('Keep in mind:'));
  for (const c of info.caveats) printLine(`  - ${c}`);
}

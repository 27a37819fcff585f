import { Command, Option } from 'commander';
import { COMPOSE_SERVICES } from '../../bundle/compose-file.js';
import { isUserError } from '../../errors.js';
import { runProbe, type ProbeResult } from '../../probe/index.js';
import { addRoute, readProxyConfigFile, removeRoute, writeProxyConfigText, type RouteEdit } from '../../ops/routes.js';
import { proxyAddress, restartProxyStack, stackRunning } from '../../ops/stack.js';
import { detectComposeCommand } from '../compose-command.js';
import { printLine, printReport, printStep, printWarning } from '../output.js';

interface RoutesOptions {
  dir: string;
  restart: boolean;
  json?: boolean;
}

const dirOption = (): Option => new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.');

export function registerRoutes(program: Command): void {
  const routes = program
    .command('routes')
    .description('List, add or remove routes in config/mcp-proxy.yaml (comments and layout kept), then restart the proxy');

  routes
    .command('list')
    .description('Show the configured routes and the URL Claude uses for each')
    .addOption(dirOption())
    .addOption(new Option('--json', 'print the routes as JSON (docs/json.md: routes)').env('MCP_TUNNEL_JSON'))
    .action(async (options: RoutesOptions) => {
      const file = await readProxyConfigFile(options.dir);
      if (options.json) {
        printReport('routes', { routes: file.routes.map((r) => ({ name: r.name, upstream: r.url, url: `https://${r.host}/mcp` })) });
        return;
      }
      const width = Math.max(4, ...file.routes.map((r) => r.name.length));
      const upWidth = Math.max(8, ...file.routes.map((r) => r.url.length));
      printLine(`${'NAME'.padEnd(width)}  ${'UPSTREAM'.padEnd(upWidth)}  CLAUDE REACHES`);
      for (const r of file.routes) printLine(`${r.name.padEnd(width)}  ${r.url.padEnd(upWidth)}  https://${r.host}/mcp`);
    });

  routes
    .command('add')
    .description('Add route NAME (NAME.<tunnel-domain>) to upstream URL (http(s)://host:port)')
    .argument('<name>', 'route name: a DNS label')
    .argument('<url>', 'upstream: exactly scheme://host:port (the path travels with each request)')
    .addOption(dirOption())
    .addOption(new Option('--no-restart', 'only edit the config; restart the proxy yourself later').env('MCP_TUNNEL_NO_RESTART'))
    .action(async (name: string, url: string, options: RoutesOptions) => {
      const file = await readProxyConfigFile(options.dir);
      const edit = addRoute(file, name, url);
      await writeProxyConfigText(file.paths, edit.text);
      printStep(`added route ${edit.route.name} -> ${edit.route.url} to config/mcp-proxy.yaml${edit.preserved ? '' : ' (layout normalised by the YAML library)'}`);
      await afterEdit(file.paths.dir, options, edit, 'add');
    });

  routes
    .command('remove')
    .alias('rm')
    .description('Remove route NAME')
    .argument('<name>', 'route name (or its full hostname)')
    .addOption(dirOption())
    .addOption(new Option('--no-restart', 'only edit the config; restart the proxy yourself later').env('MCP_TUNNEL_NO_RESTART'))
    .action(async (name: string, options: RoutesOptions) => {
      const file = await readProxyConfigFile(options.dir);
      const edit = removeRoute(file, name);
      await writeProxyConfigText(file.paths, edit.text);
      printStep(`removed route ${edit.route.name} (${edit.route.url}) from config/mcp-proxy.yaml`);
      await afterEdit(file.paths.dir, options, edit, 'remove');
    });
}

/** With the compose command this host has (docker compose, or docker-compose v1). */
const restartByHand = (): string => `${detectComposeCommand() ?? 'docker compose'} restart ${COMPOSE_SERVICES.proxy} ${COMPOSE_SERVICES.cloudflared}`;

/** The official proxy does not reload its config: restart it (and cloudflared, in its namespace), then check. */
async function afterEdit(dir: string, options: RoutesOptions, edit: RouteEdit, kind: 'add' | 'remove'): Promise<void> {
  const probeHint = kind === 'add' ? `then check it: mcp-tunnel probe ${edit.route.name} --dir ${dir}` : '';
  if (!options.restart) {
    printLine(`The proxy reads its config at start only: restart it to apply (${restartByHand()}), ${probeHint || 'then the route is gone'}`);
    return;
  }
  const state = await stackRunning(dir);
  if (!state.running) {
    printLine(`The stack is not running${state.detail ? ` (${state.detail})` : ''}: the route applies when it starts (mcp-tunnel up). ${probeHint}`.trim());
    return;
  }
  let restarted;
  try {
    restarted = await restartProxyStack(dir);
  } catch (err) {
    if (!isUserError(err)) throw err;
    printWarning(`the config is written, but the restart failed: ${err.message}`);
    printLine(`Restart by hand: ${restartByHand()}`);
    process.exitCode = err.exitCode;
    return;
  }
  printStep(`restarted ${restarted.restarted.join(' and ')}${restarted.healthy ? '' : ' (the proxy is not healthy yet: mcp-tunnel status)'}`);
  if (kind === 'remove') return;

  // Confirm through the stack: the proxy container's address on its network, the probe's full path.
  const ip = proxyAddress(restarted.proxy);
  const port = edit.config.listenAddr.port;
  if (!ip) {
    printLine(`Check the route: ${probeHint.replace(/^then check it: /, '')} --proxy ws://<proxy address>:${port}/`);
    return;
  }
  let result: ProbeResult;
  try {
    result = await runProbe({ dir, route: edit.route.name, proxyUrl: `ws://${ip}:${port}/`, timeoutMs: 10_000 });
  } catch (err) {
    printWarning(`could not probe the route: ${(err as Error).message}`);
    return;
  }
  if (result.ok) {
    printStep(`route ${edit.route.name} is served: MCP initialize through the proxy answered (${result.server?.name ?? 'server'})`);
  } else {
    const f = result.failure!;
    printWarning(`the route is configured, but the probe failed at ${f.step} (${f.layer}): ${f.message}`);
    if (f.hint) printLine(`hint: ${f.hint}`);
  }
}

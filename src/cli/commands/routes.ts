import { Command, Option } from 'commander';
import { addRoute, readProxyConfigFile, removeRoute, writeProxyConfigText, type RouteEdit, type RouteEntry } from '../../ops/routes.js';
import { applyProxyConfig, type ApplyOutcome } from '../apply-proxy-config.js';
import { printLine, printReport, printStep } from '../output.js';

interface RoutesOptions {
  dir: string;
  restart: boolean;
  json?: boolean;
}

const dirOption = (): Option => new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.');
/** A route as every --json report shows it: its name, the upstream and the URL Claude uses. */
const routeView = (r: RouteEntry): { name: string; upstream: string; url: string } => ({ name: r.name, upstream: r.url, url: `https://${r.host}/mcp` });
const changeJsonOption = (): Option => new Option('--json', 'print the change and how it was applied as JSON (docs/json.md: route-change); progress goes nowhere').env('MCP_TUNNEL_JSON');

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
        printReport('routes', { routes: file.routes.map(routeView) });
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
    .addOption(changeJsonOption())
    .action(async (name: string, url: string, options: RoutesOptions) => {
      const file = await readProxyConfigFile(options.dir);
      const edit = addRoute(file, name, url);
      await writeProxyConfigText(file.paths, edit.text);
      if (!options.json) printStep(`added route ${edit.route.name} -> ${edit.route.url} to config/mcp-proxy.yaml${edit.preserved ? '' : ' (layout normalised by the YAML library)'}`);
      await afterEdit(file.paths.dir, options, edit, 'add');
    });

  routes
    .command('remove')
    .alias('rm')
    .description('Remove route NAME')
    .argument('<name>', 'route name (or its full hostname)')
    .addOption(dirOption())
    .addOption(new Option('--no-restart', 'only edit the config; restart the proxy yourself later').env('MCP_TUNNEL_NO_RESTART'))
    .addOption(changeJsonOption())
    .action(async (name: string, options: RoutesOptions) => {
      const file = await readProxyConfigFile(options.dir);
      const edit = removeRoute(file, name);
      await writeProxyConfigText(file.paths, edit.text);
      if (!options.json) printStep(`removed route ${edit.route.name} (${edit.route.url}) from config/mcp-proxy.yaml`);
      await afterEdit(file.paths.dir, options, edit, 'remove');
    });
}

/** The official proxy does not reload its config: restart it (and cloudflared, in its namespace), then check. */
async function afterEdit(dir: string, options: RoutesOptions, edit: RouteEdit, kind: 'add' | 'remove'): Promise<void> {
  const apply: ApplyOutcome = await applyProxyConfig(
    {
      dir,
      restart: options.restart,
      config: edit.config,
      probeRoute: kind === 'add' ? edit.route.name : undefined,
      appliesWhen: kind === 'add' ? 'the route applies' : 'the route is gone',
    },
    options.json === true,
  );
  if (options.json) {
    printReport('route-change', { action: kind, route: routeView(edit.route), preserved: edit.preserved, apply });
  }
}

import { Command, Option } from 'commander';
import { stackStatus, type StackStatus } from '../../docker/index.js';
import { bold, printLine, printReport, printWarning } from '../output.js';
import { requireDeploymentDir } from '../deployment-dir.js';

interface StatusCliOptions {
  dir: string;
  json?: boolean;
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('Show the stack: containers (state, health, uptime, restarts), tunnel connections, routes, certificate expiry')
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .addOption(new Option('--json', 'print the status as JSON (docs/json.md: status)').env('MCP_TUNNEL_JSON'))
    .addHelpText('after', '\nExit codes: 0 when the stack is fully running, 1 when it is degraded, stopped or absent, 3 when Docker is unreachable.')
    .action(async (options: StatusCliOptions) => runStatus(options));
}

function uptime(seconds: number | undefined): string {
  if (seconds === undefined) return '-';
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86_400)}d${Math.floor((seconds % 86_400) / 3600)}h`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

export function renderStatus(s: StackStatus): void {
  printLine(`${bold(`Project ${s.project}`)} (${s.dir}): ${s.overall}`);
  printLine();
  const rows = [['SERVICE', 'CONTAINER', 'STATE', 'HEALTH', 'UPTIME', 'RESTARTS', 'PORTS']];
  for (const c of s.services) {
    rows.push([
      c.service,
      c.container ?? '-',
      c.state + (c.exitCode !== undefined && c.state !== 'running' && c.state !== 'missing' ? ` (${c.exitCode})` : ''),
      c.health ?? '-',
      uptime(c.uptimeSeconds),
      String(c.restarts),
      c.ports.join(', ') || '-',
    ]);
  }
  for (const line of table(rows)) printLine(line);
  printLine();
  if (s.tunnel) printLine(`Tunnel: ${s.tunnel.registered}/${s.tunnel.full} connections registered (${s.tunnel.state})`);
  if (s.routes.length) {
    printLine('Routes:');
    for (const r of s.routes) printLine(`  https://${r.host}  ->  ${r.upstream}`);
  } else if (s.routesError) printLine(`Routes: ${s.routesError}`);
  if (s.certificate) {
    const c = s.certificate;
    printLine(`Certificate: data/tls.crt ${c.expired ? 'EXPIRED on' : 'valid until'} ${c.notAfter} (${c.expired ? `${-c.daysLeft} days ago` : `${c.daysLeft} days left`})`);
  } else if (s.certificateError) printLine(`Certificate: ${s.certificateError}`);
  const where = s.docker.source === 'DOCKER_HOST' ? ' (DOCKER_HOST)' : s.docker.context ? ` (${s.docker.source === 'DOCKER_CONTEXT' ? 'DOCKER_CONTEXT' : 'docker context'} ${s.docker.context})` : '';
  printLine(`Docker: ${s.docker.endpoint}${where}${s.docker.serverVersion ? `, engine ${s.docker.serverVersion}` : ''}${s.docker.rootless ? ', rootless' : ''}`);
  for (const p of s.problems) printWarning(p);
}

async function runStatus(options: StatusCliOptions): Promise<void> {
  await requireDeploymentDir(options.dir);
  const status = await stackStatus(options.dir);
  if (options.json) printReport('status', status);
  else renderStatus(status);
  if (status.overall !== 'running') process.exitCode = 1;
}

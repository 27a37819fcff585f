import { Command, Option } from 'commander';
import { parseDuration } from '../../deployment/duration.js';
import { composeDown } from '../../docker/index.js';
import { bold, printLine, printReport, printStep, printWarning } from '../output.js';
import { requireDeploymentDir } from '../deployment-dir.js';

interface DownCliOptions {
  dir: string;
  timeout?: string;
  saveLogs: boolean;
  json?: boolean;
}

export function registerDown(program: Command): void {
  program
    .command('down')
    .description('Stop and remove the stack\'s containers and its network (breach response: down --timeout 0)')
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .addOption(
      new Option('-t, --timeout <duration>', 'how long each container may take to stop before it is killed (e.g. 10s); 0 kills at once (default: its stop_grace_period)').env(
        'MCP_TUNNEL_DOWN_TIMEOUT',
      ),
    )
    .addOption(new Option('--no-save-logs', "don't save the containers' logs to logs/ before removing them").env('MCP_TUNNEL_NO_SAVE_LOGS'))
    .addOption(new Option('--json', 'print what was removed and where the logs were saved, as JSON (docs/json.md: down)').env('MCP_TUNNEL_JSON'))
    .addHelpText(
      'after',
      '\nEach container\'s log is saved to DIR/logs/<UTC time>-<service>.log (0600) once it is stopped and before it is removed\n' +
        '(the evidence a breach review needs; --no-save-logs skips it). Works even when compose.yaml or .env no longer load\n' +
        '(only the project name is needed). Interchangeable with `docker compose down` (which keeps no logs).',
    )
    .action(async (options: DownCliOptions) => runDown(options));
}

/** A duration ("10s", "1m", or 0), like every other duration flag; the Engine API takes whole seconds. */
export function parseStopTimeout(text: string): number {
  return Math.ceil(parseDuration(text, '--timeout', { max: 3_600_000 }) / 1000);
}

async function runDown(options: DownCliOptions): Promise<void> {
  await requireDeploymentDir(options.dir);
  const timeoutSeconds = options.timeout === undefined ? undefined : parseStopTimeout(options.timeout);
  const json = options.json === true;
  const result = await composeDown(options.dir, {
    timeoutSeconds,
    saveLogs: options.saveLogs,
    onEvent: (e) => {
      if (e.type === 'warning') printWarning(e.hint ? `${e.message} (${e.hint})` : e.message);
      if (json) return;
      if (e.type === 'container' && e.action === 'removed') printStep(`${e.name} stopped and removed`);
      if (e.type === 'network' && e.action === 'removed') printStep(`network ${e.name} removed`);
    },
  });
  if (json) {
    printReport('down', { project: result.project, removedContainers: result.removedContainers, removedNetworks: result.removedNetworks, savedLogs: result.savedLogs });
    return;
  }
  for (const saved of result.savedLogs) printStep(`${saved.container}: ${saved.lines} log lines saved to ${saved.file}`);
  if (result.removedContainers.length === 0 && result.removedNetworks.length === 0) {
    printLine(`Nothing to do: compose project ${bold(result.project)} has no containers and no network.`);
    return;
  }
  printLine(`Stack ${bold(result.project)} is down.`);
}

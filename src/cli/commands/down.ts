import { Command, Option } from 'commander';
import { parseDuration } from '../../bundle/duration.js';
import { composeDown } from '../../docker/index.js';
import { bold, printLine, printStep } from '../output.js';
import { requireDeploymentDir } from '../deployment-dir.js';

interface DownCliOptions {
  dir: string;
  timeout?: string;
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
    .addHelpText('after', '\nWorks even when compose.yaml or .env no longer load (only the project name is needed). Interchangeable with `docker compose down`.')
    .action(async (options: DownCliOptions) => runDown(options));
}

/** A duration ("10s", "1m", or 0), like every other duration flag; the Engine API takes whole seconds. */
export function parseStopTimeout(text: string): number {
  return Math.ceil(parseDuration(text, '--timeout', { max: 3_600_000 }) / 1000);
}

async function runDown(options: DownCliOptions): Promise<void> {
  await requireDeploymentDir(options.dir);
  const timeoutSeconds = options.timeout === undefined ? undefined : parseStopTimeout(options.timeout);
  const result = await composeDown(options.dir, {
    timeoutSeconds,
    onEvent: (e) => {
      if (e.type === 'container' && e.action === 'removed') printStep(`${e.name} stopped and removed`);
      if (e.type === 'network' && e.action === 'removed') printStep(`network ${e.name} removed`);
    },
  });
  if (result.removedContainers.length === 0 && result.removedNetworks.length === 0) {
    printLine(`Nothing to do: compose project ${bold(result.project)} has no containers and no network.`);
    return;
  }
  printLine(`Stack ${bold(result.project)} is down.`);
}

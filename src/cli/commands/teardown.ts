import { input } from '@inquirer/prompts';
import { Command, Option } from 'commander';
import { composeDown, resolveProjectName } from '../../docker/index.js';
import { checkTeardownConfirmation, removeSecrets, requireTeardownTarget, secretsToRemove } from '../../ops/teardown.js';
import { isInteractive } from '../interactive.js';
import { bold, printLine, printReport, printStep, printWarning } from '../output.js';
import { requireDeploymentDir } from '../deployment-dir.js';
import { runRevoke, type RevokeOutcome } from './revoke.js';

interface TeardownCliOptions {
  dir: string;
  yes?: boolean;
  revoke?: boolean;
  tunnelId?: string;
  saveLogs: boolean;
  nonInteractive?: boolean;
  json?: boolean;
}

const HELP = `
In order: 1. down (each container's log saved to logs/ first), 2. with --revoke, archive the tunnel (as
mcp-tunnel revoke does: the API in the wif flow, needing --tunnel-id with --yes; the Console steps in the
manual flow), 3. delete data/ (CA key, server key, tunnel token), .env and .env.previous. compose.yaml,
config/ and logs/ hold no secrets and stay. Asks you to type the project name; --yes skips that (scripts).
Exit codes: 0 done, 2 not confirmed (no terminal and no --yes), 3 Docker or a file could not be handled.`;

export function registerTeardown(program: Command): void {
  program
    .command('teardown')
    .description('End a deployment: stop the stack (logs saved), optionally archive the tunnel, delete the stored credentials')
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .option('-y, --yes', 'do not ask for the typed confirmation (scripts)')
    .option('--revoke', 'archive the tunnel too (irreversible), before the credentials are deleted')
    .option('--tunnel-id <id>', 'with --revoke --yes in the wif flow: the tunnel ID, as the confirmation')
    .addOption(new Option('--no-save-logs', "don't save the containers' logs before removing them").env('MCP_TUNNEL_NO_SAVE_LOGS'))
    .addOption(new Option('--non-interactive', 'never prompt (implied with --json)').env('MCP_TUNNEL_NON_INTERACTIVE'))
    .addOption(new Option('--json', 'print what was done as JSON (docs/json.md: teardown); implies --non-interactive').env('MCP_TUNNEL_JSON'))
    .addHelpText('after', HELP)
    .action(async (options: TeardownCliOptions) => runTeardown(options));
}

async function runTeardown(options: TeardownCliOptions): Promise<void> {
  await requireDeploymentDir(options.dir);
  requireTeardownTarget(options.dir);
  const project = await resolveProjectName(options.dir);
  const targets = await secretsToRemove(options.dir);
  if (!options.yes) {
    // --json keeps stdout one document: no question on it.
    if (options.json || !isInteractive(options)) checkTeardownConfirmation(project, undefined);
    printLine(`This stops project ${bold(project)}${options.revoke ? ', archives its tunnel (irreversible)' : ''} and deletes ${targets.map((t) => t.label).join(', ') || 'nothing (no credentials left)'}.`);
    checkTeardownConfirmation(project, await input({ message: `Type the project name (${project}) to tear it down:` }));
  }
  const down = await composeDown(options.dir, {
    saveLogs: options.saveLogs,
    onEvent: (e) => {
      if (e.type === 'warning') printWarning(e.hint ? `${e.message} (${e.hint})` : e.message);
    },
  });
  if (!options.json) {
    for (const s of down.savedLogs) printStep(`${s.container}: ${s.lines} log lines saved to ${s.file}`);
    printStep(down.removedContainers.length ? `stopped and removed ${down.removedContainers.join(', ')}` : 'no container was running');
  }
  let revoke: RevokeOutcome | null = null;
  if (options.revoke) revoke = await runRevoke({ dir: options.dir, yes: options.yes, tunnelId: options.tunnelId, nonInteractive: options.nonInteractive }, options.json === true);
  const removed = await removeSecrets(targets);
  if (options.json) {
    printReport('teardown', { project, removedContainers: down.removedContainers, removedNetworks: down.removedNetworks, savedLogs: down.savedLogs, revoke, removed });
    return;
  }
  printStep(removed.length ? `deleted ${removed.join(', ')}` : 'no credentials were left to delete');
  printLine(`Deployment ${project} is torn down. Kept: compose.yaml, config/${down.savedLogs.length ? ', logs/' : ''}.`);
}

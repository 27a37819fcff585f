import { Command, Option } from 'commander';
import { RENEWER_CA_GID, RENEWER_SERVICE } from '../../deployment/compose-file.js';
import { disableAutoRenew, enableAutoRenew, type ScheduleResult } from '../../ops/auto-renew.js';
import { VERSION } from '../../version.js';
import { printLine, printStep } from '../output.js';
import { composeOr, logsCommand, oursOrCompose } from '../../docker/compose-command.js';

interface ScheduleOptions {
  dir: string;
  disable?: boolean;
  force?: boolean;
}

const HELP = `
Adds the ${RENEWER_SERVICE} service to compose.yaml: a container of the builtin image (built from DIR/build, which
this command writes whatever the proxy engine) that runs \`renew-cert --every 24h --renew-before 720h\`, with the
same hardening as the other services, no network, and only ./data mounted. It runs as MCP_TUNNEL_UID/GID (the
owner of tls.*). When init ran as root, data/ca.key stays root's but is made readable by group ${RENEWER_CA_GID}
(0640) and data/ becomes root:${RENEWER_CA_GID} 1731: only the renewer carries that group (group_add), so the proxy
and cloudflared still cannot read the CA key. --disable removes the service and restores those permissions.`;

export function registerScheduleRenewal(program: Command): void {
  program
    .command('schedule-renewal')
    .description('Renew the server certificate automatically: add (or --disable) the daily cert-renewer service')
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .option('--disable', 'remove the cert-renewer service and restore the permissions of data/')
    .option('--force', 'edit a hand-edited compose.yaml even if its layout gets rewritten')
    .addHelpText('after', HELP)
    .action(async (options: ScheduleOptions) => runSchedule(options));
}

async function runSchedule(options: ScheduleOptions): Promise<void> {
  const result = options.disable
    ? await disableAutoRenew({ dir: options.dir, version: VERSION, force: options.force })
    : await enableAutoRenew({ dir: options.dir, version: VERSION, force: options.force });
  print(result, options);
}

function print(result: ScheduleResult, options: ScheduleOptions): void {
  const file = result.method === 'edited' ? 'compose.yaml (edited in place)' : 'compose.yaml';
  if (options.disable) {
    if (result.compose === 'removed') printStep(`removed the ${RENEWER_SERVICE} service from ${file}`);
    else printStep(`compose.yaml has no ${RENEWER_SERVICE} service; nothing to remove`);
    if (result.access === 'revoked') printStep('data/ca.key is 0600 again and data/ private to its owner');
    printLine(`Stop a running renewer:  ${composeOr('up -d --remove-orphans', 'mcp-tunnel down && mcp-tunnel up')}   (project ${result.project})`);
    printLine('Renew by hand from now on:  mcp-tunnel renew-cert   (exit 10 = not needed yet)');
    return;
  }
  if (result.compose === 'added') printStep(`added the ${RENEWER_SERVICE} service to ${file}`);
  else printStep(`compose.yaml already has the ${RENEWER_SERVICE} service`);
  if (result.buildContext) printStep(`wrote the build context of the renewer image to ${result.buildContext}`);
  if (result.access === 'granted') printStep(`data/ca.key is now readable by group ${RENEWER_CA_GID} (the renewer's only), data/ writable by it (sticky)`);
  printLine(`The renewer runs as ${result.identity.uid}:${result.identity.gid}, daily: a new certificate from the same CA once less than 30 days remain.`);
  printLine(`Start it:  ${oursOrCompose('mcp-tunnel up', 'up -d')}      Watch it:  ${logsCommand('cert-renewer')}`);
}

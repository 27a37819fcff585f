import path from 'node:path';
import { Command, Option } from 'commander';
import { RENEWER_CA_GID, RENEWER_SERVICE } from '../../deployment/compose-file.js';
import { formatMode } from '../../deployment/file-mode.js';
import { disableAutoRenew, enableAutoRenew, type ScheduleResult } from '../../ops/auto-renew.js';
import { VERSION } from '../../version.js';
import { printLine, printReport, printStep } from '../output.js';
import { composeOr, logsCommand, oursOrCompose } from '../../docker/compose-command.js';

interface ScheduleOptions {
  dir: string;
  disable?: boolean;
  force?: boolean;
  json?: boolean;
}

const HELP = `
Adds the ${RENEWER_SERVICE} service to compose.yaml: a container of the builtin image (built from DIR/build, which
this command writes whatever the proxy engine) that runs \`renew-cert --every 24h --renew-before 720h\`, with the
same hardening as the other services, no network, and only ./data mounted. It runs as MCP_TUNNEL_UID/GID (the
owner of tls.*). When init ran as root, data/ca.key stays root's but is made readable by group ${RENEWER_CA_GID}
(0640) and data/ becomes root:${RENEWER_CA_GID} 1731: only the renewer carries that group (group_add), so the proxy
and cloudflared still cannot read the CA key. --disable removes the service and restores those permissions.
Running it again changes nothing (--json then reports "changed": false).`;

export function registerScheduleRenewal(program: Command): void {
  program
    .command('schedule-renewal')
    .description('Renew the server certificate automatically: add (or --disable) the daily cert-renewer service')
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .option('--disable', 'remove the cert-renewer service and restore the permissions of data/')
    .option('--force', 'edit a hand-edited compose.yaml even if its layout gets rewritten')
    .addOption(new Option('--json', 'print what was written or changed, and the renewer\'s schedule, as JSON (docs/json.md: schedule-renewal)').env('MCP_TUNNEL_JSON'))
    .addHelpText('after', HELP)
    .action(async (options: ScheduleOptions) => runSchedule(options));
}

async function runSchedule(options: ScheduleOptions): Promise<void> {
  const result = options.disable
    ? await disableAutoRenew({ dir: options.dir, version: VERSION, force: options.force })
    : await enableAutoRenew({ dir: options.dir, version: VERSION, force: options.force });
  const next = nextSteps(result, options);
  if (options.json) report(result, options, next);
  else print(result, options, next);
}

function nextSteps(result: ScheduleResult, options: ScheduleOptions): string[] {
  if (options.disable) {
    return [
      `Stop a running renewer:  ${composeOr('up -d --remove-orphans', 'mcp-tunnel down && mcp-tunnel up')}   (project ${result.project})`,
      'Renew by hand from now on:  mcp-tunnel renew-cert   (exit 10 = not needed yet)',
    ];
  }
  return [`Start it:  ${oursOrCompose('mcp-tunnel up', 'up -d')}      Watch it:  ${logsCommand(RENEWER_SERVICE)}`];
}

function report(result: ScheduleResult, options: ScheduleOptions, next: string[]): void {
  const dir = path.resolve(options.dir);
  printReport('schedule-renewal', {
    action: options.disable ? 'disable' : 'enable',
    dir,
    project: result.project,
    changed: result.files.length > 0,
    service: RENEWER_SERVICE,
    compose: result.compose,
    composeMethod: result.method ?? null,
    renewer: result.renewer
      ? { command: result.renewer.command, every: result.renewer.every ?? null, renewBefore: result.renewer.renewBefore ?? null, runsAs: result.identity }
      : null,
    access: result.access,
    files: result.files.map((f) => ({ path: path.relative(dir, f.path) || '.', change: f.change, mode: formatMode(f.mode), gid: f.gid ?? null })),
    next,
  });
}

function print(result: ScheduleResult, options: ScheduleOptions, next: string[]): void {
  const file = result.method === 'edited' ? 'compose.yaml (edited in place)' : 'compose.yaml';
  if (options.disable) {
    if (result.compose === 'removed') printStep(`removed the ${RENEWER_SERVICE} service from ${file}`);
    else printStep(`compose.yaml has no ${RENEWER_SERVICE} service; nothing to remove`);
    if (result.access === 'revoked') printStep('data/ca.key is 0600 again and data/ private to its owner');
    for (const line of next) printLine(line);
    return;
  }
  if (result.compose === 'added') printStep(`added the ${RENEWER_SERVICE} service to ${file}`);
  else printStep(`compose.yaml already has the ${RENEWER_SERVICE} service`);
  const build = result.buildContext;
  if (build && result.files.some((f) => f.path.startsWith(`${build}${path.sep}`))) printStep(`wrote the build context of the renewer image to ${build}`);
  if (result.access === 'granted') printStep(`data/ca.key is now readable by group ${RENEWER_CA_GID} (the renewer's only), data/ writable by it (sticky)`);
  printLine(`The renewer runs as ${result.identity.uid}:${result.identity.gid}, ${result.renewer?.every ? `every ${result.renewer.every}` : 'daily'}: a new certificate from the same CA once less than ${result.renewer?.renewBefore ?? '720h'} of validity remains.`);
  for (const line of next) printLine(line);
}

import path from 'node:path';
import { Command, Option } from 'commander';
import { parseDuration } from '../../deployment/duration.js';
import { readWifSettings } from '../../anthropic/index.js';
import { readTextIfExists } from '../../deployment/atomic-file.js';
import { deploymentPaths } from '../../deployment/layout.js';
import { AbortedError, ExitCode, UserError } from '../../errors.js';
import { rotateCa, type CaRotateEvent, type CaRotateResult } from '../../ops/ca-rotate.js';
import { proxyServes } from '../../ops/proxy-serving.js';
import { TUNNEL_PROTOCOL } from '../../probe/index.js';
import { isInteractive } from '../interactive.js';
import { bold, printLine, printReport, printStep } from '../output.js';
import { askConfirm } from '../prompts/init-wizard.js';
import { addWifClientOptions, tunnelsApiFromDeployment, type WifClientFlags } from '../wif-client.js';

interface CaRotateCliOptions extends WifClientFlags {
  dir: string;
  caKey: 'ecdsa' | 'rsa';
  registered?: boolean;
  dryRun?: boolean;
  yes?: boolean;
  nonInteractive?: boolean;
  proxy: string;
  waitTimeout: string;
  skipConfirm?: boolean;
  json?: boolean;
}

export function registerCa(program: Command): void {
  const ca = program.command('ca').description("The tunnel's CA");
  addWifClientOptions(ca.command('rotate'))
    .description('Replace the CA without downtime: register the new CA beside the old one, switch the proxy, then archive (or revoke) the old one')
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .addOption(new Option('--ca-key <type>', 'key type of the new CA').choices(['ecdsa', 'rsa']).env('MCP_TUNNEL_CA_KEY').default('ecdsa'))
    .option('--registered', 'manual: the new CA (data/ca.next.crt) is registered in the Console; switch the proxy to it')
    .addOption(new Option('--dry-run', 'say what would happen; change nothing (the programmatic flow still reads the tunnel\'s certificates)').env('MCP_TUNNEL_DRY_RUN'))
    .option('-y, --yes', 'do not ask before changing the tunnel and the proxy')
    .addOption(new Option('--non-interactive', 'never prompt (implied without a TTY, under CI or with --json)').env('MCP_TUNNEL_NON_INTERACTIVE'))
    .addOption(new Option('--json', 'print the result as JSON (docs/json.md: ca-rotate); implies --non-interactive').env('MCP_TUNNEL_JSON'))
    .addOption(new Option('--proxy <url>', "the proxy's WebSocket URL, to see it serve the new certificate").env('MCP_TUNNEL_PROXY_URL').default(TUNNEL_PROTOCOL.defaultProxyUrl))
    .addOption(new Option('--wait-timeout <duration>', 'how long to wait for the proxy to serve the new certificate (e.g. 1m)').env('MCP_TUNNEL_WAIT_TIMEOUT').default('60s'))
    .option('--skip-confirm', 'do not wait to see the proxy serve the new certificate (a stack that is not running)')
    .addHelpText(
      'after',
      '\nState is kept in data/ca-rotation.json: an interrupted rotation completes when run again. The old CA stays in\n' +
        'data/ca.previous.crt and data/ca.previous.key for a rollback until you remove them.',
    )
    .action(async (options: CaRotateCliOptions) => runCaRotate(options));
}

function parseWait(raw: string): number {
  return parseDuration(raw, '--wait-timeout', { min: 1000, max: 3_600_000 });
}

async function runCaRotate(options: CaRotateCliOptions): Promise<void> {
  const waitMs = parseWait(options.waitTimeout);
  const paths = deploymentPaths(options.dir);
  const envText = await readTextIfExists(paths.env);
  const flow = readWifSettings(envText).flow ?? 'manual';
  // --json keeps stdout one document: no prompt, no progress lines.
  const interactive = !options.json && isInteractive(options);
  const api = flow === 'wif' ? await tunnelsApiFromDeployment(options, envText, options.dir) : undefined;
  const base = {
    dir: options.dir,
    flow,
    api,
    keyType: options.caKey,
    skipConfirm: options.skipConfirm,
    confirmServing: (expected: Parameters<typeof proxyServes>[1]) => proxyServes(options.proxy, expected, waitMs),
    onProgress: options.json ? undefined : printEvent,
  };

  if (options.dryRun) return report(await rotateCa({ ...base, dryRun: true }), options);

  if (flow === 'wif' && !options.yes) {
    if (!interactive) {
      throw new UserError("ca rotate changes the tunnel's CAs and the proxy's certificate: pass --yes to go ahead", { hint: 'see first what it would do with --dry-run', code: 'CONFIRMATION_REQUIRED', exitCode: ExitCode.usage });
    }
    if (!(await askConfirm('Register a new CA on the tunnel, switch the proxy to it, then archive the old CA?', false))) throw new AbortedError('nothing was changed');
  }
  let result = await rotateCa({ ...base, registered: options.registered });
  if (result.status === 'awaiting-registration') {
    if (options.json) return report(result, options);
    printRegistration(result, options);
    if (!interactive) return;
    if (!(await askConfirm('Is the new CA registered in the Console now?', false))) {
      printLine(`When it is, run: mcp-tunnel ca rotate --dir ${options.dir} --registered`);
      return;
    }
    result = await rotateCa({ ...base, registered: true });
  }
  report(result, options);
}

function printEvent(event: CaRotateEvent): void {
  switch (event.type) {
    case 'resumed':
      printStep(`resuming the CA rotation recorded in data/ca-rotation.json (step: ${event.step})`);
      break;
    case 'created':
      printStep(`created a new ${event.keyType === 'ecdsa' ? 'ECDSA P-256' : 'RSA-3072'} CA in data/ca.next.crt (SHA-256 fingerprint ${event.fingerprint})`);
      break;
    case 'registered':
      printStep(`${event.already ? 'already registered' : 'registered'} the new CA on the tunnel (${event.certificateId}); the old one stays registered until the proxy serves the new certificate`);
      break;
    case 'swapped':
      printStep('switched data/tls.crt and tls.key to a certificate from the new CA; the old CA is kept as data/ca.previous.crt + ca.previous.key');
      break;
    case 'confirmed':
      printStep('the proxy serves the new certificate');
      break;
    case 'archived':
      printStep(`archived the old CA's certificate ${event.certificateId} (fingerprint ${event.fingerprint})`);
      break;
  }
}

function printRegistration(result: Extract<CaRotateResult, { status: 'awaiting-registration' }>, options: CaRotateCliOptions): void {
  printLine();
  printLine(bold('Register the new CA in the Console (the proxy keeps serving the current certificate until you do):'));
  printLine('  1. Console > MCP tunnels > your tunnel > CA certificates > Add (a tunnel holds two: the current CA stays)');
  printLine(`  2. Upload ${path.relative(process.cwd(), result.caFile) || result.caFile}, or paste this PEM (SHA-256 fingerprint ${result.fingerprint}):`);
  printLine();
  process.stdout.write(result.caPem);
  printLine();
  printLine(`  3. Then switch the proxy to it: ${registeredCommand(options)}`);
}

function report(result: CaRotateResult, options: CaRotateCliOptions): void {
  if (options.json) {
    printReport('ca-rotate', jsonReport(result, options));
    return;
  }
  if (result.status === 'dry-run') {
    printLine(`${result.resumeFrom ? `A rotation is in progress (step: ${result.resumeFrom}). ` : ''}ca rotate (${result.flow} flow) would:`);
    result.steps.forEach((s, i) => printLine(`  ${i + 1}. ${s}`));
    printLine('Nothing was changed.');
    return;
  }
  if (result.status === 'awaiting-registration') return;
  printLine();
  printLine(`CA rotated: ${result.oldFingerprint.slice(0, 16)}… -> ${result.newFingerprint.slice(0, 16)}…`);
  if (result.flow === 'manual') {
    printLine(bold('Last step, in the Console:'));
    printLine(`  Console > MCP tunnels > your tunnel > CA certificates: click Revoke on the row with fingerprint ${result.oldFingerprint}`);
  } else if (!result.archived) {
    printLine('The old CA was not registered on the tunnel: nothing to archive.');
  }
  printLine(`Rollback pair: ${result.rollbackFiles.join(' and ')} (remove them once you no longer need to go back). Directory: ${path.resolve(options.dir)}`);
}

const registeredCommand = (options: CaRotateCliOptions): string => `mcp-tunnel ca rotate --dir ${options.dir} --registered`;

/** One shape for the three outcomes, told apart by status; what the text output says in prose is in `next`. */
function jsonReport(result: CaRotateResult, options: CaRotateCliOptions): object {
  const dir = path.resolve(options.dir);
  switch (result.status) {
    case 'dry-run':
      return { dir, status: result.status, flow: result.flow, oldFingerprint: result.oldFingerprint, resumeFrom: result.resumeFrom ?? null, steps: result.steps };
    case 'awaiting-registration':
      return {
        dir,
        status: result.status,
        flow: 'manual',
        oldFingerprint: result.oldFingerprint,
        newFingerprint: result.fingerprint,
        caFile: result.caFile,
        caPem: result.caPem,
        next: [`Register the new CA in the Console: MCP tunnels > your tunnel > CA certificates > Add, upload ${result.caFile} (SHA-256 fingerprint ${result.fingerprint})`, `Then switch the proxy to it: ${registeredCommand(options)}`],
      };
    case 'done':
      return {
        dir,
        status: result.status,
        flow: result.flow,
        oldFingerprint: result.oldFingerprint,
        newFingerprint: result.newFingerprint,
        archivedCertificateId: result.archived?.id ?? null,
        rollbackFiles: result.rollbackFiles,
        next:
          result.flow === 'manual'
            ? [`Revoke the old CA in the Console: MCP tunnels > your tunnel > CA certificates > Revoke on the row with fingerprint ${result.oldFingerprint}`]
            : [],
      };
  }
}

import { Command, Option } from 'commander';
import { parseDuration, formatDuration } from '../../deployment/duration.js';
import { ValidationError, isUserError } from '../../errors.js';
import {
  DEFAULT_CERT_DURATION,
  DEFAULT_RENEW_BEFORE,
  RENEW_NOT_NEEDED_EXIT_CODE,
  renewServerCertificate,
  type RenewResult,
} from '../../ops/renew-cert.js';
import { MAX_EVERY_MS, MIN_EVERY_MS, runRenewalLoop } from '../../ops/renew-loop.js';
import { withDeploymentLock } from '../command-lock.js';
import { printError, printLine, printReport, printStep, printWarning } from '../output.js';

interface RenewCertOptions {
  dir: string;
  renewBefore: string;
  certDuration: string;
  force?: boolean;
  every?: string;
  json?: boolean;
  lockTimeout?: string;
}

const HELP = `
Exit codes:
  0   a new certificate was issued and swapped in
  ${RENEW_NOT_NEEDED_EXIT_CODE}  not needed: more than --renew-before of validity remains (nothing written)
  2   invalid input or deployment (missing CA, certificate of another CA or domain without --force)
  3   the environment failed (permissions, disk), or another command held the deployment's lock past --lock-timeout
  1   unexpected failure
For cron or a systemd timer, treat ${RENEW_NOT_NEEDED_EXIT_CODE} as success (systemd: SuccessExitStatus=${RENEW_NOT_NEEDED_EXIT_CODE}).
With --every the command keeps running (the cert-renewer service), logs one line per run, and exits 0 on SIGTERM.

The CA is never changed: the new certificate is signed by data/ca.crt + data/ca.key. The previous pair is kept
as data/tls.crt.previous and data/tls.key.previous; the proxy picks the new one up without a restart.`;

export function registerRenewCert(program: Command): void {
  program
    .command('renew-cert')
    .description('Issue a new server certificate with the existing CA when it nears expiry; swapped in without a restart')
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .addOption(new Option('--renew-before <duration>', 'renew only when less than this validity remains (e.g. 720h, 30d)').env('MCP_TUNNEL_RENEW_BEFORE').default(DEFAULT_RENEW_BEFORE))
    .addOption(new Option('--cert-duration <duration>', 'validity of the new certificate').env('MCP_TUNNEL_CERT_DURATION').default(DEFAULT_CERT_DURATION))
    .option('--force', 'renew now, whatever the remaining validity (also replaces a certificate of another CA or domain)')
    .addOption(new Option('--every <duration>', 'keep running and check every DURATION (e.g. 24h); exits 0 on SIGTERM').env('MCP_TUNNEL_RENEW_EVERY'))
    .addOption(new Option('--json', 'print the result as JSON, one object per run (docs/json.md: renew-cert)').env('MCP_TUNNEL_JSON'))
    .addHelpText('after', HELP)
    .action(async (options: RenewCertOptions) => runRenewCert(options));
}

interface Parsed {
  renewBeforeMs: number;
  certDurationMs: number;
  everyMs?: number;
}

function parseOptions(options: RenewCertOptions): Parsed {
  const renewBeforeMs = parseDuration(options.renewBefore, '--renew-before');
  const certDurationMs = parseDuration(options.certDuration, '--cert-duration');
  if (certDurationMs < 3_600_000) throw new ValidationError(`--cert-duration ${options.certDuration} is too short`, 'use at least 1h; the documented value is 2160h (90 days)', 'DURATION_OUT_OF_RANGE');
  let everyMs: number | undefined;
  if (options.every !== undefined) {
    everyMs = parseDuration(options.every, '--every');
    if (everyMs < MIN_EVERY_MS || everyMs > MAX_EVERY_MS) {
      throw new ValidationError(`--every ${options.every} is outside 1m..168h`, 'the scheduled service uses --every 24h', 'DURATION_OUT_OF_RANGE');
    }
    if (options.force) throw new ValidationError('--force and --every cannot be combined', 'it would issue a new certificate on every run', 'FLAGS_CONFLICT');
  }
  return { renewBeforeMs, certDurationMs, everyMs };
}

async function runRenewCert(options: RenewCertOptions): Promise<void> {
  const parsed = parseOptions(options);
  if (parsed.renewBeforeMs >= parsed.certDurationMs) {
    printWarning(`--renew-before ${options.renewBefore} is not shorter than --cert-duration ${options.certDuration}: every run will issue a new certificate`);
  }
  const renew = (): Promise<RenewResult> =>
    renewServerCertificate({ dir: options.dir, renewBeforeMs: parsed.renewBeforeMs, certDurationMs: parsed.certDurationMs, force: options.force });
  // A single run holds the deployment lock for the whole command (command-lock.ts); the loop only for each
  // run, so the deployment is not locked for days and a run that meets the lock retries later.
  const once = parsed.everyMs === undefined ? renew : (): Promise<RenewResult> => withDeploymentLock(options.dir, 'renew-cert --every', options.lockTimeout, renew);

  if (parsed.everyMs === undefined) {
    const result = await once();
    report(result, options);
    if (result.status === 'not-needed') process.exitCode = RENEW_NOT_NEEDED_EXIT_CODE;
    return;
  }

  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals): void => {
    if (!controller.signal.aborted) printLine(`${stamp()} renew-cert: ${signal} received, stopping`);
    controller.abort();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  printLine(`${stamp()} renew-cert: checking ${options.dir} every ${formatDuration(parsed.everyMs)} (renew when less than ${options.renewBefore} remains)`);
  try {
    await runRenewalLoop({
      everyMs: parsed.everyMs,
      signal: controller.signal,
      runOnce: once,
      onResult: (result, next) => report(result, options, next),
      onError: (err, next) => {
        if (!isUserError(err)) throw err;
        if (options.json) printReport('renew-cert', { time: new Date().toISOString(), status: 'failed', error: err.message, hint: err.hint, nextRun: next.toISOString() });
        else printError(`${stamp()} renew-cert failed: ${err.message} (next attempt ${next.toISOString()})`, err.hint);
      },
    });
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  }
}

const stamp = (): string => new Date().toISOString();

export function describeRemaining(ms: number): string {
  const days = Math.floor(ms / 86_400_000);
  if (days >= 2) return `${days} days`;
  const hours = Math.floor(ms / 3_600_000);
  return hours >= 1 ? `${hours} hours` : 'under an hour';
}

const REASON: Record<string, string> = {
  forced: 'forced',
  'expires-soon': 'expires soon',
  expired: 'had expired',
  missing: 'there was none',
  invalid: 'the old pair was unusable',
};

function report(result: RenewResult, options: RenewCertOptions, next?: Date): void {
  const loop = next !== undefined;
  if (options.json) {
    const base = { time: new Date().toISOString(), status: result.status, domain: result.domain, ...(next ? { nextRun: next.toISOString() } : {}) };
    if (result.status === 'not-needed') {
      printReport('renew-cert', { ...base, serial: result.current.serial, notAfter: result.current.notAfter.toISOString(), remainingHours: Math.floor(result.remainingMs / 3_600_000) });
    } else {
      printReport('renew-cert', {
        ...base,
        reason: result.reason,
        detail: result.detail,
        serial: result.current.serial,
        notBefore: result.current.notBefore.toISOString(),
        notAfter: result.current.notAfter.toISOString(),
        previousSerial: result.previous?.serial,
        cappedByCa: result.cappedByCa,
        written: result.written,
      });
    }
    return;
  }
  const prefix = loop ? `${stamp()} renew-cert: ` : '';
  if (result.status === 'not-needed') {
    printLine(
      `${prefix}not needed: data/tls.crt is valid until ${result.current.notAfter.toISOString()} (${describeRemaining(result.remainingMs)} left; renews when less than ${options.renewBefore} remains)` +
        (loop ? `; next check ${next.toISOString()}` : '; pass --force to renew now'),
    );
    return;
  }
  const why = REASON[result.reason] ?? result.reason;
  const line = `${prefix}renewed data/tls.crt for ${result.domain} and *.${result.domain} (${why}${result.detail ? `: ${result.detail}` : ''}): serial ${result.current.serial}, valid until ${result.current.notAfter.toISOString()}`;
  if (loop) {
    printLine(`${line}; next check ${next.toISOString()}`);
    return;
  }
  printStep(line);
  if (result.previous) printLine(`  previous pair (serial ${result.previous.serial}) kept as data/tls.crt.previous and data/tls.key.previous`);
  if (result.cappedByCa) printWarning('the new certificate ends when the CA does (data/ca.crt): plan the CA rotation');
  printLine('  the proxy reloads the pair without a restart (the builtin proxy within a few seconds; the official one on its next poll)');
}

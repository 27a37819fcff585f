import { Command, Option } from 'commander';
import { ValidationError } from '../../errors.js';
import { parseDuration } from '../../deployment/duration.js';
import { DEFAULT_EDGE_TARGETS, runDoctor, type DoctorFinding } from '../../ops/doctor/index.js';
import { parseEdgeTarget } from '../../ops/doctor/environment.js';
import { bold, printLine, printReport } from '../output.js';

interface DoctorOptions {
  dir: string;
  json?: boolean;
  edge: string[];
  edgeCheck: boolean;
  timeout: string;
  mcpPath: string;
  offline?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];

const HELP = `
Checks: the certificates (expiry, SAN vs tunnel_domain, chain: signed directly by data/ca.crt with AKI = the
CA's SKI, key/cert match), whether the containers' user (MCP_TUNNEL_UID/GID) can read what the proxy mounts,
the proxy config (routes as a map, upstreams exactly scheme://host:port), each upstream (resolved and checked
against upstream.allowed_ips as the proxy does, TCP reachable, not rejecting the tunnel's Host header with
HTTP 421), TUNNEL_TOKEN, Docker, the containers' health, cloudflared's registered connections and outbound
TCP 7844 to the tunnel edge (UDP 7844 is reported as a hint), a shell variable overriding .env (a stale
TUNNEL_TOKEN). Network checks run from this host; --offline skips every one of them.

Each finding: ok, warn, fail or skip, with the exact fix. Exit codes: 0 no finding failed (warnings allowed),
1 at least one failed, 2 invalid input (e.g. --dir does not exist).`;

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('Check a deployment for every documented failure, each with its fix (exit 1 when something fails)')
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .addOption(new Option('--json', 'print the findings as JSON (docs/json.md: doctor)').env('MCP_TUNNEL_JSON'))
    .addOption(
      new Option('--edge <host:port>', `tunnel edge target for the outbound 7844 check; repeatable (default ${DEFAULT_EDGE_TARGETS.join(', ')})`)
        .env('MCP_TUNNEL_DOCTOR_EDGE')
        .argParser(collect)
        .default([]),
    )
    .addOption(new Option('--offline', 'make no network connection: skip the upstream, tunnel edge and Anthropic API checks (Docker only over its local socket)').env('MCP_TUNNEL_DOCTOR_OFFLINE'))
    .option('--no-edge-check', 'do not connect to the tunnel edge (print the command to check it instead)')
    .addOption(new Option('--timeout <duration>', 'bound for each network check (e.g. 3s)').env('MCP_TUNNEL_DOCTOR_TIMEOUT').default('3s'))
    .addOption(new Option('--mcp-path <path>', 'MCP endpoint path for the Host-header check').default('/mcp'))
    .addHelpText('after', HELP)
    .action(async (options: DoctorOptions) => runDoctorCommand(options));
}

const MARK: Record<DoctorFinding['status'], string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', skip: 'skip' };

async function runDoctorCommand(options: DoctorOptions): Promise<void> {
  const timeoutMs = parseDuration(options.timeout, '--timeout', { min: 100, max: 60_000 });
  for (const t of options.edge) {
    if (!parseEdgeTarget(t)) throw new ValidationError(`--edge ${t} is not HOST:PORT`, `e.g. --edge ${DEFAULT_EDGE_TARGETS[0]}`, 'EDGE_TARGET_INVALID');
  }
  if (!options.mcpPath.startsWith('/')) throw new ValidationError(`--mcp-path ${options.mcpPath} must start with /`, 'e.g. --mcp-path /mcp', 'MCP_PATH_INVALID');
  const edgeTargets = options.edgeCheck === false ? false : options.edge.length ? options.edge : undefined;
  const report = await runDoctor({ dir: options.dir, edgeTargets, timeoutMs, mcpPath: options.mcpPath, offline: options.offline === true });

  if (options.json) {
    printReport('doctor', { dir: report.dir, ok: report.ok, counts: report.counts, findings: report.findings });
  } else {
    printLine(bold(`mcp-tunnel doctor: ${report.dir}`));
    for (const f of report.findings) {
      printLine(`${MARK[f.status]}  ${f.id}: ${f.message}`);
      if (f.fix && f.status !== 'ok') printLine(`      fix: ${f.fix}`);
    }
    printLine();
    const { ok, warn, fail, skip } = report.counts;
    printLine(`${fail === 0 ? 'No failures' : `${fail} failure${fail === 1 ? '' : 's'}`}: ${ok} ok, ${warn} warning${warn === 1 ? '' : 's'}, ${skip} skipped`);
  }
  if (!report.ok) process.exitCode = 1;
}

import { readFileSync } from 'node:fs';
import type { InitPlan, InitSettings } from '../deployment/init.js';
import { unifiedDiff } from '../deployment/text-diff.js';
import { connectionInfo } from '../ops/connect.js';
import { startCommandLine } from './compose-command.js';
import { bold, printLine, printReport, printStep, printWarning } from './output.js';

/** How both flows of `init` show a plan before writing it and what they wrote after. */
const STATUS_WORD = { create: 'create', replace: 'replace', repair: 'fix permissions', unchanged: 'keep' } as const;

export function printPlan(plan: InitPlan): void {
  printLine(bold(`Deployment ${plan.paths.dir}`));
  for (const c of plan.changes) printLine(`  ${STATUS_WORD[c.status].padEnd(16)} ${c.label}`);
}

export function printWritten(plan: InitPlan): void {
  const written = plan.changes.filter((c) => c.status !== 'unchanged');
  if (written.length === 0) printStep(`${plan.paths.dir} is up to date; nothing changed`);
  else for (const c of written) printStep(`${STATUS_WORD[c.status]} ${c.label}`);
}

/** The summary the one confirmation of the wizard asks about: the answers, then every file and what happens to it. */
export function printSummary(lines: Array<[string, string]>, plan?: InitPlan): void {
  printLine();
  printLine(bold('Summary'));
  const width = Math.max(...lines.map(([k]) => k.length));
  for (const [k, v] of lines) printLine(`  ${k.padEnd(width)}  ${v}`);
  if (plan) printPlan(plan);
}

export const claudeUrls = (settings: Pick<InitSettings, 'routes' | 'tunnelDomain'>): string[] => settings.routes.map((r) => `https://${r.name}.${settings.tunnelDomain}/mcp`);

/** The next steps, numbered; the same list goes into --json as `next`. */
export function nextSteps(plan: InitPlan, settings: InitSettings, opts: { registerCa?: string; extra?: string[] } = {}): string[] {
  const steps: string[] = [];
  if (opts.registerCa) steps.push(opts.registerCa);
  steps.push(`Start the stack: ${startCommandLine(plan.paths.dir)}`);
  if (plan.sampleServer) steps.push(`Prove the path: mcp-tunnel probe hello --call hello --dir ${plan.paths.dir}`);
  steps.push(`Connect Claude: mcp-tunnel connect --dir ${plan.paths.dir}   (URLs, a ready Messages API request, the Managed Agents steps)`);
  steps.push(...(opts.extra ?? []));
  return steps;
}

export function printNext(steps: string[]): void {
  printLine();
  printLine(bold('Next:'));
  steps.forEach((s, i) => printLine(`  ${i + 1}. ${s}`));
}

/** What Claude uses, printed at the end of init (the full version: mcp-tunnel connect). */
export function printClaudeUse(settings: InitSettings): void {
  const info = connectionInfo({ tunnelId: settings.tunnelId, tunnelDomain: settings.tunnelDomain, routes: settings.routes.map((r) => ({ name: r.name, host: `${r.name}.${settings.tunnelDomain}`, upstream: r.url })) });
  printLine();
  printLine(bold('How Claude reaches it (mcp-tunnel connect prints this and a TypeScript version):'));
  for (const s of info.servers) printLine(`  ${s.url}`);
  printLine(info.curl);
  for (const c of info.caveats) printLine(`  - ${c}`);
}

/** `caReused`: the programmatic flow makes (and registers) its CA before the plan, which then finds it on disk. */
export function printInitJson(plan: InitPlan, settings: InitSettings, flow: 'manual' | 'wif', dryRun: boolean, next: string[], known: { caReused?: boolean } = {}): void {
  printReport('init', {
    dir: plan.paths.dir,
    dryRun,
    flow,
    tunnelId: settings.tunnelId,
    tunnelDomain: settings.tunnelDomain,
    engine: plan.engine,
    files: plan.changes.map((c) => ({ path: c.label, status: c.status })),
    ca: { reused: known.caReused ?? plan.ca.reused, fingerprint: plan.ca.fingerprint },
    serverCertificate: { reason: plan.server.reason, notAfter: plan.server.notAfter.toISOString() },
    autoRenew: plan.autoRenew,
    sampleServer: plan.sampleServer,
    urls: claudeUrls(settings),
    next,
  });
}

/** Files whose content may be shown: they hold no secret (.env, the keys and the token do; the tunnel's ID and domain are printed anyway). */
const SHOWABLE = new Set(['compose.yaml', 'config/mcp-proxy.yaml', '.gitignore', 'data/tunnel-id', 'data/tunnel-domain']);

/** What a re-run would change in files that exist, as a diff (secrets only named), before anything is written. */
export function printReplacementDiffs(plan: InitPlan): void {
  for (const c of plan.changes.filter((x) => x.status === 'replace')) {
    if (!SHOWABLE.has(c.label)) {
      printLine(`${bold(c.label)}: would change (content not shown: it holds secrets)`);
      continue;
    }
    let before = '';
    try {
      before = readFileSync(c.path, 'utf8');
    } catch {
      // unreadable: the whole new content is the change
    }
    printLine(bold(`--- ${c.label} (now)  +++ ${c.label} (after init)`));
    for (const line of unifiedDiff(before, c.content)) printLine(line);
  }
}

/**
 * What both flows print after writing: the files, a headline about the tunnel and CA (it differs by flow), the
 * server certificate, how the containers run, what was added, the next steps and how Claude reaches the routes.
 */
export function printInitOutcome(plan: InitPlan, settings: InitSettings, headline: string, next: string[], printCa: boolean | undefined): void {
  printWritten(plan);
  printLine();
  printLine(headline);
  printLine(`Server certificate for ${settings.tunnelDomain} and *.${settings.tunnelDomain}: ${plan.server.reason}, valid until ${plan.server.notAfter.toISOString()}`);
  if (plan.adoptedCompose !== undefined) printLine(`Kept ${plan.adoptedCompose} and the files already in data/ as they are (not written by mcp-tunnel): no second CA`);
  else printLine(`Engine: ${plan.engine}; containers run as ${plan.identity.uid}:${plan.identity.gid}`);
  if (plan.autoRenew) printLine('Certificate renewal: scheduled daily by the cert-renewer service (mcp-tunnel schedule-renewal --disable removes it)');
  if (plan.sampleServer) printLine('Sample MCP server: service hello, route hello (undo: mcp-tunnel routes remove hello, then delete the hello service from compose.yaml)');
  if (plan.server.reason === 'domain-changed') printWarning('the tunnel domain changed: a new server certificate was issued');
  printNext(next);
  printClaudeUse(settings);
  if (printCa) {
    printLine();
    process.stdout.write(plan.ca.pair.certPem);
  }
}

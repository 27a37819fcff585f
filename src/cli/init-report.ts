import { readFileSync } from 'node:fs';
import type { InitPlan } from '../bundle/init.js';
import { unifiedDiff } from '../bundle/text-diff.js';
import { bold, printLine, printStep } from './output.js';

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

/** Files whose content may be shown: they hold no secret (.env and data/ do). */
const SHOWABLE = new Set(['compose.yaml', 'config/mcp-proxy.yaml', '.gitignore']);

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

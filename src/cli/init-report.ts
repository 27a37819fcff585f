import type { InitPlan } from '../bundle/init.js';
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

/**
 * Loaded by vitest before every test file (vitest.config.ts setupFiles): installs the network guard in the test
 * process and in every node child process it starts (NODE_OPTIONS), and fails the running test when a child
 * reported a blocked connection, even if the child turned the guard's error into a message of its own.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import './net-guard.mjs';

const guardFile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'net-guard.mjs');
const importFlag = `--import=${guardFile}`;
if (!(process.env.NODE_OPTIONS ?? '').includes(importFlag)) {
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} ${importFlag}`.trim();
}
const log = path.join(os.tmpdir(), `mcp-tunnel-net-guard-${process.pid}.jsonl`);
process.env.TEST_NET_GUARD_LOG = log;
fs.rmSync(log, { force: true });

afterEach(() => {
  if (!fs.existsSync(log)) return;
  const lines = fs.readFileSync(log, 'utf8').trim().split('\n').filter(Boolean);
  fs.rmSync(log, { force: true });
  if (lines.length === 0) return;
  const first = JSON.parse(lines[0]!) as { pid: number; argv: string[]; destination: string; stack: string };
  throw new Error(
    `net-guard: ${lines.length} blocked connection(s) during this test; first: ${first.destination} from pid ${first.pid} ` +
      `(${first.argv.join(' ')})\n${first.stack}`,
  );
});

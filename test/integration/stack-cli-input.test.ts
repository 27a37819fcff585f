import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

/** The stack commands refuse a deployment directory that is not there, before touching Docker. */
let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-stack-input-'));
  fs.writeFileSync(path.join(work, 'file'), '');
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('up, down, status and logs with a wrong --dir', () => {
  it.each(['up', 'down', 'status', 'logs'])('%s: one line, exit 2', async (command) => {
    const missing = path.join(work, 'nope');
    const r = await runCli([command, '--dir', missing]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(`error: deployment directory ${missing} does not exist\nhint: pass --dir to the directory mcp-tunnel init wrote (or set MCP_TUNNEL_DIR)`);
    expect(r.stdout).toBe('');
  });

  it('a file instead of a directory is named as such', async () => {
    const r = await runCli(['status', '--dir', path.join(work, 'file')]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('is not a directory');
  });
});

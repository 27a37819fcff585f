import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The compose command that exists on this host, for next-step lines: `docker compose` (the v2 plugin),
 * else `docker-compose` (v1.29, as Debian ships it), else none (then `mcp-tunnel up` is the way).
 * Looks at files only (no process is started), so printing a hint stays instant.
 */
export type ComposeCommand = 'docker compose' | 'docker-compose' | undefined;

function onPath(name: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    try {
      fs.accessSync(path.join(dir, name), fs.constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

function pluginDirs(): string[] {
  const config = process.env.DOCKER_CONFIG ?? path.join(os.homedir(), '.docker');
  return [
    path.join(config, 'cli-plugins'),
    '/usr/local/lib/docker/cli-plugins',
    '/usr/local/libexec/docker/cli-plugins',
    '/usr/lib/docker/cli-plugins',
    '/usr/libexec/docker/cli-plugins',
  ];
}

export function detectComposeCommand(): ComposeCommand {
  if (onPath('docker') && pluginDirs().some((d) => fs.existsSync(path.join(d, 'docker-compose')))) return 'docker compose';
  if (onPath('docker-compose')) return 'docker-compose';
  return undefined;
}

/** "cd DIR && docker compose up -d   (or: mcp-tunnel up --dir DIR)", or just the mcp-tunnel command. */
export function startCommandLine(dir: string): string {
  const compose = detectComposeCommand();
  const ours = `mcp-tunnel up --dir ${dir}`;
  return compose ? `cd ${dir} && ${compose} up -d   (or: ${ours})` : `${ours}   (no docker compose on this host; mcp-tunnel talks to the Docker API itself)`;
}

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The compose command that exists on this host, for every hint and next-step line: `docker compose` (the v2
 * plugin), else `docker-compose` (v1.29, as Debian ships it), else none (then mcp-tunnel's own command is the
 * way). Looks at files only (no process is started) and remembers the answer per PATH and Docker config
 * directory, so a hint costs a few stat calls once per run.
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

let cached: { key: string; value: ComposeCommand } | undefined;

export function detectComposeCommand(): ComposeCommand {
  // Keyed by what the answer depends on: a test (or a user's wrapper) that changes PATH gets a fresh look.
  const key = `${process.env.PATH ?? ''}\0${process.env.DOCKER_CONFIG ?? ''}\0${os.homedir()}`;
  if (cached?.key === key) return cached.value;
  let value: ComposeCommand;
  if (onPath('docker') && pluginDirs().some((d) => fs.existsSync(path.join(d, 'docker-compose')))) value = 'docker compose';
  else if (onPath('docker-compose')) value = 'docker-compose';
  cached = { key, value };
  return value;
}

/** `<compose> ARGS` with this host's compose command, else OURS: the mcp-tunnel command that does the same. */
export function composeOr(args: string, ours: string): string {
  const compose = detectComposeCommand();
  return compose ? `${compose} ${args}` : ours;
}

/** OURS, followed by "(or <compose> ARGS)" when this host has a compose command. */
export function oursOrCompose(ours: string, args: string): string {
  const compose = detectComposeCommand();
  return compose ? `${ours} (or ${compose} ${args})` : ours;
}

/** Restarting services by hand; without compose, a down and up of the stack restarts them too. */
export const restartCommand = (services: readonly string[]): string => composeOr(`restart ${services.join(' ')}`, 'mcp-tunnel down && mcp-tunnel up');

/** Reading a service's log; `mcp-tunnel logs` takes the same --tail and -f. */
export const logsCommand = (args: string): string => composeOr(`logs ${args}`, `mcp-tunnel logs ${args}`);

/** The hint that starts the stack: mcp-tunnel up, and the compose command when there is one. */
export const startHint = (): string => `start the stack: ${oursOrCompose('mcp-tunnel up', 'up -d')}`;

/** For a compose file mcp-tunnel up cannot run: the tool that can, by the name this host knows it. */
export const composeToolName = (): string => detectComposeCommand() ?? 'Docker Compose';

/** "cd DIR && docker compose up -d   (or: mcp-tunnel up --dir DIR)", or just the mcp-tunnel command. */
export function startCommandLine(dir: string): string {
  const compose = detectComposeCommand();
  const ours = `mcp-tunnel up --dir ${dir}`;
  return compose ? `cd ${dir} && ${compose} up -d   (or: ${ours})` : `${ours}   (no docker compose on this host; mcp-tunnel talks to the Docker API itself)`;
}

import { spawn, type ChildProcess } from 'node:child_process';

/**
 * Runs a command on a real pseudo-terminal (util-linux `script`), so prompts behave as they do for a
 * person: raw-mode key reading, hidden password input, redraws. Tests type with `write` and wait for
 * what the screen shows with `waitFor`. Every wait is bounded.
 */
export interface PtySession {
  write(keys: string): void;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  output(): string;
  exit(timeoutMs?: number): Promise<number>;
  kill(): void;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b[()][0-9A-Za-z]|\r/g;

export function spawnInPty(command: string[], env: Record<string, string | undefined>): PtySession {
  const quoted = command.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child: ChildProcess = spawn('script', ['-qfec', `stty cols 200 rows 50; exec ${quoted}`, '/dev/null'], {
    env: { ...env, TERM: 'xterm-256color' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let raw = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    raw += chunk.toString('utf8');
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : -1))));
  const text = (): string => raw.replace(ANSI, '');
  return {
    write: (keys) => void child.stdin!.write(keys),
    output: text,
    kill: () => void child.kill('SIGKILL'),
    exit: (timeoutMs = 30_000) =>
      Promise.race([exited, new Promise<number>((_, reject) => setTimeout(() => reject(new Error(`no exit within ${timeoutMs} ms; screen:\n${text()}`)), timeoutMs).unref())]),
    waitFor: (pattern, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const m = pattern.exec(text());
          if (!m) return;
          cleanup();
          resolve(m[0]);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern}; screen:\n${text()}`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      }),
  };
}

/** The environment of a person at a terminal: no CI, no colour, none of our variables from the host. */
export function promptEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1' };
  for (const key of Object.keys(env)) if (key === 'CI' || key.startsWith('MCP_TUNNEL_') || key.startsWith('ANTHROPIC_') || key === 'TUNNEL_TOKEN') delete env[key];
  return { ...env, ...extra };
}

/** Waits for a prompt, then types the keys. */
export async function answer(session: PtySession, prompt: RegExp, keys: string, timeoutMs?: number): Promise<void> {
  await session.waitFor(prompt, timeoutMs);
  session.write(keys);
}

/** Keys as a terminal sends them. */
export const KEYS = { enter: '\r', down: '\u001b[B', clearLine: '\u0015' /* Ctrl-U, as in any readline prompt */ } as const;

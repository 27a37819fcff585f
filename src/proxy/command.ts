import { ExitCode, isUserError } from '../errors.js';
import { DEFAULT_PROXY_CONFIG, runProxy } from './run.js';

/**
 * The `proxy` command without the CLI: what the proxy's own entry point (main.ts, the image's
 * dist/bundle/mcp-proxy.mjs) and `mcp-tunnel proxy` run. It loads the proxy, the config model and their few
 * dependencies, nothing of the CLI (SDKs, dockerode, prompts), so a resting proxy costs little more than
 * bare Node.
 *
 * Understood: `[proxy] [--config FILE | --config=FILE | -config FILE]` (the official image's `-config`),
 * MCP_TUNNEL_PROXY_CONFIG. Anything else (`--help`, another command) is handed to the full CLI, so the
 * image's one entry point still runs every command.
 */
export function proxyArgs(args: string[], env: NodeJS.ProcessEnv = process.env): { config: string } | undefined {
  const rest = args[0] === 'proxy' ? args.slice(1) : args;
  let config = env.MCP_TUNNEL_PROXY_CONFIG || DEFAULT_PROXY_CONFIG;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    const eq = /^--?config=(.*)$/.exec(arg);
    if (eq) config = eq[1]!;
    else if ((arg === '--config' || arg === '-config') && i + 1 < rest.length) config = rest[++i]!;
    else return undefined;
  }
  return { config };
}

/** Runs the proxy, or (for arguments that are not the proxy's) the CLI at `fullCli`. Sets the exit code. */
export async function proxyCommand(args: string[], fullCli: URL): Promise<void> {
  const parsed = proxyArgs(args);
  if (parsed) await runProxyReportingErrors(parsed.config);
  else await import(fullCli.href);
}

/** runProxy, with a failure reported as the CLI reports it (src/cli/run.ts) without loading the CLI. */
export async function runProxyReportingErrors(config: string): Promise<void> {
  try {
    await runProxy(config);
  } catch (err) {
    if (isUserError(err)) {
      process.stderr.write(`error: ${err.message}\n${err.hint ? `hint: ${err.hint}\n` : ''}`);
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`error: unexpected failure: ${err instanceof Error ? err.message : String(err)}\nhint: this is a bug in mcp-tunnel; rerun with MCP_TUNNEL_DEBUG=1 and report the output\n`);
    if (process.env.MCP_TUNNEL_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exitCode = ExitCode.failure;
  }
}

#!/usr/bin/env node
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { proxyCommand } from './command.js';

/**
 * The builtin proxy's own entry point: esbuild makes dist/bundle/mcp-proxy.cjs of it (scripts/bundle.mjs),
 * the image's ENTRYPOINT. Only the proxy is loaded; other arguments go to the CLI beside it.
 *
 * CommonJS on purpose (and so no top-level await, no import.meta here): an ES module that imports a Node
 * built-in gets every export of it evaluated, and node:http's lazy WebSocket/fetch exports then load
 * Node's internal undici: about 14 MB of resting RSS for nothing. require() keeps them lazy.
 */
const script = path.resolve(process.argv[1] ?? '.');
const fullCli = pathToFileURL(path.join(path.dirname(script), script.endsWith('.cjs') ? 'mcp-tunnel.mjs' : '../cli/main.js'));
proxyCommand(process.argv.slice(2), fullCli).catch((err: unknown) => {
  process.stderr.write(`error: unexpected failure: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});

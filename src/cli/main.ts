#!/usr/bin/env node
/**
 * `mcp-tunnel proxy ...` runs the proxy without loading the rest of the CLI (src/proxy/command.ts): a
 * resting proxy then costs little more than bare Node. Every other command (and `proxy --help`) loads the
 * program.
 */
const args = process.argv.slice(2);
const lean = args[0] === 'proxy' ? await import('../proxy/command.js') : undefined;
const proxy = lean?.proxyArgs(args);
if (lean && proxy) {
  await lean.runProxyReportingErrors(proxy.config);
} else {
  const [{ buildProgram }, { runCli }] = await Promise.all([import('./program.js'), import('./run.js')]);
  await runCli(await buildProgram(process.argv), process.argv);
}

// The builtin proxy in a process of its own, started the way the `proxy` command starts it (config file
// through parseProxyConfig, JSON logs on stdout at the config's log_level, default metrics on), but without
// loading the rest of the CLI: its RSS and CPU are the proxy's alone.
// Usage (by run.mjs, with fork()): node proxy-runner.mjs CONFIG_FILE
import { readFile } from 'node:fs/promises';
import { parseProxyConfig } from '../../dist/bundle/proxy-config.js';
import { startProxy } from '../../dist/proxy/index.js';

const configPath = process.argv[2];
const config = parseProxyConfig(await readFile(configPath, 'utf8'));
const proxy = await startProxy({ config, configPath });
process.send?.({ type: 'ready', port: proxy.address().port });

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  const timer = setTimeout(() => process.exit(1), 5_000);
  timer.unref();
  await proxy.close();
  process.exit(0);
};
process.on('disconnect', stop);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

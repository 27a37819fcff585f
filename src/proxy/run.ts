import { readFile } from 'node:fs/promises';
import { DEFAULT_PROXY_CONFIG, parseProxyConfig } from '../deployment/proxy-config.js';
import { ConfigError } from '../errors.js';
import { createJsonLogger } from './logger.js';
import { startProxy } from './server.js';

export { DEFAULT_PROXY_CONFIG };

/**
 * `mcp-tunnel proxy`: read the config, run the proxy until SIGTERM/SIGINT, drain, return. Shared by the CLI
 * command and the proxy's own entry point (main.ts), and importing nothing but the proxy and the config model.
 */
export async function runProxy(configPath: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the proxy config ${configPath} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 'pass the config file with --config FILE', 'PROXY_CONFIG_UNREADABLE');
  }
  const config = parseProxyConfig(text);
  // The JSON log IS the proxy's output: the one place outside the CLI's output module that writes to stdout.
  process.stdout.on('error', () => undefined);
  const logger = createJsonLogger({ level: config.logLevel, write: (chunk) => void process.stdout.write(chunk) });
  // Batched lines are not lost when the process ends without close() (a crash, process.exit elsewhere): a
  // write to a pipe or file is synchronous here, so it completes inside the 'exit' handler.
  process.once('exit', () => logger.flush());
  const proxy = await startProxy({ config, configPath, logger });

  await new Promise<void>((resolve) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signalled) {
        // A second signal: stop waiting for the drain.
        logger.warn('second signal, exiting without waiting for the drain', { signal });
        logger.flush();
        process.exit(130);
      }
      signalled = true;
      logger.info('signal received', { signal });
      void proxy.close().then(resolve);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  logger.flush();
  // Everything is closed; a stray handle in a dependency must not keep a stopped container running.
  setTimeout(() => process.exit(process.exitCode ?? 0), 2_000).unref();
}

import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { parseProxyConfig } from '../../bundle/proxy-config.js';
import { ConfigError } from '../../errors.js';

/** Where the official mcp-proxy image reads its config (SPEC.md 1); the same default keeps us a drop-in. */
export const DEFAULT_PROXY_CONFIG = '/etc/mcp-gateway/config.yaml';

interface ProxyOptions {
  config: string;
}

export function registerProxy(program: Command): void {
  program
    .command('proxy')
    .description('Run the builtin proxy (WebSocket + inner TLS -> MCP upstreams) with the official proxy config file')
    .addOption(new Option('--config <file>', 'proxy config file (also accepted as -config FILE)').env('MCP_TUNNEL_PROXY_CONFIG').default(DEFAULT_PROXY_CONFIG))
    .addHelpText(
      'after',
      '\nLogs are JSON lines on stdout. Health and metrics: GET /livez, /readyz, /metrics on admin.listen_addr (default 127.0.0.1:9090).\nSIGTERM or SIGINT drains in-flight requests (up to shutdown_timeout) and exits 0.',
    )
    .action(async (options: ProxyOptions) => runProxy(options));
}

async function runProxy(options: ProxyOptions): Promise<void> {
  let text: string;
  try {
    text = await readFile(options.config, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the proxy config ${options.config} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 'pass the config file with --config FILE');
  }
  const config = parseProxyConfig(text);
  // Loaded on use: the other commands (and `health`, the container's HEALTHCHECK) do not pay for the proxy.
  const [{ createJsonLogger }, { startProxy }] = await Promise.all([import('../../proxy/logger.js'), import('../../proxy/server.js')]);
  // The JSON log IS the proxy's output: the one place outside output.ts that writes to stdout.
  process.stdout.on('error', () => undefined);
  const logger = createJsonLogger({ level: config.logLevel, write: (chunk) => void process.stdout.write(chunk) });
  const proxy = await startProxy({ config, configPath: options.config, logger });

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

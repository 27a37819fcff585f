import { Command, Option } from 'commander';
import { DEFAULT_PROXY_CONFIG } from '../../deployment/proxy-config.js';

export { DEFAULT_PROXY_CONFIG };

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
  // Loaded on use: the other commands (and `health`, the container's HEALTHCHECK) do not pay for the proxy.
  const { runProxy: run } = await import('../../proxy/run.js');
  await run(options.config);
}

import { Command, Option } from 'commander';
import type { InitOptions } from '../init-inputs.js';
import { addWifOptions } from './init-wif-options.js';

/** Repeatable flags also read from one env var holding a comma-separated list. */
const collect = (value: string, previous: string[]): string[] => [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];

export function registerInit(program: Command): void {
  const init = program
    .command('init')
    .description('Create or update a deployment directory: compose.yaml, .env, config/, data/ (CA and server certificate)')
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .addOption(new Option('--flow <flow>', 'credential flow: wif (programmatic, recommended) or manual (default without a terminal: manual)').choices(['manual', 'wif']).env('MCP_TUNNEL_FLOW').default('manual'))
    .addOption(new Option('--tunnel-id <id>', 'tunnel ID from the Console (tnl_...)').env('MCP_TUNNEL_TUNNEL_ID'))
    .addOption(new Option('--tunnel-domain <domain>', 'tunnel domain from the Console (<8 chars>.tunnel.anthropic.com)').env('MCP_TUNNEL_TUNNEL_DOMAIN'))
    .addOption(new Option('--tunnel-token-file <file>', 'read the tunnel token from FILE (or set TUNNEL_TOKEN)').env('MCP_TUNNEL_TOKEN_FILE'))
    .option('--tunnel-token-stdin', 'read the tunnel token from standard input')
    .addOption(new Option('--route <name=url>', 'route NAME.<domain> to URL (http(s)://host:port); repeatable').env('MCP_TUNNEL_ROUTES').argParser(collect).default([]))
    .addOption(new Option('--proxy <engine>', 'proxy engine (default: official, or what the directory uses)').choices(['official', 'builtin']).env('MCP_TUNNEL_PROXY'))
    .addOption(new Option('--allowed-ip <cidr>', 'IPv4 range upstreams may use; repeatable; replaces the default private ranges').env('MCP_TUNNEL_ALLOWED_IPS').argParser(collect).default([]))
    .addOption(new Option('--upstream-ca-file <file>', 'CA bundle (PEM) that signs https upstreams; copied to data/upstream-ca.crt').env('MCP_TUNNEL_UPSTREAM_CA_FILE'))
    .addOption(new Option('--upstream-system-cas', 'also trust the system CAs for https upstreams').env('MCP_TUNNEL_UPSTREAM_SYSTEM_CAS'))
    .addOption(new Option('--base-image <image>', 'builtin engine: base image for the local build (node >= 22)').env('MCP_TUNNEL_BASE_IMAGE'))
    .addOption(new Option('--non-interactive', 'never prompt; fail naming every missing flag (implied without a TTY, under CI, with --yes or --json)').env('MCP_TUNNEL_NON_INTERACTIVE'))
    .option('--force', 'replace existing files that differ without asking (the CA is always kept)')
    .option('-y, --yes', 'never prompt: take flags, environment and the existing deployment as they are')
    .option('--print-ca', 'print the CA certificate PEM to register in the Console')
    .addOption(new Option('--ca-key <type>', 'key type of a NEW CA: ecdsa (P-256, default) or rsa (3072); an existing CA is kept').choices(['ecdsa', 'rsa']).env('MCP_TUNNEL_CA_KEY'))
    .addOption(new Option('--auto-renew', 'add the cert-renewer service: renews the server certificate daily (see schedule-renewal)').env('MCP_TUNNEL_AUTO_RENEW'))
    .addOption(new Option('--sample-server', 'add the sample "hello" MCP server (service and route hello) to prove the path: up, then probe hello --call hello').env('MCP_TUNNEL_SAMPLE_SERVER'))
    .addOption(new Option('--dry-run', 'print the plan (files, certificates, API calls) and write nothing').env('MCP_TUNNEL_DRY_RUN'))
    .addOption(new Option('--json', 'print the result as JSON (docs/json.md: init); implies --non-interactive').env('MCP_TUNNEL_JSON'))
    .addHelpText('after', '\nThe token never travels on the command line: use --tunnel-token-file, --tunnel-token-stdin or TUNNEL_TOKEN.')
    .action(async (options: InitOptions, command: Command) => {
      options.flowOpen = command.getOptionValueSource('flow') === 'default';
      const { runInit } = await import('./init-run.js');
      return runInit(options);
    });
  addWifOptions(init);
}

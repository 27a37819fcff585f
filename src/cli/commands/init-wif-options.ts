import fs from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { DEFAULT_API_URL } from '../../anthropic/ids.js';
import { readWifSettings } from '../../anthropic/settings.js';
import { deploymentPaths } from '../../deployment/layout.js';

/** The programmatic flow's flags on `init` (each with its env twin), and the flow remembered by a deployment. */
export function addWifOptions(init: Command): void {
  init
    .addOption(new Option('--federation-rule-id <id>', 'wif: federation rule (fdrl_...)').env('ANTHROPIC_FEDERATION_RULE_ID'))
    .addOption(new Option('--organization-id <uuid>', 'wif: organization ID (a UUID)').env('ANTHROPIC_ORGANIZATION_ID'))
    .addOption(new Option('--workspace-id <id>', 'wif: workspace (wrkspc_...), when the rule covers several').env('ANTHROPIC_WORKSPACE_ID'))
    .addOption(new Option('--identity-token-file <file>', 'wif: file holding the OIDC JWT, re-read on every exchange (or ANTHROPIC_IDENTITY_TOKEN)').env('ANTHROPIC_IDENTITY_TOKEN_FILE'))
    .addOption(new Option('--identity-token-command <cmd>', 'wif: program printing the OIDC JWT, run without a shell on every exchange').env('MCP_TUNNEL_IDENTITY_TOKEN_COMMAND'))
    .addOption(new Option('--display-name <name>', 'wif: name of a newly created tunnel').env('MCP_TUNNEL_DISPLAY_NAME'))
    .addOption(new Option('--api-url <url>', `wif: Anthropic API base URL (default: ANTHROPIC_BASE_URL, else ${DEFAULT_API_URL})`).env('MCP_TUNNEL_API_URL'))
    .addHelpText(
      'after',
      '\nProgrammatic flow (--flow wif): the tunnel (created, or attached with --tunnel-id), its CA registration and token come from the Tunnels API.\n' +
        'The settings are kept in .env, so re-running `mcp-tunnel init` (and `mcp-tunnel rotate-token`) needs no flags.',
    );
  // A deployment made with --flow wif stays wif: without an explicit --flow, the one in .env wins.
  init.hook('preAction', async (command) => {
    if (command.getOptionValueSource('flow') !== 'default') return;
    const dir = (command.opts() as { dir?: string }).dir ?? '.';
    const envText = await fs.readFile(deploymentPaths(dir).env, 'utf8').catch(() => undefined);
    if (readWifSettings(envText).flow === 'wif') command.setOptionValueWithSource('flow', 'wif', 'config');
  });
}


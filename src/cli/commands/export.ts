import path from 'node:path';
import { Command, Option } from 'commander';
import { buildHelmExport, HELM_CHART, HELM_CHART_VERSION, installCommands, writeHelmExport } from '../../ops/helm-export.js';
import { bold, printLine, printStep, printWarning } from '../output.js';

interface ExportHelmOptions {
  dir: string;
  out?: string;
}

export function registerExport(program: Command): void {
  const exp = program.command('export').description('Export the deployment for another platform');
  exp
    .command('helm')
    .description(`Write values.yaml for Anthropic's Helm chart (${HELM_CHART_VERSION}) and, in the manual flow, the two Secret manifests`)
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .addOption(new Option('--out <dir>', 'where to write the files (default: DIR/helm)').env('MCP_TUNNEL_EXPORT_DIR'))
    .addHelpText(
      'after',
      `\nWrites values.yaml (no secrets: routes, tunnel.id, allowed_ips, networkPolicy, serverCert, api.wif.* in the\nwif flow) and, in the manual flow, mcp-tunnel-token.secret.yaml and mcp-tunnel-cert.secret.yaml (mode 0600),\nthen prints the install commands for ${HELM_CHART}.`,
    )
    .action(async (options: ExportHelmOptions) => {
      const out = options.out ?? path.join(options.dir, 'helm');
      const result = await buildHelmExport(options.dir);
      const written = await writeHelmExport(result, out);
      for (const file of written) printStep(`wrote ${file}${file.endsWith('.secret.yaml') ? ' (0600: holds credentials)' : ''}`);
      for (const w of result.warnings) printWarning(w);
      printLine();
      printLine(bold('Install:'));
      for (const cmd of installCommands(result, out)) printLine(`  ${cmd}`);
    });
}

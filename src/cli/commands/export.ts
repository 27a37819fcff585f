import path from 'node:path';
import { Command, Option } from 'commander';
import { formatMode } from '../../deployment/file-mode.js';
import { buildHelmExport, HELM_CHART, HELM_CHART_VERSION, HELM_NAMESPACE, installCommands, writeHelmExport, type HelmExport, type HelmWarning, type WrittenFile } from '../../ops/helm-export.js';
import { bold, printLine, printReport, printStep, printWarning } from '../output.js';

interface ExportHelmOptions {
  dir: string;
  out?: string;
  json?: boolean;
}

export function registerExport(program: Command): void {
  const exp = program.command('export').description('Export the deployment for another platform');
  exp
    .command('helm')
    .description(`Write values.yaml for Anthropic's Helm chart (${HELM_CHART_VERSION}) and, in the manual flow, the two Secret manifests`)
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .addOption(new Option('--out <dir>', 'where to write the files (default: DIR/helm)').env('MCP_TUNNEL_EXPORT_DIR'))
    .addOption(new Option('--json', 'print the files written, the chart values set and the warnings (with stable codes) as JSON; never a secret (docs/json.md: export-helm)').env('MCP_TUNNEL_JSON'))
    .addHelpText(
      'after',
      `\nWrites values.yaml (no secrets: routes, tunnel.id, allowed_ips, networkPolicy, serverCert, api.wif.* in the\nwif flow) and, in the manual flow, mcp-tunnel-token.secret.yaml and mcp-tunnel-cert.secret.yaml (mode 0600),\nthen prints the install commands for ${HELM_CHART}.`,
    )
    .action(async (options: ExportHelmOptions) => {
      const out = options.out ?? path.join(options.dir, 'helm');
      const result = await buildHelmExport(options.dir);
      const written = await writeHelmExport(result, out);
      if (options.json) {
        report(result, written, options, out);
        return;
      }
      for (const { file, path: p } of written) if (file) printStep(`wrote ${p}${file.secret ? ' (0600: holds credentials)' : ''}`);
      for (const w of result.warnings) printWarning(w.message);
      printLine();
      printLine(bold('Install:'));
      for (const cmd of installCommands(result, out)) printLine(`  ${cmd}`);
    });
}

/** What was written and what is left to do, by name and key only: the Secrets' values never reach stdout. */
function report(result: HelmExport, written: WrittenFile[], options: ExportHelmOptions, out: string): void {
  printReport('export-helm', {
    dir: path.resolve(options.dir),
    out: path.resolve(out),
    flow: result.flow,
    tunnelId: result.tunnelId,
    chart: { ref: HELM_CHART, version: HELM_CHART_VERSION, namespace: HELM_NAMESPACE },
    files: written.map((w) => ({
      path: w.path,
      kind: !w.file ? 'gitignore' : w.file.secret ? 'secret' : 'values',
      mode: formatMode(w.mode),
      secret: w.file?.secret ? { name: w.file.secret.name, keys: w.file.secret.keys } : null,
    })),
    valueKeys: result.valueKeys,
    warnings: result.warnings.map(warningView),
    install: installCommands(result, out),
  });
}

const warningView = (w: HelmWarning): Record<string, unknown> => ({
  code: w.code,
  message: w.message,
  route: w.route ?? null,
  ...(w.upstreams ? { upstreams: w.upstreams.map((u) => ({ route: u.name, cidr: u.cidr ?? null, host: u.host ?? null, port: u.port })) } : {}),
});

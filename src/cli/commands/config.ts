import { Command, Option } from 'commander';
import { getSettings, planSet, planUnset, readProxySettings, writeSettingEdit, type SettingEdit, type SettingView } from '../../ops/proxy-settings.js';
import { applyProxyConfig, type ApplyOutcome } from '../apply-proxy-config.js';
import { printLine, printReport, printStep, printWarning } from '../output.js';

interface ConfigCliOptions {
  dir: string;
  restart: boolean;
  json?: boolean;
}

const dirOption = (): Option => new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.');
const jsonOption = (report: string): Option => new Option('--json', `print the result as JSON (docs/json.md: ${report})`).env('MCP_TUNNEL_JSON');
const restartOption = (): Option => new Option('--no-restart', 'only edit the file; restart the proxy yourself later (or mcp-tunnel up)').env('MCP_TUNNEL_NO_RESTART');

const HELP = `
Settings (config/mcp-proxy.yaml): listen_addr, log_level, shutdown_timeout, tunnel_domain, tls.cert_file,
tls.key_file, upstream.allowed_ips (comma-separated), upstream.disable_ip_validation, upstream.tls.ca_file,
upstream.tls.include_system_cas; builtin engine only: admin.listen_addr, limits.max_connections,
limits.max_header_bytes, limits.handshake_timeout, limits.idle_timeout. Routes: mcp-tunnel routes.

A change is checked by the proxy's own config parser before anything is written (exit 2, nothing written,
when the proxy would refuse it), keeps the file's comments and layout, and is applied at once: the proxy
and cloudflared are restarted when they run, then the first route is probed through the proxy.`;

export function registerConfig(program: Command): void {
  const config = program.command('config').description('Get, set or unset a proxy setting in config/mcp-proxy.yaml, then restart the proxy').addHelpText('after', HELP);

  config
    .command('get')
    .description('Show every setting (or KEY): the value in the file, or the default the proxy uses')
    .argument('[key]', 'a setting, e.g. log_level or upstream.tls.ca_file')
    .addOption(dirOption())
    .addOption(jsonOption('config'))
    .action(async (key: string | undefined, options: ConfigCliOptions) => {
      const file = await readProxySettings(options.dir);
      const views = getSettings(file, key).filter((v) => key !== undefined || v.engine === 'both' || file.engine !== 'official');
      if (options.json) {
        // One shape with and without KEY: a list (of one, with KEY).
        printReport('config', { settings: views });
        return;
      }
      if (key !== undefined) {
        printLine(views[0]!.effective);
        return;
      }
      const width = Math.max(...views.map((v) => v.key.length));
      for (const v of views) printLine(`${v.key.padEnd(width)}  ${show(v)}`);
    });

  config
    .command('set')
    .description('Set KEY to VALUE (validated as the proxy would), then restart the proxy')
    .argument('<key>', 'a setting, e.g. log_level')
    .argument('<value>', 'its new value (lists: comma-separated)')
    .addOption(dirOption())
    .addOption(restartOption())
    .addOption(jsonOption('config-change'))
    .action(async (key: string, value: string, options: ConfigCliOptions) => {
      const file = await readProxySettings(options.dir);
      await finish(options, 'set', await write(file, planSet(file, key, value)));
    });

  config
    .command('unset')
    .description("Remove KEY from the file (the proxy's default applies), then restart the proxy")
    .argument('<key>', 'a setting, e.g. shutdown_timeout')
    .addOption(dirOption())
    .addOption(restartOption())
    .addOption(jsonOption('config-change'))
    .action(async (key: string, options: ConfigCliOptions) => {
      const file = await readProxySettings(options.dir);
      await finish(options, 'unset', await write(file, planUnset(file, key)));
    });
}

function show(v: SettingView): string {
  const value = v.effective === '' ? '(not set)' : v.effective;
  return `${value}${v.source === 'default' && v.effective !== '' ? '  (default)' : ''}${v.engine === 'builtin' ? '  [builtin engine]' : ''}`;
}

async function write(file: Awaited<ReturnType<typeof readProxySettings>>, edit: SettingEdit): Promise<SettingEdit> {
  await writeSettingEdit(file, edit);
  return edit;
}

async function finish(options: ConfigCliOptions, action: 'set' | 'unset', edit: SettingEdit): Promise<void> {
  const after = edit.config;
  const now = (await readProxySettings(options.dir).then((f) => getSettings(f, edit.key)[0]!)) as SettingView;
  const report = (apply: ApplyOutcome | null): void =>
    printReport('config-change', { action, key: edit.key, changed: edit.changed, before: edit.before.effective, after: now.effective, source: now.source, warnings: edit.warnings, apply });
  if (!edit.changed) {
    if (options.json) report(null);
    else printLine(`${edit.key} is already ${now.effective || '(not set)'}: nothing changed.`);
    return;
  }
  if (!options.json) {
    printStep(`${edit.key}: ${edit.before.effective || '(not set)'} -> ${now.effective || '(not set)'}${now.source === 'default' ? ' (default)' : ''} in config/mcp-proxy.yaml${edit.preserved ? '' : ' (layout normalised by the YAML library)'}`);
  }
  // Warnings reach a person on stderr, --json or not (the report carries them too).
  for (const w of edit.warnings) printWarning(w);
  const firstRoute = [...after.routes.keys()][0];
  const outcome = await applyProxyConfig({ dir: options.dir, restart: options.restart, config: after, probeRoute: firstRoute, appliesWhen: 'the new value applies' }, options.json === true);
  if (options.json) report(outcome);
}

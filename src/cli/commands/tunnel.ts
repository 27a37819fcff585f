import { Command, Option } from 'commander';
import { readWifSettings } from '../../anthropic/index.js';
import { readTextIfExists } from '../../deployment/atomic-file.js';
import { deploymentPaths } from '../../deployment/layout.js';
import { showTunnel, type TunnelReport } from '../../ops/tunnel-show.js';
import { bold, printLine, printReport } from '../output.js';
import { addWifClientOptions, tunnelsApiFromDeployment, type WifClientFlags } from '../wif-client.js';

interface TunnelShowOptions extends WifClientFlags {
  dir: string;
  json?: boolean;
  offline?: boolean;
}

export function registerTunnel(program: Command): void {
  const tunnel = program.command('tunnel').description("The deployment's tunnel");
  addWifClientOptions(tunnel.command('show'))
    .description("Tunnel id and domain, token, local CA and server certificate; programmatic flow: the tunnel's certificates from the API, with ours marked")
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .addOption(new Option('--json', 'print the result as JSON (docs/json.md: tunnel)').env('MCP_TUNNEL_JSON'))
    .addOption(new Option('--offline', 'wif: do not ask the Tunnels API (show what data/ holds)').env('MCP_TUNNEL_OFFLINE'))
    .action(async (options: TunnelShowOptions) => {
      const envText = await readTextIfExists(deploymentPaths(options.dir).env).catch(() => undefined);
      const api = readWifSettings(envText).flow === 'wif' && !options.offline ? await tunnelsApiFromDeployment(options, envText, options.dir) : undefined;
      const report = await showTunnel({ dir: options.dir, api });
      if (options.json) printReport('tunnel', report);
      else print(report);
    });
}

function print(r: TunnelReport): void {
  printLine(`${bold('Tunnel')}      ${r.tunnel.id ?? '(no data/tunnel-id)'}  ${r.tunnel.domain ?? '(no data/tunnel-domain)'}  (${r.flow} flow)${r.tunnel.archivedAt ? `  ARCHIVED ${r.tunnel.archivedAt}` : ''}`);
  printLine(`${bold('Token')}       ${r.token.present ? `present in ${r.token.source}, written ${r.token.ageDays} day(s) ago` : 'missing'}`);
  printLine(`${bold('Local CA')}    ${r.localCa ? `${r.localCa.key}, fingerprint ${r.localCa.fingerprint}, valid until ${r.localCa.notAfter}` : 'missing or unreadable (data/ca.crt)'}`);
  const s = r.serverCertificate;
  printLine(
    `${bold('Server cert')} ${s ? `${s.key}, valid until ${s.notAfter}${s.renewalDue ? ' (renewal due: mcp-tunnel renew-cert)' : ''}${s.signedByLocalCa ? '' : '; NOT signed by data/ca.crt'}` : 'missing or unreadable (data/tls.crt)'}`,
  );
  if (r.rotation) printLine(`${bold('Rotation')}    in progress (step: ${r.rotation.step}); finish it with mcp-tunnel ca rotate`);
  if (r.certificates === null) {
    if (r.flow === 'manual') printLine("The tunnel's CA certificates are listed in the Console (the manual flow has no API access).");
    return;
  }
  printLine(bold(`Tunnel certificates (${r.certificates.filter((c) => !c.archivedAt).length} of 2 slots used):`));
  for (const c of r.certificates) {
    printLine(`  ${c.id}  ${c.fingerprint}  ${c.archivedAt ? `archived ${c.archivedAt.slice(0, 10)}` : 'active'}  expires ${c.expiresAt?.slice(0, 10) ?? '-'}${c.local ? `  <- data/${c.local}` : ''}`);
  }
}

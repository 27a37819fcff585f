import fs from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { deploymentPaths } from '../deployment/layout.js';
import { parseProxyConfig } from '../deployment/proxy-config.js';
import { createCa, issueServerCert } from '../pki/index.js';
import { createJsonLogger } from '../proxy/logger.js';
import { startProxy, type RunningProxy } from '../proxy/server.js';
import { startSampleMcpServer, type SampleMcpServer } from './sample-server.js';
import { DEMO_DOMAIN, DEMO_ROUTE, DemoRun } from './steps.js';
import type { DemoResult, RunDemoOptions } from './types.js';

export { DEMO_DOMAIN, DEMO_ROUTE };
export type { DemoHandle, DemoResult, DemoStep, RunDemoOptions } from './types.js';

/**
 * `mcp-tunnel demo`: the whole data path on loopback with nothing but this package. A throwaway CA and a
 * server certificate for demo.tunnel.localhost in a temp directory (the deployment layout init writes), the
 * sample MCP server, the builtin proxy with the upstream guard ON (allowed_ips 127.0.0.1/32), then the
 * probe through them and a `hello` call. Everything is torn down in `finally`, whatever happened.
 */
export async function runDemo(opts: RunDemoOptions = {}): Promise<DemoResult> {
  const run = new DemoRun(opts);
  const result = run.result;
  let dir: string | undefined;
  let upstream: SampleMcpServer | undefined;
  let proxy: RunningProxy | undefined;
  // Last resort: a crash or process.exit() between here and `finally` must not leave the temp dir behind.
  const onExit = (): void => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  try {
    dir = await mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-demo-'));
    const paths = deploymentPaths(dir);
    const workDir = dir;

    await run.step(
      'certificates',
      async () => {
        const ca = await createCa({ commonName: 'mcp-tunnel demo CA (throwaway)', validityDays: 1 });
        const server = await issueServerCert({ ca, domain: DEMO_DOMAIN, validityMs: 86_400_000 });
        await mkdir(paths.dataDir, { recursive: true, mode: 0o700 });
        await mkdir(paths.configDir, { recursive: true });
        await writeFile(paths.caCert, ca.certPem);
        await writeFile(paths.caKey, ca.keyPem, { mode: 0o600 });
        await writeFile(paths.tlsCert, server.certPem);
        await writeFile(paths.tlsKey, server.keyPem, { mode: 0o600 });
        await writeFile(paths.tunnelDomain, `${DEMO_DOMAIN}\n`);
        return ca;
      },
      () => `throwaway CA and a server certificate for ${DEMO_DOMAIN} and *.${DEMO_DOMAIN} in ${workDir}`,
    );

    upstream = await run.step(
      'upstream',
      () => startSampleMcpServer({ host: '127.0.0.1', port: 0 }),
      (u) => `sample MCP server (tools: hello, echo) at ${u.url}`,
    );

    const configText = [
      '# mcp-tunnel demo: a throwaway deployment on loopback',
      'listen_addr: "127.0.0.1:0"',
      'log_level: info',
      'shutdown_timeout: 2s',
      `tunnel_domain: ${DEMO_DOMAIN}`,
      'tls:',
      `  cert_file: ${JSON.stringify(paths.tlsCert)}`,
      `  key_file: ${JSON.stringify(paths.tlsKey)}`,
      'routes:',
      `  ${DEMO_ROUTE}: ${JSON.stringify(upstream.origin)}`,
      'upstream:',
      '  allowed_ips: ["127.0.0.1/32"]',
      'admin:',
      '  listen_addr: "127.0.0.1:0"',
      '',
    ].join('\n');
    await writeFile(paths.proxyConfig, configText);

    const logLines = result.proxyLog;
    proxy = await run.step(
      'proxy',
      () =>
        startProxy({
          config: parseProxyConfig(configText),
          configPath: paths.proxyConfig,
          logger: createJsonLogger({ level: 'info', batch: false, write: (chunk) => logLines.push(...chunk.split('\n').filter(Boolean)) }),
          defaultMetrics: false,
        }),
      (p) => {
        const admin = p.adminAddress();
        return `builtin proxy on ws://127.0.0.1:${p.address().port}/ (route ${DEMO_ROUTE} -> ${upstream!.origin}, allowed_ips 127.0.0.1/32${admin ? `, admin http://127.0.0.1:${admin.port}/readyz` : ''})`;
      },
    );

    const proxyUrl = `ws://127.0.0.1:${proxy.address().port}/`;
    if (!(await run.probe(proxyUrl, paths.caCert))) return result;

    if (opts.whileRunning) {
      const admin = proxy.adminAddress();
      await opts.whileRunning({
        dir,
        proxyUrl,
        adminUrl: admin ? `http://127.0.0.1:${admin.port}` : undefined,
        upstreamUrl: upstream.url,
        domain: DEMO_DOMAIN,
        route: DEMO_ROUTE,
      });
    }
    return result;
  } catch (err) {
    return run.settle(err);
  } finally {
    run.startCleanup();
    const problems: string[] = [];
    await proxy?.close().catch((e: unknown) => problems.push(`proxy: ${(e as Error).message}`));
    await upstream?.close().catch((e: unknown) => problems.push(`upstream: ${(e as Error).message}`));
    if (dir) {
      await rm(dir, { recursive: true, force: true }).catch((e: unknown) => problems.push(`temp dir: ${(e as Error).message}`));
      if (!fs.existsSync(dir)) dir = undefined;
    }
    process.removeListener('exit', onExit);
    run.finishCleanup(problems, dir, 'proxy and sample server stopped, temp directory removed', 'remove the directory by hand; a listener still open ends with this process');
  }
}

/**
 * `init --sample-server` on a real daemon: `up` starts the hello service beside the proxy, and
 * `probe hello --call hello` proves WebSocket -> inner TLS -> proxy -> MCP server through the stack
 * (cloudflared replaced by the local stand-in, as in the other Docker tests: no traffic leaves the host).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerCleanup, projectContainers, requireDocker } from '../helpers/docker.js';
import { TEST_DOMAIN, buildStandin, createDeployment, standinPort, type TestDeployment } from '../helpers/stack.js';

const dockerReady = await requireDocker();

describe.skipIf(!dockerReady)('init --sample-server, then up and probe hello', () => {
  const cleanup = dockerCleanup();
  let d: TestDeployment;

  beforeAll(async () => {
    const standin = await buildStandin();
    cleanup.image(standin);
    d = await createDeployment({
      cleanup,
      standinImage: standin,
      routes: [],
      prefix: 'mcpsample',
      initArgs: ['--sample-server'],
      // The sample service builds from the same context: give it the test-owned tag so cleanup removes it.
      extraOverride: (proxyImage) => ['  hello:', `    image: ${proxyImage}`, '    labels:', '      mcp-tunnel-test: "1"'],
    });
  }, 300_000);

  afterAll(async () => {
    const problems = await cleanup.run();
    if (problems.length) console.warn(`cleanup problems:\n${problems.join('\n')}`);
  }, 180_000);

  it('up starts hello, probe hello --call hello answers through the proxy', async () => {
    const up = await d.cli(['up', '--dir', d.dir, '--timeout', '180s'], { timeoutMs: 300_000 });
    expect(up.exitCode, `${up.stderr}\n${up.stdout}`).toBe(0);
    expect(await projectContainers(d.project)).toContain(`${d.project}-hello-1`);
    const port = await standinPort(d.project);
    // `up` waits for the proxy; the sample server may still be starting: retry while the upstream is not there yet (bounded).
    const probe = (): ReturnType<TestDeployment['cli']> => d.cli(['probe', 'hello', '--dir', d.dir, '--proxy', `ws://127.0.0.1:${port}`, '--call', 'hello', '--json'], { timeoutMs: 60_000 });
    let r = await probe();
    for (let i = 0; i < 20 && r.exitCode !== 0 && r.stdout.includes('Upstream unavailable'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      r = await probe();
    }
    if (r.exitCode !== 0) console.log((await d.cli(['logs', '--dir', d.dir])).stdout);
    expect(r.exitCode, `${r.stderr}\n${r.stdout}`).toBe(0);
    const result = JSON.parse(r.stdout) as { ok: boolean; host: string; toolCall?: { name: string; isError: boolean; text: string } };
    expect(result).toMatchObject({ ok: true, host: `hello.${TEST_DOMAIN}` });
    expect(result.toolCall).toMatchObject({ name: 'hello', isError: false, text: 'Hello, world! (from an MCP server behind the tunnel)' });
  }, 420_000);

  it('routes remove hello + deleting the service undoes it', async () => {
    // The proxy needs one route: the real server's comes first (only written here, never contacted).
    expect((await d.cli(['routes', 'add', 'docs', 'http://docs-mcp:8080', '--dir', d.dir, '--no-restart'])).exitCode).toBe(0);
    const removed = await d.cli(['routes', 'remove', 'hello', '--dir', d.dir, '--no-restart']);
    expect(removed.exitCode, removed.stderr).toBe(0);
    const composeFile = path.join(d.dir, 'compose.yaml');
    const text = await fs.readFile(composeFile, 'utf8');
    const start = text.indexOf('\n  hello:\n');
    expect(start).toBeGreaterThan(0);
    await fs.writeFile(composeFile, text.slice(0, start + 1));
    // compose.yaml alone: the test override names the hello service too (for its test-owned image tag).
    const config = await d.compose(['-f', 'compose.yaml', 'config', '--services']);
    expect(String(config.stdout).split('\n')).not.toContain('hello');
  });
});

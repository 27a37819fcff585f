/**
 * The TEST-ONLY cloudflared stand-in behaves like cloudflared where the tests rely on it: same argv, a clear
 * failure on a missing or malformed TUNNEL_TOKEN, "Registered tunnel connection" x4 once the --url target
 * answers, and a forwarded port to that target.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOUDFLARED_COMMAND } from '../../src/deployment/compose-file.js';
import { FAKE_TUNNEL_TOKEN, buildCloudflaredStandin, docker, dockerCleanup, ensureNodeBaseImage, mustDocker, requireDocker, uniqueName } from '../helpers/docker.js';

const dockerReady = await requireDocker();
const HARDENED = ['--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges:true'];

describe.skipIf(!dockerReady)('cloudflared stand-in image', () => {
  const cleanup = dockerCleanup();
  let standin = '';
  let base = '';

  beforeAll(async () => {
    [base, standin] = await Promise.all([ensureNodeBaseImage(), buildCloudflaredStandin()]);
  }, 300_000);

  afterAll(async () => {
    expect(await cleanup.run()).toEqual([]);
  });

  it('refuses to start without TUNNEL_TOKEN, saying so', async () => {
    const r = await docker(['run', '--rm', ...HARDENED, standin, ...CLOUDFLARED_COMMAND.split(' ')]);
    expect(r.exitCode).toBe(1);
    expect(String(r.stderr)).toMatch(/ERR .*TUNNEL_TOKEN is missing or empty/);
  });

  it('refuses a token that is not token-shaped, saying so', async () => {
    const r = await docker(['run', '--rm', ...HARDENED, '-e', 'TUNNEL_TOKEN=not-a-token', standin, ...CLOUDFLARED_COMMAND.split(' ')]);
    expect(r.exitCode).toBe(1);
    expect(String(r.stderr)).toContain('Provided Tunnel token is not valid');
  });

  it('refuses a run without --url, as cloudflared has no ingress then', async () => {
    const r = await docker(['run', '--rm', ...HARDENED, '-e', `TUNNEL_TOKEN=${FAKE_TUNNEL_TOKEN}`, standin, 'tunnel', '--no-autoupdate', 'run']);
    expect(r.exitCode).toBe(1);
    expect(String(r.stderr)).toContain('No ingress rules');
  });

  it('registers four connections once localhost:8080 answers in its namespace, and forwards its port there', async () => {
    // An "origin" on :8080 in a container of its own; the stand-in joins its network namespace, as in compose.
    const origin = uniqueName('mcp-tunnel-test-origin-');
    const cf = uniqueName('mcp-tunnel-test-standin-');
    cleanup.container(origin);
    cleanup.container(cf);
    const originScript =
      "require('http').createServer((q,s)=>{s.end('origin says hi '+q.url)}).listen(8080);" +
      "require('http').createServer((q,s)=>{require('http').get('http://127.0.0.1:8081'+q.url,(r)=>r.pipe(s))}).listen(8090)";
    await mustDocker(['run', '-d', '--name', origin, '--label', 'mcp-tunnel-test=1', ...HARDENED, '--user', '65532:65532', '-p', '127.0.0.1::8090', base, 'node', '-e', originScript]);
    await mustDocker([
      'run', '-d', '--name', cf, '--label', 'mcp-tunnel-test=1', ...HARDENED, '--network', `container:${origin}`,
      '-e', `TUNNEL_TOKEN=${FAKE_TUNNEL_TOKEN}`, standin, ...CLOUDFLARED_COMMAND.split(' '),
    ]);
    let logs = '';
    for (let i = 0; i < 40 && (logs.match(/Registered tunnel connection/g) ?? []).length < 4; i++) {
      await new Promise((r) => setTimeout(r, 250));
      logs = String((await docker(['logs', cf])).stderr);
    }
    expect((logs.match(/INF Registered tunnel connection connIndex=\d /g) ?? []).length).toBe(4);
    // host -> origin's published 8090 -> stand-in's 8081 -> localhost:8080 (the --url target)
    const port = (await mustDocker(['port', origin, '8090'])).split('\n')[0]!.split(':').at(-1);
    const res = await fetch(`http://127.0.0.1:${port}/via-standin`);
    expect(await res.text()).toBe('origin says hi /via-standin');
  });
});

import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { CLI, REPO_ROOT } from '../helpers/cli.js';
import { docker, ensureNodeBaseImage, projectContainers, projectNetworks, requireDocker } from '../helpers/docker.js';

/*
 * `mcp-tunnel demo --docker`, as a user runs it (the built CLI as a child process), with a real Docker daemon.
 * No registry is reachable here, so the base image is the locally made node base (MCP_TUNNEL_BASE_IMAGE).
 * Afterwards: no container, network or demo image of the run's project, and no temp directory.
 */

const dockerReady = await requireDocker();

describe.skipIf(!dockerReady)('mcp-tunnel demo --docker', () => {
  let baseImage: string;
  let tmp: string;
  const projects: string[] = [];

  beforeAll(async () => {
    baseImage = await ensureNodeBaseImage();
  });
  beforeEach(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-demo-docker-test-'));
  });
  afterEach(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });
  afterAll(async () => {
    // Whatever a failed run may have left.
    for (const project of projects) {
      const ids = String((await docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`])).stdout).split('\n').filter(Boolean);
      if (ids.length) await docker(['rm', '-f', '-v', ...ids]);
      await docker(['network', 'rm', `${project}_default`]);
      await docker(['rmi', '-f', `mcp-tunnel-demo:${project}`]);
    }
  });

  function start(args: string[] = []) {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('MCP_TUNNEL_') && k !== 'COMPOSE_PROJECT_NAME') env[k] = v;
    return execa(process.execPath, [CLI, 'demo', '--docker', ...args], {
      cwd: REPO_ROOT,
      env: { ...env, TMPDIR: tmp, CI: 'true', NO_COLOR: '1', MCP_TUNNEL_BASE_IMAGE: baseImage },
      extendEnv: false,
      reject: false,
      timeout: 240_000,
    });
  }

  function projectOf(output: string): string {
    const dir = /in (\S*mcp-tunnel-demo-[A-Za-z0-9]+)$/m.exec(output)?.[1];
    expect(dir, 'the certificates step names the temp directory').toBeTruthy();
    const project = path.basename(dir!).toLowerCase();
    projects.push(project);
    return project;
  }

  async function expectNothingLeft(project: string): Promise<void> {
    expect(await projectContainers(project)).toEqual([]);
    expect(await projectNetworks(project)).toEqual([]);
    const images = await docker(['images', '-q', `mcp-tunnel-demo:${project}`]);
    expect(String(images.stdout).trim()).toBe('');
    expect(await fs.readdir(tmp)).toEqual([]);
  }

  it('builds, starts, probes through the containers, calls hello, and removes everything', async () => {
    const r = await start();
    const out = String(r.stdout);
    expect(String(r.stderr)).toBe('');
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    for (const step of ['docker', 'certificates', 'containers', 'websocket', 'tls', 'initialize', 'tools/list', 'tools/call', 'cleanup']) {
      expect(out).toMatch(new RegExp(`^✓ ${step.replace('/', '\\/')}\\s+\\d`, 'm'));
    }
    expect(out).toMatch(/proxy healthy/);
    expect(out).toMatch(/hello → Hello, .+!/);
    await expectNothingLeft(projectOf(out));
  });

  it('Ctrl-C while the containers come up: still removes everything, exit 130', async () => {
    const child = start();
    let out = '';
    let interrupted = false;
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      // One Ctrl-C: a second one means "exit now, skip the cleanup".
      if (!interrupted && out.includes('✓ certificates')) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    const r = await child;
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(130);
    expect(String(r.stderr)).toMatch(/^error: demo interrupted; everything it started was stopped and removed/m);
    await expectNothingLeft(projectOf(out));
  });
});

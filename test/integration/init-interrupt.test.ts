import { createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnvFile } from '../../src/deployment/env-file.js';
import { parseProxyConfig } from '../../src/deployment/proxy-config.js';
import { CLI, fakeTunnelToken, runCli } from '../helpers/cli.js';

/**
 * An init killed at any moment (SIGKILL: no handler runs) leaves every file whole, old or new, and the
 * next run finishes the job with the same CA.
 */
let work: string;
let tokenFile: string;
const args = (dir: string, domain: string, route: string): string[] => [
  'init', '--dir', dir, '--tunnel-id', 'tnl_01abc', '--tunnel-domain', domain, '--tunnel-token-file', tokenFile, '--route', route, '--force',
];

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-kill-'));
  tokenFile = path.join(work, 'token');
  fs.writeFileSync(tokenFile, fakeTunnelToken(), { mode: 0o600 });
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function assertWhole(dir: string): void {
  const read = (rel: string): string => fs.readFileSync(path.join(dir, rel), 'utf8');
  for (const cert of ['data/ca.crt', 'data/tls.crt']) expect(() => new X509Certificate(read(cert))).not.toThrow();
  for (const key of ['data/ca.key', 'data/tls.key']) expect(() => createPrivateKey(read(key))).not.toThrow();
  expect(() => parseProxyConfig(read('config/mcp-proxy.yaml'))).not.toThrow();
  expect(parseEnvFile(read('.env')).TUNNEL_TOKEN).toBe(fakeTunnelToken());
}

describe('init interrupted', () => {
  it('leaves whole files at every kill point and a re-run completes with the same CA', async () => {
    const dir = path.join(work, 'dep');
    expect((await runCli(args(dir, 'aaaa1111.tunnel.anthropic.com', 'docs=http://10.0.0.5:8080'))).exitCode).toBe(0);
    const ca = fs.readFileSync(path.join(dir, 'data/ca.crt'), 'utf8');
    let killedMidway = 0;
    // Bounded: 10 attempts, kill points spread over the run (node start-up, key generation, writes).
    for (let i = 0; i < 10; i++) {
      const domain = `bbbb${String(i).padStart(4, '0')}.tunnel.anthropic.com`;
      const child = execa(process.execPath, [CLI, ...args(dir, domain, `r${i}=http://10.0.0.${i + 1}:8080`)], { env: { CI: 'true' }, reject: false, input: '' });
      const delay = 150 + i * 90;
      const timer = setTimeout(() => child.kill('SIGKILL'), delay);
      const result = await child;
      clearTimeout(timer);
      if (result.signal === 'SIGKILL') killedMidway++;
      assertWhole(dir);
      expect(fs.readFileSync(path.join(dir, 'data/ca.crt'), 'utf8')).toBe(ca);
    }
    expect(killedMidway).toBeGreaterThan(0);

    const final = await runCli(args(dir, 'cccc2222.tunnel.anthropic.com', 'docs=http://10.0.0.5:8080'));
    expect(final.exitCode).toBe(0);
    assertWhole(dir);
    const cert = new X509Certificate(fs.readFileSync(path.join(dir, 'data/tls.crt')));
    expect(cert.checkPrivateKey(createPrivateKey(fs.readFileSync(path.join(dir, 'data/tls.key'))))).toBe(true);
    expect(cert.subjectAltName).toContain('cccc2222.tunnel.anthropic.com');
    expect(fs.readFileSync(path.join(dir, 'data/ca.crt'), 'utf8')).toBe(ca);
  });
});

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveDockerEndpoint } from '../../src/docker/endpoint.js';
import { envDrift } from '../../src/docker/env-drift.js';

/** The Docker endpoint chosen as the docker CLI chooses it, from files in a scratch home. */

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-endpoint-'));
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

function context(configDir: string, name: string, host: string, tls = false): void {
  const id = createHash('sha256').update(name).digest('hex');
  const meta = path.join(configDir, 'contexts', 'meta', id);
  fs.mkdirSync(meta, { recursive: true });
  fs.writeFileSync(path.join(meta, 'meta.json'), JSON.stringify({ Name: name, Metadata: {}, Endpoints: { docker: { Host: host, SkipTLSVerify: false } } }));
  if (tls) {
    const t = path.join(configDir, 'contexts', 'tls', id, 'docker');
    fs.mkdirSync(t, { recursive: true });
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) fs.writeFileSync(path.join(t, f), 'x');
  }
}

const docker = path.join(home, '.docker');
context(docker, 'colima', 'unix:///home/u/.colima/docker.sock');
context(docker, 'remote', 'tcp://192.0.2.7:2376', true);
fs.writeFileSync(path.join(docker, 'config.json'), JSON.stringify({ auths: {}, currentContext: 'colima' }));

describe('resolveDockerEndpoint', () => {
  it('DOCKER_HOST wins over everything', () => {
    expect(resolveDockerEndpoint({ env: { DOCKER_HOST: 'unix:///x.sock', DOCKER_CONTEXT: 'remote' }, homeDir: home })).toMatchObject({ host: 'unix:///x.sock', source: 'DOCKER_HOST' });
  });
  it('then DOCKER_CONTEXT, with the context TLS files', () => {
    const e = resolveDockerEndpoint({ env: { DOCKER_CONTEXT: 'remote' }, homeDir: home });
    expect(e).toMatchObject({ host: 'tcp://192.0.2.7:2376', source: 'DOCKER_CONTEXT', context: 'remote', tls: { verify: true } });
    expect(e.tls?.caFile).toMatch(/contexts\/tls\/[0-9a-f]{64}\/docker\/ca\.pem$/);
  });
  it("then config.json's currentContext", () => {
    expect(resolveDockerEndpoint({ env: {}, homeDir: home })).toEqual({ host: 'unix:///home/u/.colima/docker.sock', source: 'docker context', context: 'colima' });
  });
  it('DOCKER_CONFIG moves the config directory', () => {
    const other = path.join(home, 'elsewhere');
    context(other, 'x', 'unix:///other.sock');
    fs.writeFileSync(path.join(other, 'config.json'), JSON.stringify({ currentContext: 'x' }));
    expect(resolveDockerEndpoint({ env: { DOCKER_CONFIG: other }, homeDir: home }).host).toBe('unix:///other.sock');
  });
  it('the default context (or none) is the default socket', () => {
    expect(resolveDockerEndpoint({ env: { DOCKER_CONTEXT: 'default' }, homeDir: home }).host).toMatch(/^unix:\/\/.*docker\.sock$/);
    expect(resolveDockerEndpoint({ env: {}, homeDir: path.join(home, 'nohome') })).toMatchObject({ source: 'default' });
  });
  it('a context that does not exist is one line with a stable code', () => {
    expect(() => resolveDockerEndpoint({ env: { DOCKER_CONTEXT: 'nope' }, homeDir: home })).toThrow(expect.objectContaining({ code: 'DOCKER_CONTEXT_NOT_FOUND', exitCode: 3 }));
  });
});

describe('envDrift', () => {
  it('names a shell variable that overrides .env with another value, never its value', () => {
    const d = envDrift({ TUNNEL_TOKEN: 'new', MCP_TUNNEL_UID: '1000' }, { TUNNEL_TOKEN: 'old-secret', MCP_TUNNEL_UID: '1000' });
    expect(d.map((x) => x.name)).toEqual(['TUNNEL_TOKEN']);
    expect(d[0]!.hint).toContain('unset TUNNEL_TOKEN');
    expect(JSON.stringify(d)).not.toContain('old-secret');
  });
  it('is empty when the values agree or the shell does not set them', () => {
    expect(envDrift({ TUNNEL_TOKEN: 'a' }, { TUNNEL_TOKEN: 'a' })).toEqual([]);
    expect(envDrift({ TUNNEL_TOKEN: 'a' }, {})).toEqual([]);
  });
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deploymentPaths } from '../../src/deployment/layout.js';
import { proxyContainerUser } from '../../src/deployment/ownership.js';

/* The compose file a command works on, and the user its proxy container runs as: both read from what is there. */

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-compose-name-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function dirWith(...files: string[]): string {
  const dir = fs.mkdtempSync(path.join(root, 'd-'));
  for (const f of files) fs.writeFileSync(path.join(dir, f), 'services: {}\n');
  return dir;
}

describe('the compose file name', () => {
  it("is Anthropic's docker-compose.yaml when that is what the directory has", () => {
    const dir = dirWith('docker-compose.yaml');
    expect(path.basename(deploymentPaths(dir).compose)).toBe('docker-compose.yaml');
  });

  it('is compose.yaml where init will write it, in an empty directory', () => {
    expect(path.basename(deploymentPaths(dirWith()).compose)).toBe('compose.yaml');
  });

  it("follows docker-compose 1.29's order when several exist", () => {
    expect(path.basename(deploymentPaths(dirWith('compose.yaml', 'docker-compose.yml')).compose)).toBe('docker-compose.yml');
  });
});

describe("the proxy container's user", () => {
  const compose = 'services:\n  mcp-proxy:\n    image: x\n    user: "65532:65532"\n';
  it('is MCP_TUNNEL_UID/GID from .env when set', () => {
    expect(proxyContainerUser({ MCP_TUNNEL_UID: '1000', MCP_TUNNEL_GID: '1001' }, compose)).toMatchObject({ uid: 1000, gid: 1001, source: 'MCP_TUNNEL_UID/GID in .env' });
  });
  it("else the literal user: of the official guide's compose file", () => {
    expect(proxyContainerUser({}, 'services:\n  mcp-proxy:\n    user: "4242:4343"\n', 'docker-compose.yaml')).toMatchObject({ uid: 4242, gid: 4343, source: 'user: in docker-compose.yaml' });
  });
  it('else 65532 (an interpolated user: is not a literal)', () => {
    expect(proxyContainerUser({}, 'services:\n  mcp-proxy:\n    user: "${MCP_TUNNEL_UID}:${MCP_TUNNEL_GID}"\n')).toMatchObject({ uid: 65532, gid: 65532 });
  });
});

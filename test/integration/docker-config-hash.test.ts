/**
 * com.docker.compose.config-hash parity: our configHash() against docker-compose 1.29's own Python code
 * (compose.service.Service.config_hash, with the image ID stubbed), on the generated files and on files
 * using every supported key, with and without an override file. Equal hashes are what make docker-compose
 * leave mcp-tunnel's containers alone (and the reverse). Fails without the Python package unless MCP_TUNNEL_SKIP_DOCKER=1.
 */
import { execa } from 'execa';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderComposeFile } from '../../src/deployment/compose-file.js';
import { loadComposeProject } from '../../src/docker/compose-model.js';
import { configHash } from '../../src/docker/config-hash.js';

const PYTHON = '/usr/bin/python3';
const IMAGE_ID = `sha256:${'ab'.repeat(32)}`;
const HARNESS = `
import sys, json
from compose.config.config import find, load
from compose.config.environment import Environment
from compose.project import Project
from compose.cli.command import get_project_name
from compose.service import Service
from compose.utils import json_hash
Service.image = lambda self: {'Id': '${IMAGE_ID}'}
from compose.network import Network
Network.true_name = property(lambda self: self.full_name)
base = sys.argv[1]
env = Environment.from_env_file(base)
config = load(find(base, None, env))
project = Project.from_config(get_project_name(base, None, env), config, None)
print(json.dumps({s.name: json_hash(s.config_dict()) for s in project.services}))
`;

const pythonCompose = await execa(PYTHON, ['-c', 'import compose.service'], { reject: false }).then(
  (r) => r.exitCode === 0,
  () => false,
);

const TOKEN = 'eyJhIjoieCIsInQiOiJ5IiwicyI6InoifQ==';
const ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: os.tmpdir(), LANG: 'C.UTF-8' };

const MISC = `
version: "3.8"
services:
  web:
    image: "registry.example.com/team/web@sha256:${'cd'.repeat(32)}"
    command: ["node", "server.js", "--name", "it's \\"quoted\\""]
    environment:
      - PLAIN=1
      - FROM_ENV
      - UNICODE=héllo ✓
      - DOLLAR=$$HOME
    user: "\${APP_UID:-1000}:1000"
    read_only: "\${RO:-yes}"
    restart: "on-failure:3"
    stop_grace_period: 1m30s
    security_opt: ["no-new-privileges:true", "apparmor=unconfined"]
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
    logging:
      driver: local
    healthcheck:
      test: "wget -qO- http://localhost/ || exit 1"
      interval: 1m
      retries: "5"
    ports:
      - "8080"
      - "127.0.0.1:9000:8080/udp"
      - target: 443
        published: 8443
        protocol: tcp
    labels:
      - "com.example.team=platform"
      - "com.example.flag"
    volumes:
      - ./data:/data:ro
      - /var/log:/host-log
    depends_on: [db]
  db:
    build: ./db
    environment:
      POSTGRES: "yes"
      NUMBER: 5
    restart: "no"
    network_mode: host
  side:
    build:
      context: ./db
      dockerfile: Other.Dockerfile
      args: [A=1, FROM_ENV]
    network_mode: "service:web"
    depends_on:
      web:
        condition: service_started
`;

const OVERRIDE = `
services:
  web:
    environment:
      PLAIN: "2"
      EXTRA: "x"
    labels:
      added: "yes"
    cap_drop: [NET_RAW]
    security_opt: ["label=disable"]
    ports: ["127.0.0.1::7000"]
    volumes: ["./more:/more", "./data:/data:rw"]
    logging:
      options:
        max-size: 1m
    healthcheck:
      timeout: 3s
  side:
    build:
      args:
        B: "2"
`;

// docker-compose (installed by .ci/run) brings its Python package; like the Docker tests, only
// MCP_TUNNEL_SKIP_DOCKER=1 may skip this, and then it says so in the skipped count.
if (!pythonCompose && process.env.MCP_TUNNEL_SKIP_DOCKER !== '1') {
  throw new Error(`docker-compose 1.29's Python package is missing (${PYTHON} -c "import compose.service" failed): apt-get install docker-compose, or set MCP_TUNNEL_SKIP_DOCKER=1`);
}

describe.skipIf(!pythonCompose)("config hash = docker-compose 1.29's Service.config_hash", () => {
  let root = '';
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-hash-'));
  });
  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  async function compare(name: string, files: Record<string, string>, env: Record<string, string> = {}): Promise<Record<string, string>> {
    const dir = path.join(root, name);
    for (const d of ['build', 'db', 'data', 'more', 'config']) await fs.mkdir(path.join(dir, d), { recursive: true });
    for (const [f, text] of Object.entries(files)) await fs.writeFile(path.join(dir, f), text);
    const py = await execa(PYTHON, ['-c', HARNESS, dir], { env: { ...ENV, ...env }, extendEnv: false, reject: false });
    expect(py.exitCode, String(py.stderr)).toBe(0);
    const theirs = JSON.parse(String(py.stdout).trim().split('\n').at(-1)!) as Record<string, string>;
    const project = await loadComposeProject(dir, { processEnv: env });
    const ours = Object.fromEntries(project.services.map((s) => [s.name, configHash(project, s, IMAGE_ID)]));
    expect(ours).toEqual(theirs);
    return ours;
  }

  it('the generated builtin deployment', async () => {
    await compare('builtin', {
      'compose.yaml': renderComposeFile({ engine: 'builtin', version: '0.1.0' }),
      '.env': `TUNNEL_TOKEN=${TOKEN}\nCOMPOSE_PROJECT_NAME=hashtest\nMCP_TUNNEL_UID=1000\nMCP_TUNNEL_GID=1000\nMCP_TUNNEL_BASE_IMAGE=base:local\n`,
    });
  });

  it('the generated official deployment (defaults from the file, no .env values but the token)', async () => {
    await compare('official', { 'compose.yaml': renderComposeFile({ engine: 'official', version: '0.1.0' }), '.env': `TUNNEL_TOKEN=${TOKEN}\n` });
  });

  it('the builtin deployment with the tests\' override (stand-in, published port, labels)', async () => {
    await compare('override', {
      'compose.yaml': renderComposeFile({ engine: 'builtin', version: '0.1.0' }),
      'compose.override.yaml': [
        'services:',
        '  mcp-proxy:',
        '    labels:',
        '      mcp-tunnel-test: "1"',
        '    image: mcp-tunnel-test/proxy:x',
        '    ports:',
        '      - "127.0.0.1::8081"',
        '    healthcheck:',
        '      interval: 1s',
        '  cloudflared:',
        '    image: mcp-tunnel-test/cloudflared-standin:local',
        '    labels:',
        '      mcp-tunnel-test: "1"',
        '    environment:',
        '      STANDIN_LISTEN: "8081"',
        '',
      ].join('\n'),
      '.env': `TUNNEL_TOKEN=${TOKEN}\n`,
    });
  });

  it('every supported key, single file', async () => {
    await compare('misc', { 'docker-compose.yml': MISC }, { FROM_ENV: 'from the shell' });
  });

  it('every supported key, merged with an override file', async () => {
    const a = await compare('misc-override', { 'docker-compose.yml': MISC, 'docker-compose.override.yml': OVERRIDE }, { FROM_ENV: 'from the shell', RO: 'false' });
    expect(Object.keys(a).sort()).toEqual(['db', 'side', 'web']);
  });
});


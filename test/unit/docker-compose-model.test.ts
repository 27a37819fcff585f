/**
 * The compose model without Docker: interpolation, .env precedence, project names, the supported subset
 * (and one clear line for anything else), override merging, and the Python behaviours it reproduces.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderComposeFile, TUNNEL_TOKEN_MISSING_MESSAGE } from '../../src/deployment/compose-file.js';
import { loadComposeProject, resolveProjectName } from '../../src/docker/compose-model.js';
import { interpolateString, MissingVariableError } from '../../src/docker/interpolate.js';
import { composeNanoseconds, composeTimeparse, pythonJsonDumps, shlexSplit } from '../../src/docker/py-compat.js';
import { containerCreateOptions } from '../../src/docker/specs.js';
import { ValidationError } from '../../src/errors.js';

let root = '';
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-compose-model-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

let n = 0;
async function project(files: Record<string, string>): Promise<string> {
  const dir = path.join(root, `p${n++}`);
  await fs.mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await fs.writeFile(path.join(dir, name), text);
  return dir;
}

const TOKEN = 'eyJhIjoieCIsInQiOiJ5IiwicyI6InoifQ==';

describe('interpolation (compose 1.29 grammar)', () => {
  const ctx = (env: Record<string, string>) => ({ env, unset: new Set<string>() });
  it('substitutes $VAR, ${VAR}, defaults, and $$', () => {
    const c = ctx({ A: 'a', EMPTY: '' });
    expect(interpolateString('$A-${A}-$$A-${B:-dflt}-${EMPTY:-d2}-${EMPTY-d3}-${B-d4}', c, 'x')).toBe('a-a-$A-dflt-d2--d4');
    expect(interpolateString('${B}', c, 'x')).toBe('');
    expect([...c.unset]).toEqual(['B']);
  });
  it('${VAR:?message} fails with the message itself; ${VAR?} only when unset', () => {
    const c = ctx({ EMPTY: '' });
    expect(() => interpolateString('${TUNNEL_TOKEN:?the token is missing}', c, 'x')).toThrow(MissingVariableError);
    try {
      interpolateString('${TUNNEL_TOKEN:?the token is missing}', c, 'x');
    } catch (err) {
      expect((err as Error).message).toBe('the token is missing');
    }
    expect(() => interpolateString('${EMPTY:?no}', c, 'x')).toThrow('no');
    expect(interpolateString('${EMPTY?no}', c, 'x')).toBe('');
  });
  it('a lone $ or an invalid name is an error, as in compose', () => {
    expect(() => interpolateString('cost: 5$', ctx({}), 'svc')).toThrow(expect.objectContaining({ code: 'COMPOSE_INTERPOLATION_INVALID', exitCode: 2 }));
    expect(() => interpolateString('${1A}', ctx({}), 'svc')).toThrow(ValidationError);
  });
});

describe('Python behaviours', () => {
  it('shlex.split', () => {
    expect(shlexSplit('tunnel --no-autoupdate run --url http://localhost:8080')).toEqual(['tunnel', '--no-autoupdate', 'run', '--url', 'http://localhost:8080']);
    expect(shlexSplit(`a 'b c' "d \\"e\\" $f" g\\ h ''`)).toEqual(['a', 'b c', 'd "e" $f', 'g h', '']);
    expect(() => shlexSplit('"open')).toThrow('No closing quotation');
  });
  it("compose's timeparse and nanoseconds", () => {
    expect(composeTimeparse('30s')).toBe(30);
    expect(composeTimeparse('1m30s')).toBe(90);
    expect(composeTimeparse('1.5s')).toBe(1.5);
    expect(composeTimeparse('10')).toBeUndefined();
    expect(composeNanoseconds('10s')).toBe(10_000_000_000);
    expect(composeNanoseconds('100ms')).toBe(100_000_000);
  });
  it('json.dumps(sort_keys=True, separators=(",", ":")) with ensure_ascii', () => {
    expect(pythonJsonDumps({ b: [1, null, true], a: 'é"\\\n\u007f😀' })).toBe('{"a":"\\u00e9\\"\\\\\\n\\u007f\\ud83d\\ude00","b":[1,null,true]}');
  });
});

describe('loadComposeProject', () => {
  it('reads the generated builtin file with .env; the process environment wins over .env', async () => {
    const dir = await project({
      'compose.yaml': renderComposeFile({ engine: 'builtin', version: '1.2.3' }),
      '.env': `TUNNEL_TOKEN=${TOKEN}\nCOMPOSE_PROJECT_NAME=My.Proj\nMCP_TUNNEL_UID=1000\nMCP_TUNNEL_GID=1000\n`,
    });
    const p = await loadComposeProject(dir, { processEnv: { MCP_TUNNEL_UID: '2000' } });
    expect(p.name).toBe('myproj');
    expect(p.networkName).toBe('myproj_default');
    expect(p.configFilesLabel).toBe('compose.yaml');
    expect(p.services.map((s) => s.name)).toEqual(['mcp-proxy', 'cloudflared']);
    const [proxy, cf] = p.services;
    expect(proxy!.user).toBe('2000:1000');
    expect(proxy!.build).toEqual({ context: path.join(dir, 'build'), args: { BASE_IMAGE: 'node:24-slim' } });
    expect(proxy!.image).toBe('mcp-tunnel-proxy:1.2.3');
    expect(proxy!.binds).toEqual([
      { source: path.join(dir, 'config', 'mcp-proxy.yaml'), target: '/etc/mcp-gateway/config.yaml', mode: 'ro' },
      { source: path.join(dir, 'data'), target: '/data', mode: 'ro' },
    ]);
    expect(proxy!.healthcheck).toEqual({ test: ['CMD', 'node', '/app/mcp-tunnel.mjs', 'health'], intervalNs: 10e9, timeoutNs: 5e9, startPeriodNs: 10e9, retries: 3 });
    expect(proxy!.stopTimeoutSeconds).toBe(30);
    expect(proxy!.restart).toEqual({ Name: 'unless-stopped', MaximumRetryCount: 0 });
    expect(cf!.command).toEqual(['tunnel', '--no-autoupdate', 'run', '--url', 'http://localhost:8080']);
    expect(cf!.env).toEqual([`TUNNEL_TOKEN=${TOKEN}`]);
    expect(cf!.networkMode).toEqual({ kind: 'service', service: 'mcp-proxy' });
    expect(cf!.dependsOn).toEqual({ 'mcp-proxy': { condition: 'service_healthy' } });

    const spec = containerCreateOptions(cf!, { project: p, configHash: 'h', serviceContainerIds: new Map([['mcp-proxy', 'abc']]) });
    expect(spec.name).toBe('myproj-cloudflared-1');
    expect(spec.HostConfig?.NetworkMode).toBe('container:abc');
    expect(spec.NetworkingConfig).toBeUndefined();
    expect(spec.Labels).toMatchObject({ 'com.docker.compose.project': 'myproj', 'com.docker.compose.config-hash': 'h', 'com.docker.compose.oneoff': 'False' });
  });

  it('a missing TUNNEL_TOKEN fails with the generated file\'s own message', async () => {
    const dir = await project({ 'compose.yaml': renderComposeFile({ engine: 'official', version: '1' }), '.env': 'TUNNEL_TOKEN=\n' });
    await expect(loadComposeProject(dir, { processEnv: {} })).rejects.toThrow(TUNNEL_TOKEN_MISSING_MESSAGE);
    await expect(loadComposeProject(dir, { processEnv: {} })).rejects.toMatchObject({ code: 'TUNNEL_TOKEN_MISSING', exitCode: 2 });
  });

  it('the project name: COMPOSE_PROJECT_NAME (normalised), else the directory name', async () => {
    const dir = await project({ 'compose.yaml': 'services: {a: {image: x}}\n' });
    expect(await resolveProjectName(dir, { processEnv: {} })).toBe(path.basename(dir));
    expect(await resolveProjectName(dir, { processEnv: { COMPOSE_PROJECT_NAME: 'Hello World!' } })).toBe('helloworld');
  });

  it('merges compose.override.yaml as compose does (environment, labels, ports, lists)', async () => {
    const dir = await project({
      'compose.yaml': [
        'services:',
        '  app:',
        '    image: base:1',
        '    command: run',
        '    environment: [A=1, B]',
        '    cap_drop: [NET_RAW, ALL]',
        '    volumes: ["./z:/z", "./a:/a:ro"]',
        '    ports: ["127.0.0.1::9000"]',
        '  other:',
        '    image: other:1',
        '',
      ].join('\n'),
      'compose.override.yaml': ['services:', '  app:', '    image: over:2', '    environment: {B: two, C: "3"}', '    labels: [x=y]', '    ports: ["8000:80"]', ''].join('\n'),
    });
    const p = await loadComposeProject(dir, { processEnv: {} });
    expect(p.configFilesLabel).toBe('compose.yaml,compose.override.yaml');
    const app = p.services.find((s) => s.name === 'app')!;
    expect(app.image).toBe('over:2');
    expect(app.environment).toEqual({ A: '1', B: 'two', C: '3' });
    expect(app.labels).toEqual({ x: 'y' });
    expect(app.capDrop).toEqual(['ALL', 'NET_RAW']);
    expect(app.binds.map((b) => b.target)).toEqual(['/a', '/z']);
    expect(app.ports).toEqual([
      { target: 80, published: 8000, protocol: null, mode: null, hostIp: null },
      { target: 9000, published: null, protocol: null, mode: null, hostIp: '127.0.0.1' },
    ]);
  });

  it('COMPOSE_FILE (from .env) picks the files', async () => {
    const dir = await project({ 'one.yaml': 'services: {a: {image: x}}\n', 'two.yaml': 'services: {a: {user: "1:1"}}\n', '.env': 'COMPOSE_FILE=one.yaml:two.yaml\n' });
    const p = await loadComposeProject(dir, { processEnv: {} });
    expect(p.configFilesLabel).toBe('one.yaml,two.yaml');
    expect(p.services[0]!.user).toBe('1:1');
  });

  it('anything outside the supported subset fails with one line naming it', async () => {
    const cases: Array<[string, RegExp]> = [
      ['services: {a: {image: x, privileged: true}}\n', /^compose\.yaml: service "a": "privileged" is not supported by mcp-tunnel up$/],
      ['services: {a: {image: x, volumes: ["data:/data"]}}\n', /named volume "data" is not supported/],
      ['services: {a: {image: x}}\nnetworks: {front: {}}\n', /top-level "networks:" is not supported/],
      ['name: foo\nservices: {a: {image: x}}\n', /top-level key "name" is not supported/],
      ['services: {a: {image: x, network_mode: "service:nope"}}\n', /names an undefined service/],
      ['services: {a: {image: x, build: {context: ., target: t}}}\n', /build\.target is not supported/],
      ['services: {a: {image: x, healthcheck: {interval: soon}}}\n', /healthcheck\.interval "soon" is not a duration/],
      ['services: {a: {image: x, user: 1000}}\n', /user must be a string/],
      ['services: [a]\n', /services: must be a mapping/],
      ['services: {a: {image: x\n', /is not valid YAML/],
    ];
    for (const [text, re] of cases) {
      const dir = await project({ 'compose.yaml': text });
      const err = await loadComposeProject(dir, { processEnv: {} }).catch((e: unknown) => e);
      expect(err, text).toBeInstanceOf(ValidationError);
      expect((err as Error).message, text).toMatch(re);
      expect((err as Error).message).not.toContain('\n');
    }
  });

  it('no compose file: one line with the way out', async () => {
    const dir = await project({});
    await expect(loadComposeProject(dir, { processEnv: {} })).rejects.toMatchObject({ code: 'COMPOSE_FILE_MISSING', exitCode: 2 });
  });
});

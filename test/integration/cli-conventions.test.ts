import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyEnvBooleans, parseBooleanEnv } from '../../src/cli/conventions.js';
import { buildFullProgram } from '../../src/cli/program.js';
import { fakeTunnelToken, REPO_ROOT, runCli, snapshotTree } from '../helpers/cli.js';
import { jsonSchemas } from '../helpers/json-reports.js';

/*
 * The conventions of docs/cli-conventions.md, as a user meets them: boolean env twins, one duration
 * syntax, -v, completion, --dry-run, -y, every missing flag in one message, and no hint that names a flag
 * which does not exist.
 */
let work: string;
let tokenFile: string;
const DOMAIN = 'abcd1234.tunnel.anthropic.com';

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-conventions-'));
  tokenFile = path.join(work, 'token');
  fs.writeFileSync(tokenFile, fakeTunnelToken('conv'), { mode: 0o600 });
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const initArgs = (dir: string, extra: string[] = []): string[] => [
  'init', '--dir', dir, '--tunnel-id', 'tnl_conv1', '--tunnel-domain', DOMAIN, '--tunnel-token-file', tokenFile, '--route', 'docs=http://docs-mcp:8080', ...extra,
];
const newDir = (): string => path.join(fs.mkdtempSync(path.join(work, 'dep-')), 'deployment');

/** Every --flag of every command, by command path ("routes add"), root flags under "". */
async function flagTree(): Promise<Map<string, Set<string>>> {
  const tree = new Map<string, Set<string>>();
  const walk = (c: Command, name: string): void => {
    tree.set(name, new Set([...c.options.map((o) => o.long!), '--help']));
    for (const sub of c.commands) walk(sub, `${name} ${sub.name()}`.trim());
  };
  walk(await buildFullProgram(), '');
  return tree;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

describe('--json', () => {
  it('every --json has the MCP_TUNNEL_JSON twin and names its schema in docs/json.md', async () => {
    const schemas = jsonSchemas();
    const found: string[] = [];
    const walk = (c: Command, name: string): void => {
      const json = c.options.find((o) => o.long === '--json');
      if (json) {
        found.push(name);
        expect(json.envVar, name).toBe('MCP_TUNNEL_JSON');
        const report = /\(docs\/json\.md: ([a-z-]+)\)/.exec(json.description)?.[1];
        expect(report && schemas.has(report), `${name}: --json names no schema of docs/json.md (${json.description})`).toBe(true);
      }
      for (const sub of c.commands) walk(sub, `${name} ${sub.name()}`.trim());
    };
    walk(await buildFullProgram(), '');
    expect(found).toEqual(expect.arrayContaining(['up', 'down', 'teardown', 'images', 'config get', 'config set', 'config unset', 'tunnel show', 'ca rotate', 'revoke', 'schedule-renewal', 'export helm', 'logs']));
  });

  /**
   * The one list of commands that have no --json, each with the reason: none prints a result a script
   * needs beyond the exit code. (logs is not here: it streams NDJSON records, docs/json.md "logs".)
   */
  const NO_JSON: Record<string, string> = {
    proxy: 'a server: it runs until stopped, and its own log lines are JSON already',
    health: "the container's healthcheck: the exit code is the answer, the one line is for docker inspect",
    completion: 'prints a shell script',
    demo: 'a walkthrough for a person; its verdict is the exit code (probe --json reports the same path)',
  };

  it('every command has --json unless NO_JSON says why not, and docs/cli-conventions.md names the same ones', async () => {
    const leaves: Array<{ name: string; json: boolean }> = [];
    const walk = (c: Command, name: string): void => {
      if (c.commands.length === 0 && name) leaves.push({ name, json: c.options.some((o) => o.long === '--json') });
      for (const sub of c.commands) walk(sub, `${name} ${sub.name()}`.trim());
    };
    walk(await buildFullProgram(), '');
    expect(leaves.filter((l) => !l.json).map((l) => l.name).sort()).toEqual(Object.keys(NO_JSON).sort());
    const conventions = fs.readFileSync(path.join(REPO_ROOT, 'docs/cli-conventions.md'), 'utf8');
    const named = /Commands without `--json`: ([^.]*)\./.exec(conventions)?.[1] ?? '';
    expect([...named.matchAll(/`([a-z -]+)`/g)].map((m) => m[1]).sort()).toEqual(Object.keys(NO_JSON).sort());
  });

  it('implies --non-interactive, even on a terminal: ca rotate prints the report instead of asking, teardown refuses', async () => {
    const dir = newDir();
    expect((await runCli(initArgs(dir))).exitCode).toBe(0);
    // script(1) gives the CLI a real terminal: a prompt would wait (and the 30 s timeout fail the test).
    const onTerminal = (args: string): string =>
      execFileSync('script', ['-qfec', `'${process.execPath}' '${path.join(REPO_ROOT, 'dist/cli/main.js')}' ${args}; echo "exit=$?"`, '/dev/null'], {
        env: { ...process.env, CI: '', NO_COLOR: '1', MCP_TUNNEL_DIR: '', MCP_TUNNEL_JSON: '' },
        encoding: 'utf8',
        timeout: 30_000,
      }).replace(/\r/g, '');
    const rotate = onTerminal(`ca rotate --dir '${dir}' --json`);
    expect(rotate).toMatch(/\nexit=0\n$/);
    expect(JSON.parse(rotate.slice(0, rotate.lastIndexOf('exit=')))).toMatchObject({ report: 'ca-rotate', status: 'awaiting-registration' });
    const teardown = onTerminal(`teardown --dir '${dir}' --json`);
    expect(teardown).toMatch(/^error: teardown deletes the credentials and needs a confirmation\n[\s\S]*exit=2\n$/);
    expect(fs.existsSync(path.join(dir, 'data'))).toBe(true);
  });
});

describe('boolean environment twins', () => {
  it('MCP_TUNNEL_AUTO_RENEW=false writes no cert-renewer; =yes does; =maybe is one line + hint, exit 2', async () => {
    const off = newDir();
    const r0 = await runCli(initArgs(off), { env: { MCP_TUNNEL_AUTO_RENEW: 'false' } });
    expect(r0.exitCode).toBe(0);
    expect(fs.readFileSync(path.join(off, 'compose.yaml'), 'utf8')).not.toContain('cert-renewer:');

    const on = newDir();
    const r1 = await runCli(initArgs(on), { env: { MCP_TUNNEL_AUTO_RENEW: 'yes' } });
    expect(r1.exitCode).toBe(0);
    expect(fs.readFileSync(path.join(on, 'compose.yaml'), 'utf8')).toContain('cert-renewer:');

    const bad = newDir();
    const r2 = await runCli(initArgs(bad), { env: { MCP_TUNNEL_AUTO_RENEW: 'maybe' } });
    expect(r2.exitCode).toBe(2);
    expect(r2.stderr).toBe(
      'error: MCP_TUNNEL_AUTO_RENEW=maybe is not a boolean\nhint: set MCP_TUNNEL_AUTO_RENEW to 1, true or yes to turn it on, 0, false or no to turn it off (or unset it)',
    );
    expect(fs.existsSync(bad)).toBe(false);
  });

  it('reads 1/0, true/false, yes/no; a --no-X twin set to 0 keeps X on', () => {
    for (const v of ['1', 'true', 'YES', 'on']) expect(parseBooleanEnv('X', v)).toBe(true);
    for (const v of ['0', 'false', 'No', 'off']) expect(parseBooleanEnv('X', v)).toBe(false);
    expect(parseBooleanEnv('X', '')).toBeUndefined();
    const program = new Command().exitOverride();
    let seen: Record<string, unknown> = {};
    program.hook('preAction', (_root, action) => applyEnvBooleans(action));
    program
      .command('up')
      .addOption(new Option('--no-wait', 'do not wait').env('T_NO_WAIT'))
      .addOption(new Option('--build', 'build').env('T_BUILD'))
      .action((opts: Record<string, unknown>) => {
        seen = opts;
      });
    process.env.T_NO_WAIT = '0';
    process.env.T_BUILD = 'false';
    try {
      program.parse(['node', 'x', 'up']);
    } finally {
      delete process.env.T_NO_WAIT;
      delete process.env.T_BUILD;
    }
    expect(seen).toMatchObject({ wait: true, build: false });
  });
});

describe('durations', () => {
  let dir: string;
  beforeAll(async () => {
    dir = newDir();
    expect((await runCli(initArgs(dir))).exitCode).toBe(0);
  });
  it.each([
    [['renew-cert', '--cert-duration', '99999999999h', '--dir'], /^error: --cert-duration 99999999999h is out of range/],
    [['down', '--timeout', '10', '--dir'], /^error: invalid --timeout "10"[^\n]*\nhint: add a unit: 10s/],
    [['doctor', '--timeout', '3000', '--dir'], /^error: invalid --timeout "3000"/],
    [['health', '--timeout', 'soon'], /^error: invalid --timeout "soon"/],
  ])('%j is one line + hint, exit 2', async (args, message) => {
    const r = await runCli(args.at(-1) === '--dir' ? [...args, dir] : args);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(2);
    expect(r.exitCode).toBe(2);
  });
});

describe('init conventions', () => {
  it('names every missing required flag in one message', async () => {
    const r = await runCli(['init', '--non-interactive', '--dir', newDir()]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(
      'error: missing 4 values: --tunnel-id (or MCP_TUNNEL_TUNNEL_ID): the tunnel ID (tnl_...) from the Console; --tunnel-domain (or MCP_TUNNEL_TUNNEL_DOMAIN): the tunnel domain from the Console; ' +
        '--tunnel-token-file (or TUNNEL_TOKEN): the tunnel token from the Console (or --tunnel-token-stdin); --route (or MCP_TUNNEL_ROUTES): at least one route NAME=http://host:port (or --sample-server)',
    );
  });

  it('the programmatic flow names every missing value in one message too, and --dry-run sends nothing', async () => {
    const r = await runCli(['init', '--flow', 'wif', '--non-interactive', '--dir', newDir()]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^error: missing 4 values: --federation-rule-id .*; --organization-id .*; --identity-token-file .*; --route /);
    const jwt = path.join(work, 'id.jwt');
    fs.writeFileSync(jwt, 'x.y.z', { mode: 0o600 });
    const dir = newDir();
    // An API URL on loopback where nothing listens: a dry run must not even try it.
    const dry = await runCli(['init', '--flow', 'wif', '--dir', dir, '--federation-rule-id', 'fdrl_abc', '--organization-id', '12345678-90ab-cdef-1234-567890abcdef', '--identity-token-file', jwt, '--api-url', 'http://127.0.0.1:9', '--route', 'docs=http://docs-mcp:8080', '--dry-run']);
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/create a new tunnel/);
    expect(dry.stdout).toContain('dry run: no API request was made and nothing was written');
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('--quiet keeps the result lines and drops the progress steps', async () => {
    const loud = await runCli(initArgs(newDir()));
    const quiet = await runCli(['--quiet', ...initArgs(newDir())]);
    expect(loud.stdout).toContain('✓ create compose.yaml');
    expect(quiet.exitCode).toBe(0);
    expect(quiet.stdout).not.toContain('✓');
    expect(quiet.stdout).toContain('Next:');
    expect((await runCli(['--quiet', '--verbose', 'status', '--dir', work])).exitCode).toBe(2);
  });

  it('--dry-run prints the plan and writes nothing', async () => {
    const dir = newDir();
    const r = await runCli(initArgs(dir, ['--dry-run']));
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/create\s+compose\.yaml/);
    expect(r.stdout).toContain('dry run: nothing was written');
    expect(fs.existsSync(dir)).toBe(false);
    // ... and on an existing deployment it touches nothing either.
    await runCli(initArgs(dir));
    const before = snapshotTree(dir);
    const again = await runCli(initArgs(dir, ['--dry-run', '--route', 'wiki=http://wiki-mcp:80']));
    expect(again.exitCode).toBe(0);
    expect(snapshotTree(dir)).toEqual(before);
  });

  it('-y never prompts, even on a terminal: a missing value is an error naming its flag', async () => {
    // script(1) gives the CLI a real terminal; -y must still not wait for an answer.
    const dir = newDir();
    const out = execFileSync('script', ['-qfec', `'${process.execPath}' '${path.join(REPO_ROOT, 'dist/cli/main.js')}' init -y --dir '${dir}' --tunnel-id tnl_y1; echo "exit=$?"`, '/dev/null'], {
      env: { ...process.env, CI: '', NO_COLOR: '1', MCP_TUNNEL_DIR: '' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(out).toMatch(/missing 3 values: --tunnel-domain/);
    expect(out).toMatch(/exit=2/);
  });

  it('--sample-server adds the hello service and route; routes remove + deleting the service undoes it', async () => {
    const dir = newDir();
    const r = await runCli(initArgs(dir, ['--sample-server']));
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`mcp-tunnel probe hello --call hello --dir ${dir}`);
    const compose = fs.readFileSync(path.join(dir, 'compose.yaml'), 'utf8');
    expect(compose).toMatch(/\n {2}hello:\n/);
    expect(compose).toContain('command: ["demo", "--serve-sample", "0.0.0.0:3000"]');
    expect(fs.readFileSync(path.join(dir, 'config/mcp-proxy.yaml'), 'utf8')).toMatch(/hello: "?http:\/\/hello:3000/);
    expect(fs.existsSync(path.join(dir, 'build/mcp-tunnel.mjs'))).toBe(true);
    const config = execFileSync('docker-compose', ['config', '--services'], { cwd: dir, encoding: 'utf8' });
    expect(config.split('\n')).toContain('hello');

    const removed = await runCli(['routes', 'remove', 'hello', '--dir', dir, '--no-restart']);
    expect(removed.exitCode).toBe(0);
    const list = JSON.parse((await runCli(['routes', 'list', '--dir', dir, '--json'])).stdout) as { routes: Array<{ name: string }> };
    expect(list.routes.map((x) => x.name)).toEqual(['docs']);
  });
});

describe('version, completion, hints', () => {
  it('-v, -V and --version print the version', async () => {
    const version = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).version as string;
    for (const flag of ['-v', '-V', '--version']) {
      const r = await runCli([flag]);
      expect(r.stdout.trim(), flag).toBe(version);
    }
  });

  it('completion bash completes commands and the flags of a subcommand', async () => {
    const r = await runCli(['completion', 'bash']);
    expect(r.exitCode).toBe(0);
    const script = path.join(work, 'completion.bash');
    fs.writeFileSync(script, r.stdout);
    const run = (words: string[]): string =>
      execFileSync('bash', ['-c', `source '${script}'; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _mcp_tunnel; echo "\${COMPREPLY[*]}"`], { encoding: 'utf8' }).trim();
    expect(run(['mcp-tunnel', 'con']).split(' ')).toEqual(['config', 'connect']);
    expect(run(['mcp-tunnel', 'conn']).split(' ')).toEqual(['connect']);
    expect(run(['mcp-tunnel', 'routes', 'add', '--n']).split(' ')).toEqual(['--no-restart']);
    for (const shell of ['zsh', 'fish']) {
      const s = await runCli(['completion', shell]);
      expect(s.exitCode, shell).toBe(0);
      expect(s.stdout, shell).toContain('connect');
    }
    expect((await runCli(['completion', 'tcsh'])).exitCode).toBe(2);
  });

  it('every `mcp-tunnel CMD ... --flag` named in a message or hint exists on that command', async () => {
    const tree = await flagTree();
    const problems: string[] = [];
    for (const file of sourceFiles(path.join(REPO_ROOT, 'src'))) {
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/mcp-tunnel ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?([^'"`\n]*)/g)) {
        const [, cmd, sub, rest] = m;
        if (!tree.has(cmd!)) continue; // prose such as "mcp-tunnel puts ..."
        const name = sub && tree.has(`${cmd} ${sub}`) ? `${cmd} ${sub}` : cmd!;
        const segment = `${sub && name === cmd ? `${sub} ` : ''}${rest}`.split(/[(),;:]| or /)[0]!;
        for (const flag of segment.match(/(?<![\w-])--[a-z][a-z0-9-]*/g) ?? []) {
          if (!tree.get(name)!.has(flag) && !tree.get('')!.has(flag)) problems.push(`${path.relative(REPO_ROOT, file)}: mcp-tunnel ${name} has no ${flag}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('every --flag in the sources exists on some command, or belongs to another program', async () => {
    const known = new Set([...(await flagTree()).values()].flatMap((s) => [...s]));
    // Other programs' flags the messages quote: docker compose, cloudflared, docker, helm/kubectl, node, gcloud.
    const external = new Set(['--force-recreate', '--remove-orphans', '--no-autoupdate', '--filter', '--namespace', '--proxy-node-options', '--trace-gc', '--audiences', '--volumes']);
    const problems: string[] = [];
    for (const file of sourceFiles(path.join(REPO_ROOT, 'src'))) {
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]/g)) {
        if (!known.has(m[0]) && !external.has(m[0])) problems.push(`${path.relative(REPO_ROOT, file)}: ${m[0]}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('every flag has an environment twin, or the README lists it among those that have none', async () => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const section = /### Flags without an environment variable\n([\s\S]*?)\n#/.exec(readme)?.[1] ?? '';
    const program = await buildFullProgram();
    const missing: string[] = [];
    const walk = (c: Command, name: string): void => {
      for (const o of c.options) if (!o.envVar && !section.includes(`\`${`${name} ${o.long}`.trim()}\``)) missing.push(`${name} ${o.long}`.trim());
      for (const s of c.commands) walk(s, `${name} ${s.name()}`.trim());
    };
    walk(program, '');
    expect(missing).toEqual([]);
  });
});

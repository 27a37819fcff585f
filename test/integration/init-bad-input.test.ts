import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeTunnelToken, runCli, snapshotTree } from '../helpers/cli.js';

/**
 * Every bad input a user is likely to type: one line saying what is wrong (plus a hint), a non-zero
 * exit, no stack trace, and not a single file written or changed.
 */
let work: string;
let tokenFile: string;

const GOOD = (dir: string): string[] => [
  'init', '--dir', dir, '--tunnel-id', 'tnl_01abc', '--tunnel-domain', 'abcd1234.tunnel.anthropic.com',
  '--tunnel-token-file', tokenFile, '--route', 'docs=http://10.0.0.5:8080',
];

/** Replace (or drop, with value null) one flag of the good command line. */
function withFlag(dir: string, flag: string, value: string | null): string[] {
  const args = GOOD(dir);
  const at = args.indexOf(flag);
  if (at >= 0) args.splice(at, 2, ...(value === null ? [] : [flag, value]));
  else if (value !== null) args.push(flag, value);
  return args;
}

function writeFile(name: string, content: string): string {
  const p = path.join(work, name);
  fs.writeFileSync(p, content, { mode: 0o600 });
  return p;
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-bad-'));
  tokenFile = writeFile('token', `${fakeTunnelToken()}\n`);
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64');

interface Case {
  name: string;
  args: (dir: string) => string[];
  error: RegExp;
  exit?: number;
  env?: Record<string, string>;
  input?: string;
  setup?: (dir: string) => void;
}

const cases: Case[] = [
  { name: 'missing tunnel id', args: (d) => withFlag(d, '--tunnel-id', null), error: /missing --tunnel-id \(or MCP_TUNNEL_TUNNEL_ID\)/ },
  { name: 'missing tunnel domain', args: (d) => withFlag(d, '--tunnel-domain', null), error: /missing --tunnel-domain/ },
  { name: 'missing token', args: (d) => withFlag(d, '--tunnel-token-file', null), error: /missing --tunnel-token-file \(or TUNNEL_TOKEN\)/ },
  { name: 'missing route', args: (d) => withFlag(d, '--route', null), error: /missing --route/ },
  { name: 'tunnel id without tnl_', args: (d) => withFlag(d, '--tunnel-id', 'abc123'), error: /invalid tunnel ID "abc123": must start with tnl_/ },
  { name: 'tunnel id with nothing after tnl_', args: (d) => withFlag(d, '--tunnel-id', 'tnl_'), error: /invalid tunnel ID/ },
  { name: 'domain with spaces', args: (d) => withFlag(d, '--tunnel-domain', 'not a domain'), error: /invalid tunnel domain "not a domain"/ },
  { name: 'single-label domain', args: (d) => withFlag(d, '--tunnel-domain', 'localhost'), error: /invalid tunnel domain "localhost"/ },
  { name: 'IP address as domain', args: (d) => withFlag(d, '--tunnel-domain', '10.1.2.3'), error: /invalid tunnel domain "10.1.2.3"/ },
  { name: 'route name with underscore', args: (d) => withFlag(d, '--route', 'my_docs=http://10.0.0.5:8080'), error: /invalid route name "my_docs": must be a DNS label/ },
  { name: 'route name with a dot', args: (d) => withFlag(d, '--route', 'a.b=http://10.0.0.5:8080'), error: /invalid route name "a.b"/ },
  { name: 'route without =', args: (d) => withFlag(d, '--route', 'docs'), error: /invalid --route "docs": expected NAME=URL/ },
  { name: 'upstream without port', args: (d) => withFlag(d, '--route', 'docs=http://10.0.0.5'), error: /invalid upstream \(must be scheme:\/\/host:port\) for route "docs": "http:\/\/10.0.0.5" has no port/ },
  { name: 'upstream with a path', args: (d) => withFlag(d, '--route', 'docs=http://10.0.0.5:8080/mcp'), error: /invalid upstream \(must be scheme:\/\/host:port\) for route "docs": .* has a path, query or fragment \("\/mcp"\)/ },
  { name: 'upstream with ftp scheme', args: (d) => withFlag(d, '--route', 'docs=ftp://10.0.0.5:21'), error: /has scheme "ftp"; only http and https/ },
  { name: 'upstream port out of range', args: (d) => withFlag(d, '--route', 'docs=http://10.0.0.5:70000'), error: /has port 70000, outside 1-65535/ },
  { name: 'IPv6 upstream', args: (d) => withFlag(d, '--route', 'docs=http://[fd00::5]:8080'), error: /is an IPv6 address/ },
  { name: 'upstream with credentials', args: (d) => withFlag(d, '--route', 'docs=http://user:pw@10.0.0.5:8080'), error: /invalid upstream \(must be scheme:\/\/host:port\) for route "docs": .* carries credentials/ },
  { name: 'duplicate route names', args: (d) => [...GOOD(d), '--route', 'docs=http://10.0.0.6:8080'], error: /route "docs" is given twice/ },
  { name: 'token file missing', args: (d) => withFlag(d, '--tunnel-token-file', path.join(work, 'nope')), error: /--tunnel-token-file .*nope does not exist/ },
  { name: 'token file is a directory', args: (d) => withFlag(d, '--tunnel-token-file', work), error: /is a directory/ },
  { name: 'empty token file', args: (d) => withFlag(d, '--tunnel-token-file', writeFile('empty', '\n')), error: /tunnel token from --tunnel-token-file .* is empty/ },
  { name: 'token not starting with eyJ', args: (d) => withFlag(d, '--tunnel-token-file', writeFile('bad1', 'sk-ant-123')), error: /does not look like a tunnel token \(it should start with "eyJ"\)/ },
  { name: 'token JSON lacking a, t, s', args: (d) => withFlag(d, '--tunnel-token-file', writeFile('bad2', b64({ a: 'x', t: 'y' }))), error: /lacks the fields a, t and s/ },
  { name: 'token with inner whitespace', args: (d) => withFlag(d, '--tunnel-token-file', writeFile('bad3', 'eyJh bc')), error: /contains whitespace/ },
  { name: 'token in TUNNEL_TOKEN env malformed', args: (d) => withFlag(d, '--tunnel-token-file', null), env: { TUNNEL_TOKEN: 'hello' }, error: /from the TUNNEL_TOKEN environment variable does not look like a tunnel token/ },
  { name: 'token file and stdin together', args: (d) => [...GOOD(d), '--tunnel-token-stdin'], error: /--tunnel-token-file and --tunnel-token-stdin are mutually exclusive/ },
  { name: 'token on stdin malformed', args: (d) => [...withFlag(d, '--tunnel-token-file', null), '--tunnel-token-stdin'], input: 'garbage\n', error: /from --tunnel-token-stdin does not look like a tunnel token/ },
  { name: 'allowed IP prefix too long', args: (d) => [...GOOD(d), '--allowed-ip', '10.0.0.0/33'], error: /invalid allowed IP "10.0.0.0\/33"/ },
  { name: 'allowed IP is IPv6', args: (d) => [...GOOD(d), '--allowed-ip', 'fd00::/8'], error: /invalid allowed IP "fd00::\/8"/ },
  { name: 'upstream outside allowed IPs', args: (d) => [...withFlag(d, '--route', 'docs=http://192.168.1.10:8080'), '--allowed-ip', '10.0.0.0/8'], error: /route "docs" points to 192.168.1.10, which the proxy will refuse/ },
  // Non-canonical IPv4 spellings: judged as the dotted-quad the dialler would use, both forms named.
  ...(
    [
      ['2130771969', '127.1.0.1'],
      ['0177.1.0.1', '127.1.0.1'],
      ['0x7f.1.0.1', '127.1.0.1'],
      ['127.65537', '127.1.0.1'],
      ['134744072', '8.8.8.8'],
      ['[::ffff:127.0.0.1]', '127.0.0.1'],
      ['0.0.0.0', '0.0.0.0'],
    ] as const
  ).map(([written, canonical]) => ({
    name: `non-canonical upstream ${written}`,
    args: (d: string) => withFlag(d, '--route', `docs=http://${written}:8080`),
    error: new RegExp(`route "docs" points to ${(written === canonical ? canonical : `${written} (= ${canonical})`).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, which the proxy will refuse`),
  })),
  {
    name: '0.0.0.0 even with a catch-all allowed range',
    args: (d) => [...withFlag(d, '--route', 'docs=http://0.0.0.0:8080'), '--allowed-ip', '0.0.0.0/0'],
    error: /points to 0\.0\.0\.0, which the proxy will refuse: it is in 0\.0\.0\.0\/8/,
  },
  { name: 'public upstream with default ranges', args: (d) => withFlag(d, '--route', 'docs=http://8.8.8.8:80'), error: /points to 8.8.8.8.*outside the allowed IPs \(10.0.0.0\/8, 172.16.0.0\/12, 192.168.0.0\/16\)/ },
  { name: 'loopback upstream', args: (d) => withFlag(d, '--route', 'docs=http://127.0.0.1:8080'), error: /points to 127.0.0.1/ },
  { name: 'unknown engine', args: (d) => [...GOOD(d), '--proxy', 'nginx'], error: /argument 'nginx' is invalid. Allowed choices are official, builtin/ },
  { name: 'unknown flow', args: (d) => withFlag(d, '--flow', 'oauth'), error: /argument 'oauth' is invalid/ },
  { name: 'dir is a file', args: () => withFlag(work, '--dir', path.join(work, 'token')), error: /--dir .*token is not a directory/ },
  { name: 'unknown flag', args: (d) => [...GOOD(d), '--tunnel-token', 'eyJabc'], error: /unknown option '--tunnel-token'/ },
  // A token typed on the command line (ps, shell history): refused, with where a token does go.
  { name: 'a token as a flag value', args: (d) => [...withFlag(d, '--tunnel-token-file', null), '--token', 'eyJabc'], error: /unknown option '--token'\nhint: a token never travels on the command line: use --tunnel-token-file FILE, --tunnel-token-stdin or the TUNNEL_TOKEN environment variable/ },
  { name: 'https upstream without a CA to verify it', args: (d) => withFlag(d, '--route', 'docs=https://10.0.0.5:8443'), error: /route "docs" has an https upstream, but there is no CA to verify it with/ },
  { name: 'upstream CA file holding a private key', args: (d) => [...withFlag(d, '--route', 'docs=https://10.0.0.5:8443'), '--upstream-ca-file', writeFile('key.pem', '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n')], error: /--upstream-ca-file .*key.pem contains a private key/ },
  { name: 'upstream CA file without a certificate', args: (d) => [...GOOD(d), '--upstream-ca-file', writeFile('notpem', 'hello')], error: /--upstream-ca-file .*notpem holds no PEM certificate/ },
  {
    name: 'CA certificate without its key',
    args: (d) => GOOD(d),
    setup: (d) => {
      fs.mkdirSync(path.join(d, 'data'), { recursive: true });
      fs.writeFileSync(path.join(d, 'data', 'ca.crt'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    },
    error: /data\/ca.crt exists but data\/ca.key is missing: refusing to create a second CA/,
  },
  {
    // A re-run must say what is wrong with the routes it found, not that none were given.
    name: 'existing config with routes hand-edited into a YAML list',
    args: (d) => withFlag(d, '--route', null),
    setup: (d) => {
      fs.mkdirSync(path.join(d, 'config'), { recursive: true });
      fs.writeFileSync(path.join(d, 'config', 'mcp-proxy.yaml'), 'listen_addr: ":8080"\ntunnel_domain: abcd1234.tunnel.anthropic.com\ntls:\n  cert_file: /data/tls.crt\n  key_file: /data/tls.key\nroutes:\n  - docs: "http://docs-mcp:8080"\n');
    },
    error: /config\/mcp-proxy.yaml: routes must be a map of hostname to upstream URL, not a list/,
  },
  {
    name: 'existing config that is not YAML',
    args: (d) => withFlag(d, '--route', null),
    setup: (d) => {
      fs.mkdirSync(path.join(d, 'config'), { recursive: true });
      fs.writeFileSync(path.join(d, 'config', 'mcp-proxy.yaml'), 'routes:\n  docs: "http://docs-mcp:8080\n  wiki: [\n');
    },
    error: /config\/mcp-proxy.yaml is not valid YAML/,
  },
];

describe('init refuses bad input with one clear line and writes nothing', () => {
  it('covers at least 20 distinct bad inputs', () => expect(cases.length).toBeGreaterThanOrEqual(20));

  it.each(cases)('$name', async (c) => {
    const dir = fs.mkdtempSync(path.join(work, 'dep-'));
    c.setup?.(dir);
    const before = snapshotTree(dir);
    const result = await runCli(c.args(dir), { env: c.env, input: c.input });
    expect(result.stderr).toMatch(c.error);
    expect(result.exitCode).toBe(c.exit ?? 2);
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const lines = result.stderr.trim().split('\n').filter((l) => !l.startsWith('hint:') && !l.startsWith('(run with --help'));
    expect(lines).toHaveLength(1);
    expect(result.stdout).toBe('');
    expect(snapshotTree(dir)).toEqual(before);
    // A token never appears in what we print.
    expect(result.stderr).not.toContain(fakeTunnelToken());
  });
});

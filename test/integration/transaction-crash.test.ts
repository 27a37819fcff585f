import { createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STALE_AFTER_MS, sweepStaleTemps, tempPathFor, WRITER_TAG, writeFileSafely } from '../../src/deployment/atomic-file.js';
import { recoverDeploymentDir } from '../../src/deployment/transaction.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';

/**
 * The transaction behind every multi-file write, killed (SIGKILL, in a child process running the built
 * module) at EVERY step: after each file is staged, at the commit, after each rename. The next run must
 * leave all targets old (rolled back) or all new (completed), say which, and leave no temp file.
 */
const MODULE = pathToFileURL(path.join(REPO_ROOT, 'dist', 'deployment', 'transaction.js')).href;
const FILES = ['data/tls.key.previous', 'data/tls.crt.previous', 'data/tls.key', 'data/tls.crt'];
let work: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-txn-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function deployment(name: string): string {
  const dir = path.join(work, name);
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  for (const f of FILES) fs.writeFileSync(path.join(dir, f), `old ${f}\n`, { mode: 0o600 });
  return dir;
}

/** Runs one 4-file transaction in a child that SIGKILLs itself at (step, index); returns whether it died. */
async function crashAt(dir: string, step: string, index: number, removeSecondPair = false): Promise<boolean> {
  const changes = FILES.map((f, i) => (removeSecondPair && i < 2 ? { path: path.join(dir, f), remove: true } : { path: path.join(dir, f), content: `new ${f}\n`, options: { mode: 0o600 } }));
  const script = `
    const { writeFilesTogether } = await import(${JSON.stringify(MODULE)});
    const changes = ${JSON.stringify(changes)};
    await writeFilesTogether(${JSON.stringify(path.join(dir, 'data'))}, 'renew-cert', changes, {
      onStep: (s, i) => { if (s === ${JSON.stringify(step)} && i === ${index}) process.kill(process.pid, 'SIGKILL'); },
    });`;
  const r = await execa(process.execPath, ['--input-type=module', '-e', script], { reject: false, timeout: 20_000 });
  if (r.signal !== 'SIGKILL') expect(r.exitCode, r.stderr).toBe(0);
  return r.signal === 'SIGKILL';
}

const contents = (dir: string): string[] => FILES.map((f) => (fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f), 'utf8').split(' ')[0]! : 'absent'));
const leftovers = (dir: string): string[] => fs.readdirSync(path.join(dir, 'data')).filter((n) => n.startsWith('.'));

const POINTS: Array<[string, number]> = [
  ['staged', 0], ['staged', 1], ['staged', 2], ['staged', 3],
  ['committed', 0],
  ['applied', 0], ['applied', 1], ['applied', 2], ['applied', 3],
];

describe('a transaction killed at every step', () => {
  it.each(POINTS)('killed after %s %i: the next run rolls back (before the commit) or completes (after), and says which', async (step, index) => {
    const dir = deployment(`at-${step}-${index}`);
    expect(await crashAt(dir, step, index)).toBe(true);
    expect(leftovers(dir).length).toBeGreaterThan(0);
    const notes = await recoverDeploymentDir(dir);
    if (step === 'staged') {
      expect(contents(dir)).toEqual(['old', 'old', 'old', 'old']);
      expect(notes).toEqual([{ kind: 'rolled-back', files: expect.arrayContaining([expect.stringMatching(/^data\/\.tls\..*\.mcp-tunnel\.tmp$/)]) }]);
    } else {
      expect(contents(dir)).toEqual(['new', 'new', 'new', 'new']);
      expect(notes).toEqual([{ kind: 'completed', operation: 'renew-cert', files: FILES }]);
    }
    expect(leftovers(dir)).toEqual([]);
    expect(await recoverDeploymentDir(dir)).toEqual([]);
  });

  it('removals are part of the transaction: a half-written rollback pair is never kept', async () => {
    const dir = deployment('remove');
    expect(await crashAt(dir, 'applied', 0, true)).toBe(true);
    await recoverDeploymentDir(dir);
    expect(contents(dir)).toEqual(['absent', 'absent', 'new', 'new']);
    expect(leftovers(dir)).toEqual([]);
  });

  it('the next command of the CLI completes it and says so on stderr (stdout stays clean for --json)', async () => {
    const dir = deployment('cli');
    fs.mkdirSync(path.join(dir, 'config'));
    fs.writeFileSync(path.join(dir, 'config', 'mcp-proxy.yaml'), 'listen_addr: ":8080"\ntunnel_domain: abcd1234.tunnel.anthropic.com\ntls:\n  cert_file: /data/tls.crt\n  key_file: /data/tls.key\nroutes:\n  docs: "http://10.0.0.5:8080"\n');
    expect(await crashAt(dir, 'applied', 1)).toBe(true);
    const r = await runCli(['routes', 'list', '--json', '--dir', dir]);
    expect(r.exitCode).toBe(0);
    expect(() => JSON.parse(r.stdout)).not.toThrow();
    expect(r.stderr).toBe('warning: an earlier renew-cert was interrupted after it had everything on disk: completed it (data/tls.key.previous, data/tls.crt.previous, data/tls.key, data/tls.crt)');
    expect(contents(dir)).toEqual(['new', 'new', 'new', 'new']);
  });
});

describe('the first init killed between writing ca.key and ca.crt', () => {
  it('is finished by the next init (same CA, nothing left over), which says so', async () => {
    const dir = path.join(work, 'first-init');
    const tokenValue = Buffer.from(JSON.stringify({ a: 'a', t: 't', s: 's' })).toString('base64');
    const token = path.join(work, 'first-init-token');
    fs.writeFileSync(token, tokenValue);
    const dist = (m: string): string => JSON.stringify(pathToFileURL(path.join(REPO_ROOT, 'dist', m)).href);
    // init's own plan and apply, killed right after the first rename (ca.key in place, ca.crt not yet).
    const script = `
      const { planInit, applyInit, deploymentPaths } = await import(${dist('deployment/init.js')});
      const { readExistingDeployment } = await import(${dist('deployment/existing.js')});
      const { VERSION } = await import(${dist('version.js')});
      const dir = ${JSON.stringify(dir)};
      const settings = { dir, tunnelId: 'tnl_01abc', tunnelDomain: 'abcd1234.tunnel.anthropic.com', tunnelToken: ${JSON.stringify(tokenValue)}, routes: [{ name: 'docs', url: 'http://10.0.0.5:8080' }], engine: 'official' };
      const plan = await planInit(settings, await readExistingDeployment(deploymentPaths(dir)), { now: new Date(), invoker: { uid: process.getuid(), gid: process.getgid() }, version: VERSION });
      await applyInit(plan, { hooks: { onStep: (s, i) => { if (s === 'applied' && i === 0) process.kill(process.pid, 'SIGKILL'); } } });`;
    const killed = await execa(process.execPath, ['--input-type=module', '-e', script], { reject: false, timeout: 30_000 });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    expect(fs.existsSync(path.join(dir, 'data/ca.key'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'data/ca.crt'))).toBe(false);

    const r = await runCli(['init', '--dir', dir, '--tunnel-id', 'tnl_01abc', '--tunnel-domain', 'abcd1234.tunnel.anthropic.com', '--tunnel-token-file', token, '--route', 'docs=http://10.0.0.5:8080']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^warning: an earlier init was interrupted after it had everything on disk: completed it \(data\/ca.key, data\/ca.crt, /);
    expect(r.stdout).toMatch(/CA: reused data\/ca.crt/);
    const ca = new X509Certificate(fs.readFileSync(path.join(dir, 'data/ca.crt')));
    expect(ca.checkPrivateKey(createPrivateKey(fs.readFileSync(path.join(dir, 'data/ca.key'))))).toBe(true);
    expect(fs.readdirSync(dir).concat(fs.readdirSync(path.join(dir, 'data'))).filter((n) => /mcp-tunnel/.test(n))).toEqual([]);
  });
});

describe('renew-cert: the rollback copy is always a matching pair', () => {
  it('after repairing a "new key + old cert" state it keeps no mismatched copy, and removes a broken one', async () => {
    const dir = path.join(work, 'renew');
    const token = path.join(work, 'renew-token');
    fs.writeFileSync(token, Buffer.from(JSON.stringify({ a: 'a', t: 't', s: 's' })).toString('base64'));
    const init = await runCli(['init', '--dir', dir, '--tunnel-id', 'tnl_01abc', '--tunnel-domain', 'abcd1234.tunnel.anthropic.com', '--tunnel-token-file', token, '--route', 'docs=http://10.0.0.5:8080']);
    expect(init.exitCode).toBe(0);
    const data = (f: string): string => path.join(dir, 'data', f);
    const pairMatches = (crt: string, key: string): boolean => new X509Certificate(fs.readFileSync(data(crt))).checkPrivateKey(createPrivateKey(fs.readFileSync(data(key))));
    expect((await runCli(['renew-cert', '--dir', dir, '--force'])).exitCode).toBe(0);
    expect(pairMatches('tls.crt.previous', 'tls.key.previous')).toBe(true);

    // The state a torn swap used to leave: the new key with the old certificate; and a broken rollback copy.
    fs.copyFileSync(data('tls.crt.previous'), data('tls.crt'));
    fs.writeFileSync(data('tls.key.previous'), fs.readFileSync(data('tls.key')));
    const r = await runCli(['renew-cert', '--dir', dir]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/the old pair was unusable: data\/tls.key does not belong to data\/tls.crt/);
    expect(r.stdout).not.toMatch(/kept as data\/tls.crt.previous/);
    expect(pairMatches('tls.crt', 'tls.key')).toBe(true);
    expect(fs.existsSync(data('tls.crt.previous')) || fs.existsSync(data('tls.key.previous'))).toBe(false);

    // A half rollback copy goes too; a matching one is kept when the live pair is unusable.
    expect((await runCli(['renew-cert', '--dir', dir, '--force'])).exitCode).toBe(0);
    fs.rmSync(data('tls.key.previous'));
    fs.writeFileSync(data('tls.key'), fs.readFileSync(data('tls.key')).toString().replace(/[A-Za-z]/, (c) => (c === 'A' ? 'B' : 'A')));
    expect((await runCli(['renew-cert', '--dir', dir])).exitCode).toBe(0);
    expect(fs.existsSync(data('tls.crt.previous'))).toBe(false);
  });
});

describe('stale temp files: ours and only ours, only once the writer is gone', () => {
  it('removes a dead writer\'s temp, keeps a live writer\'s, another namespace\'s until it is old, and anything not ours', async () => {
    const dir = path.join(work, 'sweep');
    fs.mkdirSync(dir);
    const dead = execa(process.execPath, ['-e', '']);
    const deadPid = dead.pid!;
    await dead;
    const ours = (pid: number, tag = WRITER_TAG): string => path.join(dir, `.tls.key.${tag}-${pid}-0123abcd.mcp-tunnel.tmp`);
    const files = {
      deadWriter: ours(deadPid),
      liveWriter: ours(process.pid),
      otherNamespaceFresh: ours(deadPid, 'ffffffff' === WRITER_TAG ? 'eeeeeeee' : 'ffffffff'),
      otherNamespaceOld: path.join(dir, `.ca.key.${'ffffffff' === WRITER_TAG ? 'eeeeeeee' : 'ffffffff'}-1-0123abcd.mcp-tunnel.tmp`),
      notOurs1: path.join(dir, '.tls.key.0123456789ab.tmp'),
      notOurs2: path.join(dir, 'tls.key.1234'),
      notOurs3: path.join(dir, 'notes.mcp-tunnel.tmp'),
    };
    for (const f of Object.values(files)) fs.writeFileSync(f, 'x');
    const old = (Date.now() - STALE_AFTER_MS - 60_000) / 1000;
    fs.utimesSync(files.otherNamespaceOld, old, old);
    const dirLookalike = ours(deadPid).replace('0123abcd', '4567cdef');
    fs.mkdirSync(dirLookalike);
    fs.symlinkSync('/etc/hostname', ours(deadPid).replace('0123abcd', '89abcdef'));

    const removed = await sweepStaleTemps([dir]);
    expect(removed.sort()).toEqual([files.deadWriter, files.otherNamespaceOld].sort());
    for (const keep of [files.liveWriter, files.otherNamespaceFresh, files.notOurs1, files.notOurs2, files.notOurs3, dirLookalike]) expect(fs.existsSync(keep)).toBe(true);
    expect(fs.existsSync('/etc/hostname')).toBe(true);
  });

  it('a damaged journal is left alone and reported, and the command still runs', async () => {
    const dir = deployment('damaged');
    const dead = execa(process.execPath, ['-e', '']);
    const deadPid = dead.pid!;
    await dead;
    const journal = path.join(dir, 'data', `.mcp-tunnel-txn.${WRITER_TAG}-${deadPid}-0123abcd.json`);
    fs.writeFileSync(journal, '{"version":1,"operation":"renew-cert","entries":[{"target":"../../etc/passwd"');
    expect(await recoverDeploymentDir(dir)).toEqual([{ kind: 'unreadable', files: [path.relative(dir, journal)] }]);
    fs.writeFileSync(journal, JSON.stringify({ version: 1, operation: 'x', entries: [{ target: '../../etc/hostname', remove: true }] }));
    expect(await recoverDeploymentDir(dir)).toEqual([{ kind: 'unreadable', files: [path.relative(dir, journal)] }]);
    expect(fs.existsSync('/etc/hostname')).toBe(true);
    expect(contents(dir)).toEqual(['old', 'old', 'old', 'old']);
    // The command goes on (here to its own refusal: this directory has no CA) after the warning.
    const r = await runCli(['renew-cert', '--dir', dir]);
    expect(r.stderr.split('\n')[0]).toMatch(/^warning: the journal of an interrupted write is damaged, so it was left alone: data\/\.mcp-tunnel-txn\..*\.json; check the deployment/);
    expect(r.stderr).toMatch(/^error: data\/ca.crt and data\/ca.key missing/m);
    expect(r.exitCode).toBe(2);
  });

  it('a temp name says what it is for and who wrote it', () => {
    expect(path.basename(tempPathFor('/x/data/tls.key'))).toMatch(new RegExp(`^\\.tls\\.key\\.${WRITER_TAG}-${process.pid}-[0-9a-f]{8}\\.mcp-tunnel\\.tmp$`));
  });

  it('as root, a new file takes the owner of its directory', async () => {
    if (process.getuid?.() !== 0) return;
    const dir = path.join(work, 'owned');
    fs.mkdirSync(dir);
    fs.chownSync(dir, 4321, 4322);
    await writeFileSafely(path.join(dir, 'f'), 'x', { mode: 0o600 });
    const st = fs.statSync(path.join(dir, 'f'));
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([4321, 4322, 0o600]);
    await writeFileSafely(path.join(dir, 'g'), 'x', { mode: 0o600, owner: { uid: 65532, gid: 65532 } });
    expect(fs.statSync(path.join(dir, 'g')).uid).toBe(65532);
  });
});

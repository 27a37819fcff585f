import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  commandSource,
  fileSource,
  identityTokenProvider,
  readWifSettings,
  splitCommandLine,
  validateApiUrl,
  validateFederationRuleId,
  validateOrganizationId,
  validateWorkspaceId,
  withWifSettings,
} from '../../src/anthropic/index.js';
import { EnvironmentError, ExitCode, UserError, ValidationError } from '../../src/errors.js';
import { fakeJwt } from '../helpers/anthropic-standin.js';

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mct-idtok-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

async function rejection(p: Promise<unknown>): Promise<UserError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  return err as UserError;
}

describe('identity token sources', () => {
  it('a file is re-read on every call (a projected token rotates under us)', async () => {
    const file = path.join(work, 'jwt');
    const a = fakeJwt({ jti: 'a' });
    const b = fakeJwt({ jti: 'b' });
    fs.writeFileSync(file, `${a}\n`);
    const provider = identityTokenProvider(fileSource(file, '--identity-token-file'));
    expect(await provider()).toBe(a);
    fs.writeFileSync(file, b);
    expect(await provider()).toBe(b);
  });

  it('a missing, empty or non-JWT file is one line naming the file, never its content', async () => {
    const missing = await rejection(Promise.resolve(identityTokenProvider(fileSource(path.join(work, 'nope'), '--identity-token-file'))()));
    expect(missing).toBeInstanceOf(ValidationError);
    expect(missing.message).toMatch(/identity token file .*nope \(--identity-token-file\) does not exist/);
    const empty = path.join(work, 'empty');
    fs.writeFileSync(empty, '\n');
    expect((await rejection(Promise.resolve(identityTokenProvider(fileSource(empty, 'x'))()))).message).toMatch(/is empty/);
    const junk = path.join(work, 'junk');
    fs.writeFileSync(junk, 'this is a secret but not a jwt');
    const err = await rejection(Promise.resolve(identityTokenProvider(fileSource(junk, 'x'))()));
    expect(err.message).toMatch(/does not hold a JWT/);
    expect(`${err.message}${err.hint}`).not.toContain('secret');
  });

  it('a command runs without a shell, every time, and its output is never part of an error', async () => {
    const counter = path.join(work, 'count');
    const script = path.join(work, 'print.mjs');
    fs.writeFileSync(
      script,
      `import fs from 'node:fs';
const n = Number(fs.existsSync(${JSON.stringify(counter)}) ? fs.readFileSync(${JSON.stringify(counter)}, 'utf8') : 0) + 1;
fs.writeFileSync(${JSON.stringify(counter)}, String(n));
process.stdout.write(${JSON.stringify(fakeJwt({ jti: 'cmd' }))} + '\\n');
`,
    );
    const provider = identityTokenProvider(commandSource(`${process.execPath} '${script}'`, '--identity-token-command'));
    expect(await provider()).toMatch(/^ey/);
    await provider();
    expect(fs.readFileSync(counter, 'utf8')).toBe('2');

    const leaky = path.join(work, 'leaky.mjs');
    fs.writeFileSync(leaky, "process.stdout.write('leaked-stdout'); process.stderr.write('leaked-stderr'); process.exit(7);\n");
    const failed = await rejection(Promise.resolve(identityTokenProvider(commandSource(`${process.execPath} ${leaky}`, 'x'))()));
    expect(failed).toBeInstanceOf(EnvironmentError);
    expect(failed.message).toBe('the identity token command exited with 7');
    expect(`${failed.message}${failed.hint}`).not.toMatch(/leaked/);

    const slow = path.join(work, 'slow.mjs');
    fs.writeFileSync(slow, 'setTimeout(() => {}, 10000);\n');
    const timedOut = await rejection(Promise.resolve(identityTokenProvider(commandSource(`${process.execPath} ${slow}`, 'x', 300))()));
    expect(timedOut.message).toMatch(/timed out/);

    const notFound = await rejection(Promise.resolve(identityTokenProvider(commandSource('/nonexistent/metadata-client --flag', 'x'))()));
    expect(notFound.message).toMatch(/"\/nonexistent\/metadata-client" was not found/);
  });

  it('splits a command line like a shell does words and quotes, and refuses shell syntax', () => {
    expect(splitCommandLine(`gcloud auth print-identity-token --audiences="https://api.anthropic.com" 'a b' c\\ d`)).toEqual([
      'gcloud', 'auth', 'print-identity-token', '--audiences=https://api.anthropic.com', 'a b', 'c d',
    ]);
    expect(splitCommandLine(`curl -s -H "Metadata-Flavor: Google" http://metadata/identity?audience=x`)).toEqual([
      'curl', '-s', '-H', 'Metadata-Flavor: Google', 'http://metadata/identity?audience=x',
    ]);
    expect(splitCommandLine(`a ""`)).toEqual(['a', '']);
    for (const bad of ['cat x | jq', 'a; b', 'echo $TOKEN', 'a > f', '"unterminated', '   ']) {
      expect(() => splitCommandLine(bad)).toThrow(expect.objectContaining({ code: 'IDENTITY_TOKEN_COMMAND_INVALID', exitCode: 2 }));
    }
  });
});

describe('ID validators', () => {
  it('accept the documented shapes and refuse others with exit 2', () => {
    expect(validateFederationRuleId(' fdrl_01ABCdef ')).toBe('fdrl_01ABCdef');
    expect(validateOrganizationId('12345678-90AB-cdef-1234-567890abcdef')).toBe('12345678-90ab-cdef-1234-567890abcdef');
    expect(validateWorkspaceId('wrkspc_011CZkZaBF1tNoB5wlCeusgy')).toBe('wrkspc_011CZkZaBF1tNoB5wlCeusgy');
    expect(validateWorkspaceId('default')).toBe('default');
    expect(validateApiUrl('https://api.anthropic.com/')).toBe('https://api.anthropic.com');
    expect(validateApiUrl('http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080');
    for (const [fn, bad] of [
      [validateFederationRuleId, 'fdrl-1'],
      [validateOrganizationId, 'org_123'],
      [validateWorkspaceId, 'workspace'],
      [validateApiUrl, 'http://api.anthropic.com'],
      [validateApiUrl, 'https://user:pw@api.anthropic.com'],
      [validateApiUrl, 'not a url'],
    ] as const) {
      let err: unknown;
      try {
        fn(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(ValidationError);
      expect((err as UserError).exitCode).toBe(ExitCode.usage);
      expect((err as UserError).hint).toBeTruthy();
    }
  });
});

describe('WIF settings in .env', () => {
  const base = { apiUrl: 'https://api.anthropic.com', federationRuleId: 'fdrl_1', organizationId: '12345678-90ab-cdef-1234-567890abcdef' };

  it('round-trip, keep the user\'s lines, and replace one identity source by the other', () => {
    const mine = '# my notes\nTUNNEL_TOKEN=eyJx\nCUSTOM=1\n';
    const withFile = withWifSettings(mine, { ...base, workspaceId: 'wrkspc_A', identityTokenFile: '/var/run/secrets/token' });
    expect(withFile.startsWith(mine)).toBe(true);
    expect(readWifSettings(withFile)).toEqual({ flow: 'wif', ...base, workspaceId: 'wrkspc_A', identityTokenFile: '/var/run/secrets/token', identityTokenCommand: undefined });
    expect(withWifSettings(withFile, { ...base, workspaceId: 'wrkspc_A', identityTokenFile: '/var/run/secrets/token' })).toBe(withFile);

    const withCommand = withWifSettings(withFile, { ...base, identityTokenCommand: '/usr/bin/metadata-token --aud x' });
    const settings = readWifSettings(withCommand);
    expect(settings.identityTokenFile).toBeUndefined();
    expect(settings.workspaceId).toBeUndefined();
    expect(settings.identityTokenCommand).toBe('/usr/bin/metadata-token --aud x');
    expect(withCommand).toContain('CUSTOM=1');
    expect(readWifSettings(undefined)).toEqual({});
  });
});

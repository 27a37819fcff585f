import path from 'node:path';
import fs from 'node:fs/promises';
import { execa } from 'execa';
import { identityTokenFromFile, identityTokenFromValue } from '@anthropic-ai/sdk/lib/credentials/identity-token';
import type { IdentityTokenProvider } from '@anthropic-ai/sdk/lib/credentials/types';
import { EnvironmentError, ValidationError } from '../errors.js';

/**
 * Where the OIDC JWT (the workload's identity) comes from. It is short-lived and rotated by its issuer,
 * so it is never stored by us: a file is re-read on every exchange (SDK's identityTokenFromFile), a
 * command is run again on every exchange, a value from the environment is read when the process starts.
 */
export type IdentityTokenSource =
  | { kind: 'file'; path: string; origin: string }
  | { kind: 'command'; command: string; argv: string[]; timeoutMs: number; origin: string }
  | { kind: 'value'; value: string; origin: string };

export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;
/** The token endpoint's limit on an assertion (the SDK checks it too). */
const MAX_JWT_BYTES = 16 * 1024;

/** Human description for messages: never the token, only where it comes from. */
export function describeSource(source: IdentityTokenSource): string {
  switch (source.kind) {
    case 'file':
      return `the identity token file ${source.path} (${source.origin})`;
    case 'command':
      return `the identity token command (${source.origin})`;
    case 'value':
      return `the identity token in ${source.origin}`;
  }
}

/**
 * Splits a command line into argv the way a POSIX shell would for words and quotes, and nothing more:
 * no variables, globs, pipes or redirections. The command runs without a shell.
 */
export function splitCommandLine(line: string): string[] {
  const argv: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) word += line[++i];
      else word += c;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) argv.push(word);
      word = '';
      inWord = false;
    } else if ('|&;<>()`$'.includes(c)) {
      throw new ValidationError(
        `--identity-token-command contains "${c}": the command runs without a shell`,
        'give one program and its arguments (e.g. --identity-token-command "gcloud auth print-identity-token --audiences=https://api.anthropic.com"), or wrap a pipeline in a script',
        'IDENTITY_TOKEN_COMMAND_INVALID',
      );
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new ValidationError('--identity-token-command has an unterminated quote', 'close every quote in the command', 'IDENTITY_TOKEN_COMMAND_INVALID');
  if (inWord) argv.push(word);
  if (argv.length === 0) throw new ValidationError('--identity-token-command is empty', 'give the program that prints the identity token (JWT) on stdout', 'IDENTITY_TOKEN_COMMAND_INVALID');
  return argv;
}

export function commandSource(command: string, origin: string, timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): IdentityTokenSource {
  return { kind: 'command', command, argv: splitCommandLine(command), timeoutMs, origin };
}

export function fileSource(file: string, origin: string): IdentityTokenSource {
  if (file.trim() === '') throw new ValidationError(`${origin} is empty`, 'give the path of the file holding the identity token (JWT)', 'IDENTITY_TOKEN_FILE_UNREADABLE');
  return { kind: 'file', path: path.resolve(file), origin };
}

/** Checks a file source can be read now (it is read again on every exchange). */
export async function checkFileSource(source: IdentityTokenSource): Promise<void> {
  if (source.kind !== 'file') return;
  try {
    const stat = await fs.stat(source.path);
    if (!stat.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
    await fs.access(source.path, fs.constants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : code === 'EISDIR' ? 'is not a file' : `cannot be read (${code})`;
    throw new ValidationError(
      `${describeSource(source)} ${why}`,
      'point --identity-token-file (or ANTHROPIC_IDENTITY_TOKEN_FILE) at the file your platform writes the OIDC token to, e.g. a projected service-account token',
      'IDENTITY_TOKEN_FILE_UNREADABLE',
    );
  }
}

/** A JWT is three base64url parts; we check the shape only, and never echo it. */
function checkJwt(token: string, source: IdentityTokenSource): string {
  const t = token.trim();
  const hint = 'the identity token must be the OIDC JWT your platform issues for this workload (header.payload.signature)';
  if (t === '') throw new ValidationError(`${describeSource(source)} is empty`, hint, 'IDENTITY_TOKEN_INVALID');
  if (Buffer.byteLength(t) > MAX_JWT_BYTES) throw new ValidationError(`${describeSource(source)} is larger than 16 KiB`, hint, 'IDENTITY_TOKEN_INVALID');
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(t)) {
    throw new ValidationError(`${describeSource(source)} does not hold a JWT`, hint, 'IDENTITY_TOKEN_INVALID');
  }
  return t;
}

async function runCommand(source: Extract<IdentityTokenSource, { kind: 'command' }>): Promise<string> {
  const [program, ...args] = source.argv as [string, ...string[]];
  // stdout is the secret: it is returned, never logged, never part of an error message. stderr is not
  // shown either (a CLI may echo a token there too); the exit status says enough to act on.
  const result = await execa(program, args, {
    shell: false,
    reject: false,
    stdin: 'ignore',
    timeout: source.timeoutMs,
    maxBuffer: 64 * 1024,
    stripFinalNewline: true,
  });
  const hint = `run the command by hand to see what it prints: ${source.command}`;
  if (result.timedOut) throw new EnvironmentError(`the identity token command timed out after ${Math.round(source.timeoutMs / 1000)}s`, hint, undefined, 'IDENTITY_TOKEN_COMMAND_FAILED');
  const code = (result as { code?: string }).code;
  // execa's own text: a spawn failure that lost its `code` still names ENOENT in the message.
  if (code === 'ENOENT' || (result.failed && result.exitCode === undefined && /ENOENT/.test(String(result.message)))) {
    throw new ValidationError(`the identity token command "${program}" was not found`, 'give the full path of the program, or fix PATH', 'IDENTITY_TOKEN_COMMAND_NOT_FOUND');
  }
  if (result.failed || result.exitCode !== 0) {
    throw new EnvironmentError(`the identity token command exited with ${result.exitCode ?? result.signal ?? 'an error'}`, hint, undefined, 'IDENTITY_TOKEN_COMMAND_FAILED');
  }
  return String(result.stdout);
}

/**
 * The SDK's IdentityTokenProvider for a source: called by the OIDC federation provider before every
 * exchange. Failures become one-line UserErrors (the SDK passes them through unchanged).
 */
export function identityTokenProvider(source: IdentityTokenSource): IdentityTokenProvider {
  switch (source.kind) {
    case 'file': {
      const read = identityTokenFromFile(source.path);
      return async () => {
        let text: string;
        try {
          text = await read();
        } catch {
          await checkFileSource(source);
          throw new ValidationError(`${describeSource(source)} is empty`, 'the file must hold the OIDC JWT your platform issues for this workload', 'IDENTITY_TOKEN_INVALID');
        }
        return checkJwt(text, source);
      };
    }
    case 'value': {
      const read = identityTokenFromValue(source.value);
      return async () => checkJwt(await read(), source);
    }
    case 'command':
      return async () => checkJwt(await runCommand(source), source);
  }
}

/**
 * Every failure a user can act on is a UserError: one line of message, one line of hint, an exit code.
 * The CLI prints `error: <message>` and `hint: <hint>` and exits with `exitCode`; nothing else in the
 * code base prints. Anything that is not a UserError is a bug and is reported as one.
 */
export const ExitCode = {
  ok: 0,
  /** Unexpected failure: a bug, or an environment problem we did not anticipate. */
  failure: 1,
  /** The user's input (flags, files, config) is invalid. Nothing was written. */
  usage: 2,
  /** A precondition outside our control failed (Docker down, API refused, file unreadable). */
  environment: 3,
  /** The operation was aborted by the user (declined a confirmation, Ctrl-C). */
  aborted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface UserErrorOptions {
  hint?: string;
  /**
   * A stable identifier (SCREAMING_SNAKE, documented in docs/errors.md). Code that needs to know which
   * failure happened compares this, never the message text; tests assert it too.
   */
  code?: string;
  exitCode?: ExitCode;
  cause?: unknown;
}

export class UserError extends Error {
  readonly hint: string | undefined;
  readonly exitCode: ExitCode;
  readonly code: string | undefined;

  constructor(message: string, options: UserErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? ExitCode.failure;
    this.code = options.code;
  }
}

/** Bad flags, bad values, bad files: the user can fix it by changing what they typed. */
export class ValidationError extends UserError {
  constructor(message: string, hint?: string, code?: string) {
    super(message, { hint, exitCode: ExitCode.usage, code });
  }
}

/** The proxy configuration is invalid. Messages follow the official proxy's wording where it has one. */
export class ConfigError extends UserError {
  constructor(message: string, hint?: string, code?: string) {
    super(message, { hint, exitCode: ExitCode.usage, code });
  }
}

/** Something outside the tool failed: Docker, the network, the file system, the Anthropic API. */
export class EnvironmentError extends UserError {
  constructor(message: string, hint?: string, cause?: unknown, code?: string) {
    super(message, { hint, exitCode: ExitCode.environment, cause, code });
  }
}

/** The user said no (or pressed Ctrl-C) at a prompt. */
export class AbortedError extends UserError {
  constructor(message = 'aborted', hint?: string) {
    super(message, { hint, exitCode: ExitCode.aborted, code: 'USER_ABORTED' });
  }
}

export function isUserError(err: unknown): err is UserError {
  return err instanceof UserError;
}

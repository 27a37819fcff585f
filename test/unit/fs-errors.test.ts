import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { asEnvironmentError, environmentErrorFor, isSystemError } from '../../src/deployment/fs-errors.js';
import { ValidationError } from '../../src/errors.js';

function errnoOf(fn: () => unknown): NodeJS.ErrnoException {
  try {
    fn();
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
  throw new Error('expected an error');
}

describe('operating-system errors are the environment (exit 3), with one line and a hint', () => {
  it('ENOTDIR from a real mkdir under a file', () => {
    const err = errnoOf(() => fs.mkdirSync('/etc/hostname/sub'));
    if (!isSystemError(err)) throw new Error('expected an errno error');
    const e = environmentErrorFor(err);
    expect([e.exitCode, e.code, e.message]).toEqual([3, 'FS_NOT_A_DIRECTORY', 'cannot create the directory /etc/hostname/sub: a part of the path is a file, not a directory']);
    expect(e.hint).toMatch(/\S/);
  });

  it('the caller may name the action and the file', () => {
    const err = Object.assign(new Error('EACCES: permission denied, open \'/x/.tls.key.tmp\''), { code: 'EACCES', syscall: 'open', path: '/x/.tls.key.tmp' });
    const e = environmentErrorFor(err, { action: 'write', file: '/x/tls.key' });
    expect([e.code, e.message]).toEqual(['FS_PERMISSION_DENIED', 'cannot write /x/tls.key: permission denied']);
  });

  it('a network errno names the address', () => {
    const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED', syscall: 'connect', address: '127.0.0.1', port: 9 });
    expect(environmentErrorFor(err).message).toBe('cannot connect to 127.0.0.1:9: connection refused');
  });

  it('bugs (Node ERR_* codes, plain errors) and UserErrors pass through unchanged', () => {
    const bug = Object.assign(new TypeError('bad arg'), { code: 'ERR_INVALID_ARG_TYPE' });
    expect(isSystemError(bug)).toBe(false);
    expect(asEnvironmentError(bug)).toBe(bug);
    const user = new ValidationError('x', 'y');
    expect(asEnvironmentError(user)).toBe(user);
  });
});

import { execFile } from 'node:child_process';

export interface OpensslResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `openssl` CLI; resolves with the exit code instead of throwing, so tests can assert failures. */
export function openssl(args: string[], opts: { cwd?: string } = {}): Promise<OpensslResult> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd: opts.cwd, encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') {
        reject(err); // openssl missing or killed: not an answer a test can assert on
        return;
      }
      resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr });
    });
  });
}

/** Like openssl() but fails the test with openssl's own words when it exits non-zero. */
export async function opensslOk(args: string[], opts: { cwd?: string } = {}): Promise<string> {
  const r = await openssl(args, opts);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} exited ${r.code}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EnvironmentError } from '../errors.js';
import { readBufferIfExists, writeFileSafely } from './atomic-file.js';

/**
 * DIR/build/: the self-contained Docker build context of the builtin proxy image (compose/Dockerfile, the
 * proxy's own bundle dist/bundle/mcp-proxy.cjs, the image's entry point, and the CLI bundle
 * dist/bundle/mcp-tunnel.mjs for every other command run in the image: health, renew-cert), so `docker compose up -d` builds it on any host the
 * deployment directory is copied to, without this package installed there.
 */

export const BUILD_CONTEXT_DIR = 'build';
export const BUNDLE_FILE = 'mcp-tunnel.mjs';
/** The proxy alone (src/proxy/main.ts): what the image runs. */
export const PROXY_BUNDLE_FILE = 'mcp-proxy.cjs';

const PACKAGE_NAME = 'mcp-tunnel';

/**
 * The root of the mcp-tunnel package: the nearest directory above `from` holding a package.json named
 * "mcp-tunnel". Works from src/ (tests), dist/ (a checkout or an installed tarball) and
 * dist/bundle/ (the bundle on the host).
 */
export function findPackageRoot(from: string = fileURLToPath(import.meta.url)): string {
  let dir = path.dirname(path.resolve(from));
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (existsSync(candidate)) {
      try {
        if ((JSON.parse(readFileSync(candidate, 'utf8')) as { name?: unknown }).name === PACKAGE_NAME) return dir;
      } catch {
        // An unreadable or broken package.json of someone else: keep looking upwards.
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new EnvironmentError(
        `cannot find the mcp-tunnel package (no package.json named "${PACKAGE_NAME}" above ${path.dirname(path.resolve(from))})`,
        'reinstall mcp-tunnel (npm install -g mcp-tunnel, or npx mcp-tunnel)',
        undefined, 'PACKAGE_INCOMPLETE',
      );
    }
    dir = parent;
  }
}

/** The files of the build context inside a package. */
export function buildContextSources(packageRoot: string): { dockerfile: string; bundle: string; proxyBundle: string } {
  return {
    dockerfile: path.join(packageRoot, 'compose', 'Dockerfile'),
    bundle: path.join(packageRoot, 'dist', 'bundle', BUNDLE_FILE),
    proxyBundle: path.join(packageRoot, 'dist', 'bundle', PROXY_BUNDLE_FILE),
  };
}

export interface WriteBuildContextOptions {
  /** Defaults to the package this module belongs to (findPackageRoot()). */
  packageRoot?: string;
}

export interface BuildContext {
  dir: string;
  dockerfile: string;
  bundle: string;
  proxyBundle: string;
  /** The files this call (re)wrote: those that were missing or differed. */
  written: string[];
}

async function readSource(file: string, what: string, missing: string, hint: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new EnvironmentError(`${what} ${file} is missing: ${missing}`, hint, err, 'PACKAGE_INCOMPLETE');
    throw new EnvironmentError(`cannot read ${what} ${file}: ${code ?? (err as Error).message}`, hint, err, 'PACKAGE_INCOMPLETE');
  }
}

/**
 * Copies compose/Dockerfile, dist/bundle/mcp-tunnel.mjs and dist/bundle/mcp-proxy.cjs into DIR/build/ (each write atomic, mode 0644:
 * nothing secret there, and the Docker daemon must read them). Returns the paths, and which were written.
 */
export async function writeBuildContext(dir: string, options: WriteBuildContextOptions = {}): Promise<BuildContext> {
  const packageRoot = options.packageRoot ?? findPackageRoot();
  const sources = buildContextSources(packageRoot);
  const hint = 'in an mcp-tunnel checkout, run npm run build first (an installed package ships the bundle)';
  const [dockerfile, bundle, proxyBundle] = await Promise.all([
    readSource(sources.dockerfile, 'the builtin proxy Dockerfile', 'the mcp-tunnel package is incomplete', hint),
    readSource(sources.bundle, 'the builtin proxy bundle', 'run npm run build', hint),
    readSource(sources.proxyBundle, 'the builtin proxy bundle', 'run npm run build', hint),
  ]);
  const out = path.join(path.resolve(dir), BUILD_CONTEXT_DIR);
  const result: BuildContext = { dir: out, dockerfile: path.join(out, 'Dockerfile'), bundle: path.join(out, BUNDLE_FILE), proxyBundle: path.join(out, PROXY_BUNDLE_FILE), written: [] };
  for (const [file, data] of [[result.dockerfile, dockerfile], [result.proxyBundle, proxyBundle], [result.bundle, bundle]] as const) {
    // A re-run that finds the same bytes leaves the file alone, so reports can say "nothing changed".
    if (await sameFile(file, data, BUILD_FILE_MODE)) continue;
    await writeFileSafely(file, data, { mode: BUILD_FILE_MODE });
    result.written.push(file);
  }
  return result;
}

const BUILD_FILE_MODE = 0o644;

async function sameFile(file: string, data: Buffer, mode: number): Promise<boolean> {
  const st = await fs.stat(file).catch(() => undefined);
  if (!st?.isFile() || (st.mode & 0o7777) !== mode || st.size !== data.length) return false;
  return (await readBufferIfExists(file))?.equals(data) ?? false;
}

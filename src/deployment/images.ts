import { ExitCode, UserError } from '../errors.js';

/**
 * Every container image reference mcp-tunnel writes or runs, in one place (docs/contract.md §1). The official images
 * are pinned by digest, never by tag: a compose file written today runs the same bytes next year.
 */

/** Anthropic's proxy (the `official` engine). Reads /etc/mcp-gateway/config.yaml by default. */
export const OFFICIAL_PROXY_IMAGE =
  'us-docker.pkg.dev/anthropic-public-registry/images/mcp-proxy@sha256:efb27b299d627e4134815663cb8896641eeaee025d734c0f695582b4df38f013';

/** Cloudflare's connector, run as `tunnel --no-autoupdate run --url http://localhost:8080`. */
export const CLOUDFLARED_IMAGE =
  'cloudflare/cloudflared@sha256:6b599ca3e974349ead3286d178da61d291961182ec3fe9c505e1dd02c8ac31b0';

/** The builtin engine's image is built locally from DIR/build/ and tagged with the package version. */
export const BUILTIN_PROXY_IMAGE_REPO = 'mcp-tunnel-proxy';

export function builtinProxyImage(version: string): string {
  return `${BUILTIN_PROXY_IMAGE_REPO}:${version}`;
}

/**
 * The builtin image's default base (overridable with MCP_TUNNEL_BASE_IMAGE in .env, e.g. a mirror, or a
 * local base on a host that cannot reach Docker Hub). Any image with `node` (>= 22) on PATH will do.
 */
export const DEFAULT_BUILTIN_BASE_IMAGE = 'node:24-slim';

/**
 * An image reference parsed as Docker parses it (distribution/reference, with Docker's normalisation:
 * a first component without "." or ":" that is not "localhost" is a Docker Hub repository). Anything
 * else (spaces, shell syntax, upper case in the repository, a bad digest) is refused, with one line.
 */
export interface ImageReference {
  /** The text as given (trimmed). */
  text: string;
  /** Registry host[:port]; docker.io when none was given. */
  domain: string;
  /** Repository path (library/node for "node"). */
  path: string;
  tag?: string;
  /** algorithm:hex */
  digest?: string;
}

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const REFERENCE = new RegExp(`^(?:(${DOMAIN})/)?(${PATH_COMPONENT}(?:/${PATH_COMPONENT})*)(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const NAME_TOTAL_MAX = 255;

function imageError(message: string, hint: string, code: string): UserError {
  return new UserError(message, { hint, code, exitCode: ExitCode.usage });
}

/** Parses TEXT as `docker pull` would; `what` names the flag or field in the message. */
export function parseImageReference(raw: string, what = 'image'): ImageReference {
  const text = raw.trim();
  const hint = 'an image reference looks like node:24-slim, registry.example.com:5000/team/node:24 or name@sha256:<64 hex>';
  if (!text) throw imageError(`${what} is empty`, hint, 'IMAGE_REFERENCE_INVALID');
  const shown = JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
  const m = REFERENCE.exec(text);
  if (!m) throw imageError(`${what} ${shown} is not an image reference`, hint, 'IMAGE_REFERENCE_INVALID');
  let domain = m[1];
  let repo = m[2]!;
  // Docker's normalisation: the first component is a registry host when it has "." or ":", is localhost, or
  // has an upper-case letter (a repository never does); otherwise it is a Docker Hub namespace ("team/app").
  if (domain !== undefined && !/[.:]/.test(domain) && domain !== 'localhost' && domain.toLowerCase() === domain) {
    repo = `${domain}/${repo}`;
    domain = undefined;
  }
  const name = `${domain ? `${domain}/` : ''}${repo}`;
  if (name.length > NAME_TOTAL_MAX) throw imageError(`${what} is longer than ${NAME_TOTAL_MAX} characters`, hint, 'IMAGE_REFERENCE_INVALID');
  const digest = m[4];
  if (digest !== undefined && digest.startsWith('sha256:') && !/^sha256:[0-9a-f]{64}$/.test(digest)) {
    throw imageError(`${what} ${shown} has an invalid sha256 digest (64 lower-case hex digits)`, hint, 'IMAGE_REFERENCE_INVALID');
  }
  const finalDomain = domain ?? 'docker.io';
  const finalPath = domain === undefined && !repo.includes('/') ? `library/${repo}` : repo;
  return { text, domain: finalDomain, path: finalPath, ...(m[3] ? { tag: m[3] } : {}), ...(digest ? { digest } : {}) };
}

/** A reference pinned by content: `name@sha256:<64 hex>` (a tag alongside is refused: it would not be what runs). */
export function parsePinnedImageReference(raw: string, what: string): ImageReference {
  const ref = parseImageReference(raw, what);
  if (!ref.digest || !ref.digest.startsWith('sha256:') || ref.tag !== undefined) {
    throw imageError(
      `${what} ${JSON.stringify(ref.text)} is not pinned by digest`,
      'give name@sha256:<64 hex> (docker buildx imagetools inspect NAME:TAG shows the digest); tags move, digests do not',
      'IMAGE_NOT_PINNED',
    );
  }
  return ref;
}

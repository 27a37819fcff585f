import path from 'node:path';
import { readTextIfExists } from '../deployment/atomic-file.js';
import { COMPOSE_SERVICES } from '../deployment/compose-file.js';
import { BUILTIN_PROXY_IMAGE_REPO, parsePinnedImageReference } from '../deployment/images.js';
import { rewriteFileKeepingMode } from '../deployment/rewrite-file.js';
import { parseYamlDocument, setYamlValue } from '../deployment/yaml-edit.js';
import { findComposeFiles, readComposeEnvironment } from '../docker/compose-model.js';
import { ExitCode, UserError } from '../errors.js';

/**
 * `mcp-tunnel images`: the images the compose file pins, and moving a pin to another digest (never to a
 * tag: a tag moves under you). The edit replaces the one value in compose.yaml (comments kept); `up`
 * then recreates what runs it, since the image is part of compose's config hash.
 */
export interface PinnedImage {
  service: string;
  image: string;
  /** name@sha256:<64 hex> */
  pinned: boolean;
  /** Built locally from ./build (the builtin engine): not a pin to move. */
  built: boolean;
}

export interface ImagesView {
  file: string;
  images: PinnedImage[];
}

export interface ImageChange {
  service: string;
  from: string;
  to: string;
}

const usage = (message: string, hint: string, code: string): UserError => new UserError(message, { hint, code, exitCode: ExitCode.usage });

async function composeFile(dir: string): Promise<{ file: string; text: string }> {
  const env = await readComposeEnvironment(dir);
  const file = findComposeFiles(dir, env)[0]!;
  const text = await readTextIfExists(file);
  if (text === undefined) throw usage(`no compose file in ${path.resolve(dir)}`, 'run in the deployment directory or pass --dir (mcp-tunnel init writes it)', 'COMPOSE_FILE_MISSING');
  return { file, text };
}

function isPinned(image: string): boolean {
  try {
    parsePinnedImageReference(image, 'image');
    return true;
  } catch {
    return false;
  }
}

export async function readImages(dir: string): Promise<ImagesView> {
  const { file, text } = await composeFile(dir);
  const doc = parseYamlDocument(text);
  if (!doc) throw usage(`${path.basename(file)} is not valid YAML`, 'fix it by hand or re-run mcp-tunnel init', 'COMPOSE_FILE_INVALID');
  const services = (doc.toJS() as { services?: Record<string, { image?: unknown; build?: unknown }> } | null)?.services ?? {};
  const images: PinnedImage[] = [];
  for (const [service, def] of Object.entries(services)) {
    if (typeof def?.image !== 'string') continue;
    images.push({ service, image: def.image, pinned: isPinned(def.image), built: def.build !== undefined || def.image.startsWith(`${BUILTIN_PROXY_IMAGE_REPO}:`) });
  }
  return { file, images };
}

/** Moves the proxy and/or cloudflared pins. Validates everything before writing anything. */
export async function setImages(dir: string, wanted: { proxy?: string; cloudflared?: string }): Promise<{ file: string; changes: ImageChange[] }> {
  const targets: Array<[string, string, string]> = [];
  if (wanted.proxy !== undefined) targets.push([COMPOSE_SERVICES.proxy, parsePinnedImageReference(wanted.proxy, '--proxy').text, '--proxy']);
  if (wanted.cloudflared !== undefined) targets.push([COMPOSE_SERVICES.cloudflared, parsePinnedImageReference(wanted.cloudflared, '--cloudflared').text, '--cloudflared']);
  const view = await readImages(dir);
  let { text } = await composeFile(dir);
  const changes: ImageChange[] = [];
  for (const [service, image, flag] of targets) {
    const current = view.images.find((i) => i.service === service);
    if (!current) throw usage(`${path.basename(view.file)} has no ${service} service with an image`, 're-run mcp-tunnel init to restore the standard services', 'IMAGE_SERVICE_MISSING');
    if (current.built) {
      throw usage(
        `${flag}: ${service} runs the builtin proxy image, built locally from ./build`,
        'pins apply to the official images; rebuild the builtin one with mcp-tunnel up --build (or set MCP_TUNNEL_BASE_IMAGE in .env)',
        'IMAGE_BUILT_LOCALLY',
      );
    }
    if (current.image === image) continue;
    const doc = parseYamlDocument(text)!;
    text = setYamlValue(text, doc, ['services', service, 'image'], image).text;
    changes.push({ service, from: current.image, to: image });
  }
  if (changes.length > 0) await rewriteFileKeepingMode(view.file, text);
  return { file: view.file, changes };
}

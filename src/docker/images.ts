import fs from 'node:fs/promises';
import path from 'node:path';
import { parseImageReference } from '../deployment/images.js';
import { EnvironmentError, UserError } from '../errors.js';
import { apiMessage, asDockerError, isConnectionError, connectionError, statusCode, type DockerConnection } from './client.js';
import type { ComposeService } from './compose-model.js';
import { noEvents, type EventSink } from './events.js';
import { readJsonStream, StreamError, StreamStalledError, type DockerStreamMessage } from './json-stream.js';

/**
 * Images, as `docker compose up` gets them: present -> used as is; missing with `build:` -> built from the
 * build context; missing otherwise -> pulled. Progress goes to the event sink; errors inside the pull or
 * build stream are errors.
 */

/** The image's ID, or undefined when the daemon does not have it. */
export async function inspectImageId(conn: DockerConnection, ref: string): Promise<string | undefined> {
  try {
    const info = (await conn.docker.getImage(ref).inspect()) as { Id: string };
    return info.Id;
  } catch (err) {
    if (statusCode(err) === 404) return undefined;
    throw asDockerError(err, conn, `inspecting image ${ref}`);
  }
}

/** The registry an image reference pulls from (Docker Hub when the first component is not a host). */
export function registryOf(ref: string): string {
  let domain: string;
  try {
    domain = parseImageReference(ref).domain;
  } catch {
    return 'the registry the image names';
  }
  return domain === 'docker.io' ? 'docker.io (Docker Hub)' : domain;
}

function pullFailure(ref: string, reason: string, cause?: unknown): EnvironmentError {
  const registry = registryOf(ref);
  return new EnvironmentError(
    `image ${ref} cannot be pulled: ${reason}`,
    `check that this host can reach ${registry} (DNS, proxy, firewall), configure a registry mirror ("registry-mirrors" in /etc/docker/daemon.json), ` +
      'or load the image from elsewhere with docker save | docker load',
    cause,
    'IMAGE_PULL_FAILED',
  );
}

export interface PullOptions {
  /** Progress per layer. */
  onProgress?: (msg: { layer: string; status: string; current?: number; total?: number }) => void;
  /** Overall bound (default 15 min). */
  timeoutMs?: number;
  /** Fail when the stream is silent this long (default 120 s). */
  idleTimeoutMs?: number;
}

/** Pulls `ref`; throws "image X cannot be pulled: <reason>" on any failure, including errors inside the stream. */
export async function pullImage(conn: DockerConnection, ref: string, options: PullOptions = {}): Promise<string> {
  const timeoutMs = options.timeoutMs ?? 15 * 60_000;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`no result within ${Math.round(timeoutMs / 1000)}s`)), timeoutMs);
  let lastStatus = '';
  try {
    const started = (async () => {
      try {
        return await conn.docker.pull(ref);
      } catch (err) {
        if (isConnectionError(err)) throw connectionError(err, conn);
        throw pullFailure(ref, apiMessage(err), err);
      }
    })();
    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener('abort', () => reject(pullFailure(ref, (controller.signal.reason as Error).message)), { once: true });
    });
    const stream = await Promise.race([started, aborted]);
    try {
      await readJsonStream(stream, {
        idleTimeoutMs: options.idleTimeoutMs ?? 120_000,
        signal: controller.signal,
        onMessage: (msg: DockerStreamMessage) => {
          if (msg.status) lastStatus = msg.status;
          // Layer lines carry the layer's short ID; "Pulling from <repo>" carries the tag as its id.
          if (msg.id && msg.status && !msg.status.startsWith('Pulling from') && options.onProgress) {
            options.onProgress({ layer: msg.id, status: msg.status, current: msg.progressDetail?.current, total: msg.progressDetail?.total });
          }
        },
      });
    } catch (err) {
      if (err instanceof StreamError) throw pullFailure(ref, err.message, err);
      if (err instanceof StreamStalledError) throw pullFailure(ref, err.message, err);
      if (err instanceof UserError) throw err;
      throw pullFailure(ref, (err as Error).message, err);
    }
  } finally {
    clearTimeout(timer);
  }
  const id = await inspectImageId(conn, ref);
  if (!id) throw pullFailure(ref, `the pull ended without the image${lastStatus ? ` (last status: ${lastStatus})` : ''}`);
  return id;
}

export interface BuildOptions {
  onOutput?: (line: string) => void;
  /** Overall bound (default 15 min). */
  timeoutMs?: number;
}

/** Builds `tag` from `context` (with .dockerignore honoured); errors inside the build stream are errors. */
export async function buildImage(
  conn: DockerConnection,
  build: { context: string; dockerfile?: string; args: Record<string, string> },
  tag: string,
  options: BuildOptions = {},
): Promise<string> {
  const entries = await fs.readdir(build.context).catch((err: NodeJS.ErrnoException) => {
    throw new EnvironmentError(
      `cannot read the build context ${build.context}: ${err.code === 'ENOENT' ? 'no such directory' : (err.code ?? err.message)}`,
      'mcp-tunnel init --proxy builtin writes it (build/ beside compose.yaml); rerun init',
      undefined, 'BUILD_CONTEXT_MISSING',
    );
  });
  const dockerfile = build.dockerfile ?? 'Dockerfile';
  try {
    await fs.access(path.resolve(build.context, dockerfile));
  } catch {
    throw new EnvironmentError(`no ${dockerfile} in the build context ${build.context}`, 'mcp-tunnel init --proxy builtin writes it; rerun init', undefined, 'BUILD_CONTEXT_MISSING');
  }
  const failed = (reason: string, cause?: unknown): EnvironmentError =>
    new EnvironmentError(`building image ${tag} from ${build.context} failed: ${reason}`, 'see the build output above; check the base image (MCP_TUNNEL_BASE_IMAGE in .env) is available', cause, 'IMAGE_BUILD_FAILED');
  const timeoutMs = options.timeoutMs ?? 15 * 60_000;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`no result within ${Math.round(timeoutMs / 1000)}s`)), timeoutMs);
  let imageId: string | undefined;
  try {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await conn.docker.buildImage({ context: build.context, src: entries }, { t: tag, buildargs: build.args, dockerfile, rm: true, forcerm: true });
    } catch (err) {
      if (isConnectionError(err)) throw connectionError(err, conn);
      throw failed(apiMessage(err), err);
    }
    try {
      await readJsonStream(stream, {
        signal: controller.signal,
        onMessage: (msg) => {
          if (msg.aux?.ID) imageId = msg.aux.ID;
          const text = msg.stream ?? (msg.status ? `${msg.status}${msg.progress ? ` ${msg.progress}` : ''}` : undefined);
          if (text && options.onOutput) for (const line of text.split('\n')) if (line.trim()) options.onOutput(line.replace(/\r$/, ''));
        },
      });
    } catch (err) {
      throw failed((err as Error).message, err);
    }
  } finally {
    clearTimeout(timer);
  }
  const id = (await inspectImageId(conn, tag)) ?? imageId;
  if (!id) throw failed('the build ended without an image');
  return id;
}

export interface EnsureImageResult {
  imageId: string;
  action: 'present' | 'pulled' | 'built';
}

export interface EnsureImageOptions {
  onEvent?: EventSink;
  /** Build even when the image exists (up --build). */
  forceBuild?: boolean;
  pullTimeoutMs?: number;
}

/** Makes sure the service's image exists, as compose does: present, else build (with build:), else pull. */
export async function ensureServiceImage(conn: DockerConnection, service: ComposeService, options: EnsureImageOptions = {}): Promise<EnsureImageResult> {
  const emit = options.onEvent ?? noEvents;
  const image = service.image;
  const existing = await inspectImageId(conn, image);
  if (existing && !(options.forceBuild && service.build)) {
    emit({ type: 'image-present', service: service.name, image });
    return { imageId: existing, action: 'present' };
  }
  if (service.build) {
    emit({ type: 'build-start', service: service.name, image, context: service.build.context });
    const imageId = await buildImage(conn, service.build, image, { onOutput: (line) => emit({ type: 'build-output', service: service.name, image, line }) });
    emit({ type: 'build-done', service: service.name, image, imageId });
    return { imageId, action: 'built' };
  }
  emit({ type: 'pull-start', service: service.name, image });
  const imageId = await pullImage(conn, image, {
    timeoutMs: options.pullTimeoutMs,
    onProgress: (p) => emit({ type: 'pull-progress', service: service.name, image, ...p }),
  });
  emit({ type: 'pull-done', service: service.name, image, status: 'pulled' });
  return { imageId, action: 'pulled' };
}

/**
 * Images through the Engine API, for real: pulls from a local fake registry (Docker trusts plain HTTP on
 * 127.0.0.0/8), so the daemon itself produces the per-layer progress and, with a broken registry, an error
 * INSIDE the 200 pull stream; builds whose stream carries an error. No external registry is involved.
 */
import { execa } from 'execa';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, connectDocker, ensureServiceImage, inspectImageId, pullImage, type StackEvent } from '../../src/docker/index.js';
import type { ComposeService } from '../../src/docker/compose-model.js';
import { EnvironmentError } from '../../src/errors.js';
import { TEST_LABEL, dockerCleanup, ensureNodeBaseImage, mustDocker, requireDocker, uniqueName } from '../helpers/docker.js';

const dockerReady = await requireDocker();

const sha256 = (b: Buffer): string => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;

interface FakeRegistry {
  host: string;
  /** "ok": a valid one-layer image; "no-config": the config blob is missing (the daemon fails mid-stream). */
  mode: 'ok' | 'no-config';
  requests: string[];
  close(): Promise<void>;
}

async function startFakeRegistry(workdir: string): Promise<FakeRegistry> {
  const rootfs = path.join(workdir, 'rootfs');
  await fs.mkdir(rootfs, { recursive: true });
  await fs.writeFile(path.join(rootfs, 'hello.txt'), 'hello from the fake registry\n'.repeat(5000));
  const tarFile = path.join(workdir, 'layer.tar');
  await execa('tar', ['-C', rootfs, '--owner=0', '--group=0', '--numeric-owner', '-cf', tarFile, 'hello.txt']);
  const tar = await fs.readFile(tarFile);
  const layer = zlib.gzipSync(tar);
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  // Two images: "ok" is served whole; "broken" (its own config, so the daemon cannot reuse the first one's)
  // has a manifest whose config blob the registry does not have.
  const image = (variant: string): { config: Buffer; manifest: Buffer } => {
    const config = Buffer.from(
      JSON.stringify({
        architecture: arch,
        os: 'linux',
        config: { Cmd: ['/hello.txt'], Labels: { [TEST_LABEL]: '1', variant: `${variant}-${crypto.randomUUID()}` } },
        rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
        history: [{ created_by: 'mcp-tunnel test' }],
      }),
    );
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: sha256(config) },
        layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: layer.length, digest: sha256(layer) }],
      }),
    );
    return { config, manifest };
  };
  const ok = image('ok');
  const broken = image('broken');
  const reg: FakeRegistry = { host: '', mode: 'ok', requests: [], close: async () => undefined };
  const send = (req: http.IncomingMessage, res: http.ServerResponse, type: string, body: Buffer, extra: Record<string, string> = {}): void => {
    res.writeHead(200, { 'content-type': type, 'content-length': String(body.length), ...extra });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    reg.requests.push(`${req.method} ${url}`);
    if (url === '/v2/') return send(req, res, 'application/json', Buffer.from('{}'), { 'docker-distribution-api-version': 'registry/2.0' });
    const { manifest } = reg.mode === 'ok' ? ok : broken;
    if (url.includes('/manifests/')) return send(req, res, 'application/vnd.docker.distribution.manifest.v2+json', manifest, { 'docker-content-digest': sha256(manifest) });
    if (url.endsWith(sha256(ok.config))) return send(req, res, 'application/octet-stream', ok.config);
    if (url.endsWith(sha256(layer))) return send(req, res, 'application/octet-stream', layer);
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  reg.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  reg.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return reg;
}

function fakeService(name: string, image: string, build?: ComposeService['build']): ComposeService {
  return { name, image, build, options: {}, env: [], environment: {}, binds: [], networkMode: { kind: 'default' }, dependsOn: {}, ports: [], labels: {} };
}

describe.skipIf(!dockerReady)('images: pull with per-layer progress, errors inside the stream, builds', () => {
  const cleanup = dockerCleanup();
  const conn = connectDocker();
  let work = '';
  let reg: FakeRegistry;

  beforeAll(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'mcp-tunnel-images-'));
    cleanup.dir(work);
    reg = await startFakeRegistry(work);
  });

  afterAll(async () => {
    await reg?.close();
    await cleanup.run();
  }, 60_000);

  it('pulls a missing image with progress per layer (id, status, current/total) and returns its ID', async () => {
    reg.mode = 'ok';
    const ref = `${reg.host}/mcp-tunnel-test/${uniqueName('pull')}:t1`;
    cleanup.image(ref);
    const events: StackEvent[] = [];
    const r = await ensureServiceImage(conn, fakeService('app', ref), { onEvent: (e) => events.push(e) });
    expect(r.action).toBe('pulled');
    expect(r.imageId).toBe(await mustDocker(['image', 'inspect', '--format', '{{.Id}}', ref]));
    expect(events[0]).toEqual({ type: 'pull-start', service: 'app', image: ref });
    const progress = events.filter((e): e is Extract<StackEvent, { type: 'pull-progress' }> => e.type === 'pull-progress');
    const layers = new Set(progress.map((p) => p.layer));
    expect(layers.size).toBe(1);
    const statuses = progress.map((p) => p.status);
    expect(statuses).toEqual(expect.arrayContaining(['Pulling fs layer', 'Downloading', 'Download complete', 'Pull complete']));
    const downloading = progress.find((p) => p.status === 'Downloading')!;
    expect(downloading.total).toBeGreaterThan(0);
    expect(downloading.current).toBeGreaterThan(0);
    expect(events.at(-1)).toEqual({ type: 'pull-done', service: 'app', image: ref, status: 'pulled' });

    // present now: no second pull
    const again: StackEvent[] = [];
    expect((await ensureServiceImage(conn, fakeService('app', ref), { onEvent: (e) => again.push(e) })).action).toBe('present');
    expect(again).toEqual([{ type: 'image-present', service: 'app', image: ref }]);
  }, 60_000);

  it('an error inside the 200 pull stream is an error, after the progress that preceded it', async () => {
    reg.mode = 'no-config';
    const ref = `${reg.host}/mcp-tunnel-test/${uniqueName('broken')}:t1`;
    cleanup.image(ref);
    const seen: string[] = [];
    const err = await pullImage(conn, ref, { onProgress: (p) => seen.push(p.status) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnvironmentError);
    expect((err as EnvironmentError).message).toBe(`image ${ref} cannot be pulled: error pulling image configuration: download failed after attempts=1: unknown blob`);
    expect((err as EnvironmentError).hint).toContain(`check that this host can reach ${reg.host}`);
    expect(seen.length).toBeGreaterThan(0); // the layer's lines ("Already exists": the first test pulled the same layer)
    expect(await inspectImageId(conn, ref)).toBeUndefined();
  }, 60_000);

  it('an unreachable registry (the daemon answers 500 before streaming) is the same one-line error', async () => {
    const ref = `127.0.0.1:1/mcp-tunnel-test/${uniqueName('nothing')}:t1`;
    const err = await pullImage(conn, ref).catch((e: unknown) => e);
    expect((err as EnvironmentError).message).toMatch(new RegExp(`^image ${ref.replace(/[.]/g, '\\.')} cannot be pulled: .*connection refused`));
  });

  it('builds from a context with build args, streaming the output', async () => {
    const base = await ensureNodeBaseImage();
    const ctx = path.join(work, 'ok-context');
    await fs.mkdir(ctx, { recursive: true });
    await fs.writeFile(path.join(ctx, 'Dockerfile'), `ARG BASE_IMAGE\nFROM \${BASE_IMAGE}\nCOPY hello.txt /hello.txt\nLABEL ${TEST_LABEL}=1\n`);
    await fs.writeFile(path.join(ctx, 'hello.txt'), 'hi\n');
    const tag = `mcp-tunnel-test/build:${uniqueName('ok')}`;
    cleanup.image(tag);
    const lines: string[] = [];
    const id = await buildImage(conn, { context: ctx, args: { BASE_IMAGE: base } }, tag, { onOutput: (l) => lines.push(l) });
    expect(id).toBe(await mustDocker(['image', 'inspect', '--format', '{{.Id}}', tag]));
    expect(lines.some((l) => /^Step 2\/4 : FROM /.test(l))).toBe(true);
    expect(lines.some((l) => l.startsWith('Successfully tagged') && l.includes(tag))).toBe(true);
  }, 120_000);

  it('an error inside the build stream fails the build with the reason', async () => {
    const base = await ensureNodeBaseImage();
    const ctx = path.join(work, 'bad-context');
    await fs.mkdir(ctx, { recursive: true });
    await fs.writeFile(path.join(ctx, 'Dockerfile'), `FROM ${base}\nCOPY missing.txt /missing.txt\n`);
    const tag = `mcp-tunnel-test/build:${uniqueName('bad')}`;
    cleanup.image(tag);
    const lines: string[] = [];
    const err = await buildImage(conn, { context: ctx, args: {} }, tag, { onOutput: (l) => lines.push(l) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnvironmentError);
    expect((err as EnvironmentError).message).toMatch(new RegExp(`^building image ${tag.replace(/[/.]/g, '\\$&')} from ${ctx.replace(/[/.]/g, '\\$&')} failed: COPY failed: .*missing\\.txt`));
    expect(lines).toContain(`Step 1/2 : FROM ${base}`);
    expect(await inspectImageId(conn, tag)).toBeUndefined();
  }, 120_000);
});

import path from 'node:path';
import { Command, Option } from 'commander';
import { readImages, setImages } from '../../ops/images.js';
import { printLine, printReport, printStep } from '../output.js';
import { requireDeploymentDir } from '../deployment-dir.js';
import { oursOrCompose } from '../../docker/compose-command.js';

interface ImagesCliOptions {
  dir: string;
  proxy?: string;
  cloudflared?: string;
  json?: boolean;
}

export function registerImages(program: Command): void {
  program
    .command('images')
    .description('Show the images compose.yaml pins; move the proxy or cloudflared pin to another digest (name@sha256:<64 hex>)')
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .option('--proxy <ref>', "pin the official proxy to this image (name@sha256:<64 hex>; not for the builtin engine's local image)")
    .option('--cloudflared <ref>', 'pin cloudflared to this image (name@sha256:<64 hex>)')
    .addOption(new Option('--json', 'print the images (and the changes) as JSON (docs/json.md: images)').env('MCP_TUNNEL_JSON'))
    .addHelpText('after', () => `\nA new pin is applied by the next ${oursOrCompose('`mcp-tunnel up`', 'up -d').replace(/\(or (.*)\)$/, '(or `$1`)')}: it recreates the containers that run it.\nExit codes: 0 ok, 2 a reference that is not name@sha256:<64 hex>, nothing written.`)
    .action(async (options: ImagesCliOptions) => runImages(options));
}

async function runImages(options: ImagesCliOptions): Promise<void> {
  await requireDeploymentDir(options.dir);
  const setting = options.proxy !== undefined || options.cloudflared !== undefined;
  const result = setting ? await setImages(options.dir, { proxy: options.proxy, cloudflared: options.cloudflared }) : undefined;
  const view = await readImages(options.dir);
  if (options.json) {
    printReport('images', { file: view.file, images: view.images, ...(result ? { changes: result.changes } : {}) });
    return;
  }
  const rel = path.basename(view.file);
  if (result) {
    for (const c of result.changes) printStep(`${c.service}: ${c.from} -> ${c.to} in ${rel}`);
    if (result.changes.length === 0) printLine(`Nothing to change: ${rel} already pins those images.`);
    else printLine(`Apply it: mcp-tunnel up${options.dir === '.' ? '' : ` --dir ${options.dir}`} (recreates the containers that run a new image)`);
    return;
  }
  const width = Math.max(7, ...view.images.map((i) => i.service.length));
  printLine(`${'SERVICE'.padEnd(width)}  IMAGE`);
  for (const i of view.images) printLine(`${i.service.padEnd(width)}  ${i.image}${i.built ? '  (built locally)' : i.pinned ? '' : '  (not pinned by digest)'}`);
}

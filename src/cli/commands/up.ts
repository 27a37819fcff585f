import { Command, Option } from 'commander';
import { parseDuration } from '../../deployment/duration.js';
import { composeUp, StackHealthError, type StackEvent, type UpResult } from '../../docker/index.js';
import { bold, printLine, printReport, printStep, printWarning } from '../output.js';
import { requireDeploymentDir } from '../deployment-dir.js';

interface UpCliOptions {
  dir: string;
  wait: boolean;
  timeout: string;
  build?: boolean;
  json?: boolean;
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('Start the stack from compose.yaml + .env (pull or build images, network, containers) and wait until the tunnel is connected')
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .addOption(new Option('--no-wait', "don't wait for the proxy's readiness and cloudflared's tunnel connections").env('MCP_TUNNEL_NO_WAIT'))
    .addOption(new Option('--timeout <duration>', 'how long to wait for health (e.g. 120s, 5m)').env('MCP_TUNNEL_UP_TIMEOUT').default('120s'))
    .addOption(new Option('--build', 'rebuild the builtin proxy image even when it exists').env('MCP_TUNNEL_BUILD'))
    .addOption(new Option('--json', 'print what was created, recreated or started and the health found, as JSON (docs/json.md: up); progress goes nowhere, warnings to stderr').env('MCP_TUNNEL_JSON'))
    .addHelpText(
      'after',
      '\nInterchangeable with `docker compose up -d` on the same directory: same containers, names and labels.\n' +
        'Exit codes: 0 up (a degraded tunnel is a warning), 2 invalid input, 3 Docker/health failure.',
    )
    .action(async (options: UpCliOptions) => runUp(options));
}

async function runUp(options: UpCliOptions): Promise<void> {
  await requireDeploymentDir(options.dir);
  const timeoutMs = parseDuration(options.timeout, '--timeout');
  const json = options.json === true;
  const progress = new Progress();
  const started = Date.now();
  let result: UpResult;
  try {
    result = await composeUp(options.dir, {
      wait: options.wait,
      timeoutMs,
      build: options.build,
      // --json: stdout is the one report; warnings still reach a person on stderr.
      onEvent: (e) => {
        if (!json) progress.event(e);
        else if (e.type === 'warning') printWarning(e.hint ? `${e.message} (${e.hint})` : e.message);
      },
    });
  } catch (err) {
    progress.stop();
    if (err instanceof StackHealthError) {
      // The evidence for the error line; on stderr with --json, where stdout holds only a report.
      const say = json ? (text: string) => process.stderr.write(`${text}\n`) : printLine;
      for (const { service, lines } of err.logs) {
        say(bold(`--- last lines of ${service} ---`));
        for (const line of lines) say(`  ${line}`);
      }
    }
    throw err;
  }
  progress.stop();
  if (result.tunnel?.degraded) {
    printWarning(`${result.tunnel.service} registered ${result.tunnel.registered} of ${result.tunnel.full} tunnel connections (degraded): mcp-tunnel logs ${result.tunnel.service}`);
  }
  if (json) {
    printReport('up', {
      project: result.project,
      dir: result.dir,
      waited: options.wait !== false,
      durationMs: Date.now() - started,
      containers: result.containers.map((c) => ({ service: c.service, name: c.name, id: c.id, action: c.action, reason: c.reason ?? null })),
      warnings: result.warnings,
      proxy: result.proxy ?? null,
      tunnel: result.tunnel ?? null,
    });
    return;
  }
  const how = options.wait === false ? 'started (not waiting for health: --no-wait)' : 'up';
  printLine(`Stack ${bold(result.project)} is ${how}. Check it with: mcp-tunnel status${options.dir === '.' ? '' : ` --dir ${options.dir}`}`);
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function bar(fraction: number, width = 24): string {
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return `[${'='.repeat(filled)}${filled < width ? '>' : ''}${' '.repeat(Math.max(0, width - filled - 1))}]`;
}

interface LayerState {
  status: string;
  current?: number;
  total?: number;
}

/**
 * Renders StackEvents: on a TTY one live status line (spinner; a progress bar while pulling) above the
 * finished steps; otherwise plain lines, one per step and per layer status change (CI logs stay readable).
 */
export class Progress {
  private readonly tty = Boolean(process.stdout.isTTY) && !process.env.CI;
  private status = '';
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;
  private layers = new Map<string, LayerState>();
  private lastPlainStatus = new Map<string, string>();
  private lastWaitPrinted = new Map<string, number>();
  private healthy = new Set<string>();

  event(e: StackEvent): void {
    switch (e.type) {
      case 'warning':
        this.above(() => printWarning(e.hint ? `${e.message} (${e.hint})` : e.message));
        break;
      case 'project':
        this.above(() => printLine(`Project ${bold(e.project)} in ${e.dir}`));
        break;
      case 'image-present':
        this.done(`${e.service}: image ${e.image} present`);
        break;
      case 'pull-start':
        this.layers.clear();
        this.setStatus(`${e.service}: pulling ${e.image}`);
        if (!this.tty) printLine(`${e.service}: pulling ${e.image}`);
        break;
      case 'pull-progress': {
        this.layers.set(e.layer, { status: e.status, current: e.current, total: e.total });
        if (this.tty) {
          const all = [...this.layers.values()];
          const done = all.filter((l) => /complete|already exists/i.test(l.status)).length;
          const total = all.reduce((s, l) => s + (l.total ?? 0), 0);
          const current = all.reduce((s, l) => s + (/complete|already exists/i.test(l.status) ? (l.total ?? 0) : (l.current ?? 0)), 0);
          const fraction = total > 0 ? current / total : done / Math.max(1, all.length);
          this.setStatus(`${e.service}: pulling ${bar(fraction)} ${done}/${all.length} layers${total ? ` ${formatBytes(current)}/${formatBytes(total)}` : ''}`);
        } else if (this.lastPlainStatus.get(e.layer) !== e.status) {
          this.lastPlainStatus.set(e.layer, e.status);
          printLine(`  ${e.service}: layer ${e.layer}: ${e.status}${e.total ? ` (${formatBytes(e.total)})` : ''}`);
        }
        break;
      }
      case 'pull-done':
        this.done(`${e.service}: image ${e.image} pulled`);
        break;
      case 'build-start':
        this.setStatus(`${e.service}: building ${e.image}`);
        if (!this.tty) printLine(`${e.service}: building ${e.image} from ${e.context}`);
        break;
      case 'build-output':
        if (this.tty) this.setStatus(`${e.service}: ${e.line.slice(0, 100)}`);
        else if (/^Step \d+\/\d+|^Successfully|error|warning/i.test(e.line)) printLine(`  ${e.service}: ${e.line}`);
        break;
      case 'build-done':
        this.done(`${e.service}: image ${e.image} built`);
        break;
      case 'network':
        if (e.action === 'created') this.done(`network ${e.name} created`);
        else if (e.action === 'removed') this.done(`network ${e.name} removed`);
        break;
      case 'container':
        if (e.action === 'stopping') this.setStatus(`stopping ${e.name}`);
        else if (e.action === 'unchanged') this.done(`${e.name} is up to date`);
        else if (e.action === 'stopped') break;
        else {
          if (e.action === 'created' || e.action === 'recreated') this.healthy.delete(e.service);
          this.done(`${e.name} ${e.action}${e.reason ? ` (${e.reason})` : ''}`);
        }
        break;
      case 'waiting':
        this.setStatus(`waiting for ${e.service}: ${e.what} (${Math.round(e.elapsedMs / 1000)}s)`);
        if (!this.tty) {
          const key = `${e.service}:${e.what}`;
          const last = this.lastWaitPrinted.get(key);
          if (last === undefined || e.elapsedMs - last >= 10_000) {
            this.lastWaitPrinted.set(key, e.elapsedMs);
            printLine(`  waiting for ${e.service}: ${e.what}`);
          }
        }
        break;
      case 'healthy':
        if (!this.healthy.has(e.service)) this.done(`${e.service} ${e.detail}`);
        this.healthy.add(e.service);
        break;
      case 'registered':
        if (e.connections >= e.full) this.done(`${e.service}: ${e.connections}/${e.full} tunnel connections registered`);
        else if (e.connections > 0) {
          this.setStatus(`${e.service}: ${e.connections}/${e.full} tunnel connections`);
          if (!this.tty) printLine(`  ${e.service}: ${e.connections}/${e.full} tunnel connections`);
        }
        break;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clearLine();
    this.status = '';
  }

  private setStatus(text: string): void {
    this.status = text;
    if (!this.tty) return;
    this.timer ??= setInterval(() => this.render(), 80);
    this.timer.unref();
    this.render();
  }

  private render(): void {
    if (!this.tty || !this.status) return;
    this.frame = (this.frame + 1) % SPINNER.length;
    const width = process.stdout.columns || 100;
    process.stdout.write(`\r\u001b[2K${SPINNER[this.frame]} ${this.status}`.slice(0, width + 6));
  }

  private clearLine(): void {
    if (this.tty) process.stdout.write('\r\u001b[2K');
  }

  private above(print: () => void): void {
    this.clearLine();
    print();
    this.render();
  }

  private done(text: string): void {
    this.status = '';
    this.above(() => printStep(text));
  }
}

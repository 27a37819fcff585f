import { Command, InvalidArgumentError, Option } from 'commander';
import { projectLogs, type ProjectLogLine } from '../../docker/index.js';
import { printLine, printRecord } from '../output.js';
import { requireDeploymentDir } from '../deployment-dir.js';

interface LogsCliOptions {
  dir: string;
  follow?: boolean;
  tail?: number;
  timestamps?: boolean;
  json?: boolean;
}

function parseTail(value: string): number {
  if (value === 'all') return -1;
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a number of lines or "all"');
  return Number(value);
}

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description("Show the stack's logs (every service, or the ones named), each line prefixed with its service")
    .argument('[service...]', 'services to show (e.g. mcp-proxy, cloudflared); default all')
    .addOption(new Option('--dir <dir>', 'deployment directory').env('MCP_TUNNEL_DIR').default('.'))
    .addOption(new Option('-f, --follow', 'keep following new lines (Ctrl-C to stop)').env('MCP_TUNNEL_FOLLOW'))
    .addOption(new Option('-n, --tail <lines>', 'only the last N lines of each service ("all" for everything)').argParser(parseTail).env('MCP_TUNNEL_TAIL'))
    .addOption(new Option('-t, --timestamps', "show Docker's timestamp of each line").env('MCP_TUNNEL_TIMESTAMPS'))
    .addOption(new Option('--json', 'one JSON record per line (NDJSON: service, container, stream, time, line) instead of prefixed text (docs/json.md: logs)').env('MCP_TUNNEL_JSON'))
    .action(async (services: string[], options: LogsCliOptions) => runLogs(services, options));
}

const COLOURS = [36, 33, 32, 35, 34, 31];

async function runLogs(services: string[], options: LogsCliOptions): Promise<void> {
  await requireDeploymentDir(options.dir);
  const colour = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  if (options.follow) process.once('SIGINT', onSigint);
  const width = { n: 11 }; // 'cloudflared', the longest standard service name
  const colours = new Map<string, number>();
  const write = (line: ProjectLogLine): void => {
    if (options.json) {
      printRecord({ service: line.service, container: line.container, stream: line.stream, ...(line.time ? { time: line.time } : {}), line: line.text });
      return;
    }
    if (!colours.has(line.service)) colours.set(line.service, COLOURS[colours.size % COLOURS.length]!);
    width.n = Math.max(width.n, line.service.length);
    const prefix = `${line.service.padEnd(width.n)} |`;
    const shown = colour ? `\u001b[${colours.get(line.service)}m${prefix}\u001b[0m` : prefix;
    printLine(`${shown} ${options.timestamps && line.time ? `${line.time} ` : ''}${line.text}`);
  };
  try {
    await projectLogs(options.dir, {
      services,
      follow: options.follow,
      tail: options.tail === undefined || options.tail < 0 ? undefined : options.tail,
      signal: controller.signal,
      onLine: write,
    });
  } finally {
    process.off('SIGINT', onSigint);
  }
}

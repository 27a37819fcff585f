import net from 'node:net';
import os from 'node:os';
import { Command, Option } from 'commander';
import { DEFAULT_BUILTIN_BASE_IMAGE } from '../../deployment/images.js';
import { AbortedError, EnvironmentError, ExitCode, ValidationError } from '../../errors.js';
import { runDemo, runDockerDemo, startSampleMcpServer, type DemoHandle, type DemoStep } from '../../demo/index.js';
import { bold, printLine, printStep, printWarning } from '../output.js';

interface DemoOptions {
  docker?: boolean;
  keep?: boolean;
  baseImage?: string;
  serveSample?: string;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('See a tunnel work on this machine: throwaway CA, builtin proxy and a sample MCP server on loopback, then the probe and a tool call (no account, no Docker, no network)')
    .option('--docker', 'the same with the proxy and the sample server in containers (needs Docker; builds the image locally)')
    .option('--keep', 'keep the demo running after the checks, to probe it yourself; Ctrl-C ends it and cleans up')
    .addOption(new Option('--base-image <image>', `--docker: base image of the local build (node >= 22; default ${DEFAULT_BUILTIN_BASE_IMAGE})`).env('MCP_TUNNEL_BASE_IMAGE'))
    // Internal: what the demo's upstream container runs (the sample MCP server alone, until SIGTERM).
    .addOption(new Option('--serve-sample <host:port>').hideHelp())
    .addHelpText(
      'after',
      '\nNothing is left behind: the temp directory is removed and every listener closed (with --docker: the\ncontainers, the network and the demo image too), also on failure or Ctrl-C.',
    )
    .action(async (options: DemoOptions) => demoCommand(options));
}

const pad = (s: string, n: number): string => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const formatMs = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);

function printDemoStep(step: DemoStep): void {
  const text = `${pad(step.step, 12)} ${pad(formatMs(step.ms), 9)} ${step.detail}`;
  if (step.ok) printStep(text);
  else printLine(`✗ ${text}${step.error ? ` [${step.error.layer}]` : ''}`);
}

function whoToGreet(): string {
  try {
    return os.userInfo().username || 'world';
  } catch {
    return 'world';
  }
}

async function serveSample(addr: string): Promise<void> {
  const m = /^(.*):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535 || (m[1] !== '' && !net.isIP(m[1]!))) throw new ValidationError(`invalid --serve-sample "${addr}": expected IP:PORT`, 'e.g. --serve-sample 0.0.0.0:3000', 'SERVE_SAMPLE_INVALID');
  const server = await startSampleMcpServer({ host: m[1] || '0.0.0.0', port });
  printLine(`sample MCP server listening on ${server.url}`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await server.close();
}

async function demoCommand(options: DemoOptions): Promise<void> {
  if (options.serveSample !== undefined) return serveSample(options.serveSample);
  if (options.baseImage !== undefined && !options.docker) {
    throw new ValidationError('--base-image only applies with --docker', 'add --docker, or drop --base-image', 'FLAGS_CONFLICT');
  }

  const controller = new AbortController();
  let releaseKeep: (() => void) | undefined;
  let signals = 0;
  const onSignal = (): void => {
    signals += 1;
    if (releaseKeep) {
      // --keep: Ctrl-C is the normal way to end; tear down and exit 0.
      const release = releaseKeep;
      releaseKeep = undefined;
      release();
      return;
    }
    if (signals > 1) {
      // A second Ctrl-C: stop waiting. The exit hook still removes the temp dir; containers may remain.
      printWarning(
        options.docker
          ? 'stopped before the cleanup finished: remove what remains with docker ps -a --filter name=mcp-tunnel-demo- and docker images mcp-tunnel-demo'
          : 'stopped before the cleanup finished; the temp directory is removed on exit',
      );
      process.exit(ExitCode.aborted);
    }
    controller.abort(new AbortedError('demo interrupted'));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  printLine(bold(`mcp-tunnel demo: the whole tunnel data path on this machine${options.docker ? ', in containers' : ''}`));
  try {
    const demoOptions = {
      signal: controller.signal,
      name: whoToGreet(),
      onStep: printDemoStep,
      whileRunning: options.keep ? (handle: DemoHandle) => keepRunning(handle, (release) => (releaseKeep = release)) : undefined,
    };
    const result = options.docker ? await runDockerDemo({ ...demoOptions, baseImage: options.baseImage }) : await runDemo(demoOptions);
    if (!result.ok) {
      for (const line of result.proxyLog.filter((l) => /"level":"(warn|error)"/.test(l)).slice(-5)) printWarning(`proxy log: ${line}`);
      const f = result.failure;
      const where = f?.layer ? `${f.layer}: ` : f ? `${f.step}: ` : '';
      throw new EnvironmentError(`demo failed: ${where}${f?.message ?? 'unknown failure'}`, f?.hint, undefined, 'DEMO_FAILED');
    }
    printLine();
    printLine(`the tunnel works end to end here: WebSocket -> inner TLS -> proxy -> MCP server, and back: ${JSON.stringify(result.greeting ?? '')}`);
    printLine('next: mcp-tunnel init (your tunnel, your routes), then mcp-tunnel probe ROUTE against the real deployment');
  } catch (err) {
    if (controller.signal.aborted) {
      throw new AbortedError(`demo interrupted; everything it started was stopped${options.docker ? ' and removed' : ''} and its temp directory removed`);
    }
    throw err;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

function keepRunning(handle: DemoHandle, setRelease: (release: () => void) => void): Promise<void> {
  printLine();
  printLine('the demo keeps running; try it yourself in another terminal:');
  printLine(`  mcp-tunnel probe ${handle.route} --dir ${handle.dir} --proxy ${handle.proxyUrl} --call hello --args '{"name":"you"}'`);
  if (handle.adminUrl) printLine(`  curl ${handle.adminUrl}/readyz ; curl ${handle.adminUrl}/metrics`);
  printLine('press Ctrl-C to stop it and clean up');
  return new Promise<void>((resolve) => setRelease(resolve));
}

/** What a demo run reports and takes: shared by the in-process demo, the Docker demo and their step runner. */
import type { ProbeFailure, ProbeResult } from '../probe/index.js';

export interface DemoStep {
  step: string;
  ok: boolean;
  ms: number;
  detail: string;
  error?: ProbeFailure;
}

export interface DemoHandle {
  /** The temporary deployment directory (config/mcp-proxy.yaml, data/ca.crt, ...). */
  dir: string;
  /** ws://127.0.0.1:PORT/ */
  proxyUrl: string;
  adminUrl: string | undefined;
  upstreamUrl: string;
  domain: string;
  route: string;
}

export interface RunDemoOptions {
  /** Called as each step finishes. */
  onStep?: (step: DemoStep) => void;
  /** Aborting stops at the next step boundary (or inside the probe) and still cleans up. */
  signal?: AbortSignal;
  /** Who the `hello` tool greets. */
  name?: string;
  /** Bound for each probe step. Default 10 s. */
  timeoutMs?: number;
  /**
   * Called after the probe passed, with everything still running; the demo tears down when the returned
   * promise settles (`demo --keep` waits here for Ctrl-C).
   */
  whileRunning?: (handle: DemoHandle) => Promise<void>;
}

export interface DemoResult {
  ok: boolean;
  steps: DemoStep[];
  probe?: ProbeResult;
  /** The `hello` tool's answer. */
  greeting?: string;
  /** The first failure, if any. */
  failure?: { step: string; message: string; hint?: string; layer?: string };
  /** The proxy's JSON log lines (for a failure report). */
  proxyLog: string[];
  /** True when the temp directory is gone and every listener closed. */
  cleanedUp: boolean;
}

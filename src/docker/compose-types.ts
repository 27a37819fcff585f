/**
 * The compose model's shapes, on their own so the modules that build them (compose-fields, -merge, -service)
 * and the loader (compose-model) can share them without importing one another.
 */
import type { PyJson } from './py-compat.js';

export interface ServicePort {
  target: number;
  /** A host port, a range "8000-8010", or null for "any free port". */
  published: number | string | null;
  protocol: string | null;
  mode: string | null;
  hostIp: string | null;
}

export interface Bind {
  source: string;
  target: string;
  mode: string;
}

export type NetworkModeSpec =
  | { kind: 'default' }
  | { kind: 'service'; service: string }
  | { kind: 'builtin'; mode: 'host' | 'none' | 'bridge' };

export interface HealthcheckSpec {
  test: string[];
  intervalNs?: number;
  timeoutNs?: number;
  startPeriodNs?: number;
  retries?: number;
}

export interface ComposeService {
  name: string;
  /** compose's `Service.options` for this service: what the config hash is made of. */
  options: Record<string, PyJson>;
  /** The image the container runs (compose's default for a build without image: <project>_<service>). */
  image: string;
  build?: { context: string; dockerfile?: string; args: Record<string, string> };
  command?: string[];
  /** Docker's Env entries ("KEY=value", or "KEY" for an unset one). */
  env: string[];
  /** The resolved environment (null: listed but unset). */
  environment: Record<string, string | null>;
  binds: Bind[];
  user?: string;
  readOnly?: boolean;
  securityOpt?: string[];
  capAdd?: string[];
  capDrop?: string[];
  groupAdd?: string[];
  restart?: { Name: string; MaximumRetryCount: number };
  stopTimeoutSeconds?: number;
  logging?: { driver: string; options?: Record<string, string> };
  networkMode: NetworkModeSpec;
  dependsOn: Record<string, { condition: string }>;
  healthcheck?: HealthcheckSpec;
  ports: ServicePort[];
  labels: Record<string, string>;
}

export interface ComposeProject {
  name: string;
  /** The project directory (compose's working_dir), absolute. */
  dir: string;
  /** The compose files in merge order, absolute. */
  configFiles: string[];
  /** The `com.docker.compose.project.config_files` label as docker-compose 1.29 run in DIR writes it. */
  configFilesLabel: string;
  /** What ${VAR} resolves from: DIR/.env overlaid by the process environment. */
  env: Record<string, string>;
  /** Dependencies first (depends_on, network_mode service:). */
  services: ComposeService[];
  /** Variables used but unset (compose warns "The X variable is not set. Defaulting to a blank string."). */
  unsetVariables: string[];
  /** The project's default network, <project>_default. */
  networkName: string;
}

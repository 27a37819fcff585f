// The docker surface: everything outside src/docker imports from here. Nothing in src/docker prints;
// progress is reported as StackEvents through onEvent callbacks.
export {
  connectDocker,
  pingDocker,
  daemonInfo,
  connectionError,
  isConnectionError,
  type DockerConnection,
  type ConnectOptions,
  type DaemonInfo,
} from './client.js';
export {
  loadComposeProject,
  resolveProjectName,
  readComposeEnvironment,
  findComposeFiles,
  findService,
  normaliseProjectName,
  SUPPORTED_SERVICE_KEYS,
  type ComposeProject,
  type ComposeService,
  type LoadOptions,
} from './compose-model.js';
export { MissingVariableError } from './interpolate.js';
export { resolveDockerEndpoint, describeEndpoint, type DockerEndpoint } from './endpoint.js';
export { envDrift, readEnvDrift, type EnvDrift } from './env-drift.js';
export { planConverge, mountsChanged, type ServicePlan, type MountState, type ObservedContainer } from './plan.js';
export { readMountState, readMountStates } from './mounts.js';
export { saveContainerLog, logStamp, type SavedLog } from './save-logs.js';
export { configHash, configDict } from './config-hash.js';
export { LABELS, MOUNTS_DIGEST_LABEL, COMPOSE_VERSION_LABEL, containerName, containerLabels, networkLabels } from './labels.js';
export { containerCreateOptions } from './specs.js';
export { ensureServiceImage, pullImage, buildImage, inspectImageId, registryOf, type EnsureImageResult } from './images.js';
export { readJsonStream, StreamError, type DockerStreamMessage } from './json-stream.js';
export { LogDemuxer, readContainerLogs, countRegistrations, FULL_STRENGTH_CONNECTIONS, REGISTERED_PATTERN, type LogLine } from './logs.js';
export { diagnose, findSignatures, relevantLines, DIAGNOSIS_RULES, type Diagnosis, type SignatureHit } from './diagnose.js';
export { StackHealthError, waitForReady, waitForRegistrations, type RegistrationResult } from './health.js';
export { runPreflight, checkDataReadable, checkRootless, checkTunnelToken, type PreflightFinding } from './preflight.js';
export { listProjectContainers, listServiceContainers, inspectContainer, stackRoles, type ProjectContainer, type ContainerDetails } from './containers.js';
export {
  composeUp,
  composeDown,
  openStack,
  DEFAULT_UP_TIMEOUT_MS,
  type UpOptions,
  type UpResult,
  type DownOptions,
  type DownResult,
  type ContainerOutcome,
} from './stack.js';
export {
  dockerStackControl,
  HEALTHY_CONNECTIONS,
  recreateService,
  waitForCloudflared,
  type CloudflaredState,
  type DockerStackControl,
  type StackControl,
  type WaitForCloudflaredOptions,
} from './stack-control.js';
export { stackStatus, type StackStatus, type ServiceStatus, type RouteStatus, type CertificateStatus, type TunnelStatus } from './status.js';
export { projectLogs, type ProjectLogLine, type ProjectLogsOptions } from './project-logs.js';
export type { StackEvent, EventSink } from './events.js';

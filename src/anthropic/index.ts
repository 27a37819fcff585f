// The anthropic surface: Workload Identity Federation and the Tunnels API through @anthropic-ai/sdk, and
// the setup component's provisioning over data/ (provision.ts). Token rotation, which also drives the stack, is a
// use case: src/ops/rotate-token.ts. No printing, no prompts: src/cli does that.
export { createTunnelsClient, DEFAULT_MAX_RETRIES, type FederationSettings, type TunnelsClient, type TunnelsClientOptions } from './client.js';
export { explainApiError, type ApiErrorContext, type ApiOperation } from './errors.js';
export {
  DEFAULT_API_URL,
  defaultApiUrl,
  validateApiUrl,
  validateDisplayName,
  validateFederationRuleId,
  validateOrganizationId,
  validateWorkspaceId,
} from './ids.js';
export {
  checkFileSource,
  commandSource,
  describeSource,
  fileSource,
  identityTokenProvider,
  splitCommandLine,
  type IdentityTokenSource,
} from './identity-token.js';
export {
  describeCertificates,
  MAX_ACTIVE_CERTIFICATES,
  provisionTunnel,
  readStoredTunnelId,
  type CertificateSummary,
  type ProvisionEvent,
  type ProvisionOptions,
  type ProvisionResult,
  type TunnelAction,
  type TunnelSummary,
} from './provision.js';
export { readWifSettings, withWifSettings, WIF_ENV_KEYS, type CredentialFlow, type StoredWifSettings, type WifSettingsToStore } from './settings.js';
export {
  archiveCertificate,
  getTunnel,
  listActive,
  listAllCertificates,
  registerCa,
  type TunnelCertificate,
  type TunnelInfo,
  type TunnelsApi,
} from './certificates.js';

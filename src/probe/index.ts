// The client side of the tunnel, as a library: probe, demo, tests and benchmarks import from here.
export { TUNNEL_PROTOCOL, PROXY_ANSWERS, DEFAULT_TIMEOUT_MS, tunnelHost, tunnelUrl } from './tunnel-protocol.js';
export {
  TunnelError,
  WebSocketLayerError,
  TlsLayerError,
  RoutingLayerError,
  UpstreamLayerError,
  McpLayerError,
  isTunnelError,
  findTunnelError,
  classifyWebSocketError,
  classifyUpgradeResponse,
  classifyTlsError,
  classifyHttpFailure,
  type TunnelLayer,
  type TlsContext,
  type HttpContext,
} from './errors.js';
export { openTunnel, type OpenTunnelOptions, type OpenTunnelError, type Tunnel, type TunnelTimings } from './tunnel.js';
export { tunnelFetch, type TunnelFetch, type TunnelFetchOptions, type HttpFailure, type FetchFn } from './http.js';
export { checkTunnelCertificate, type CertificateCheck } from './certificate.js';
export { loadProbeDeployment, resolveProbeRoute, type ProbeDeployment } from './deployment.js';
export { runProbe, classifyMcpFailure, type RunProbeOptions, type ProbeResult, type ProbeStep, type ProbeStepName, type ProbeFailure } from './probe.js';

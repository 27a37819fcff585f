/**
 * The builtin proxy as a library (used by the `proxy` command, `demo`, tests and benchmarks).
 */
export { startProxy, type RunningProxy, type StartProxyOptions } from './server.js';
export { createJsonLogger, silentLogger, type Logger, type LogFields, type JsonLoggerOptions } from './logger.js';
export { ProxyMetrics, METRIC_PREFIX, UNKNOWN_ROUTE } from './metrics.js';
export { ADMIN_PATHS, type Readiness } from './admin.js';
export { CertReloader, loadCertificatePair, buildCertificatePair, CertificatePairError, DEFAULT_CERT_POLL_INTERVAL_MS, type ServedCertificate } from './cert-reloader.js';
export { UpstreamGuard, IpValidationError, asIpv4 } from './upstream-guard.js';
export { NO_ROUTE_BODY } from './router.js';
export { IP_REFUSED_BODY } from './forward.js';
export { DEFAULT_MAX_FRAME_BYTES } from './websocket-stream.js';

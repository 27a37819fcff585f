import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The proxy's Prometheus metrics, in a Registry of its own (never prom-client's global one, so several
 * proxies can live in one process, as in tests and `demo`). Served at GET /metrics on the admin listener.
 *
 * The metric names are a contract (dashboards, alerts, other tools of this project read them):
 *   mcp_tunnel_proxy_tunnel_connections_open              gauge    WebSocket tunnel connections open now
 *   mcp_tunnel_proxy_tunnel_connections_total             counter  WebSocket tunnel connections accepted
 *   mcp_tunnel_proxy_tunnel_connections_rejected_total    counter  {reason="max_connections"|"shutting_down"}
 *   mcp_tunnel_proxy_requests_total                       counter  {route, status}; route "_unknown" when no route matched
 *   mcp_tunnel_proxy_upstream_latency_seconds             histogram {route}: request sent -> upstream response headers
 *   mcp_tunnel_proxy_tls_handshake_failures_total         counter  {reason="timeout"|"error"}
 *   mcp_tunnel_proxy_upstream_ip_refusals_total           counter  {route}: upstream address outside allowed_ips
 *   mcp_tunnel_proxy_certificate_not_after_seconds        gauge    notAfter of the served certificate, unix seconds
 *   mcp_tunnel_proxy_certificate_reloads_total            counter  {result="success"|"failure"}
 * plus prom-client's standard process_* and nodejs_* metrics.
 */
export const METRIC_PREFIX = 'mcp_tunnel_proxy_';

/** Label value for requests whose Host matched no route (never the raw Host: that would be unbounded). */
export const UNKNOWN_ROUTE = '_unknown';

export interface ProxyMetricsOptions {
  /** Also collect prom-client's process_* and nodejs_* metrics (default true). */
  defaultMetrics?: boolean;
}

type CounterChild = { inc(value?: number): void };
type HistogramChild = { observe(value: number): void };

export class ProxyMetrics {
  readonly registry = new Registry();
  private readonly connectionsOpen: Gauge;
  private readonly connectionsTotal: Counter;
  private readonly connectionsRejected: Counter<'reason'>;
  private readonly requests: Counter<'route' | 'status'>;
  private readonly upstreamLatency: Histogram<'route'>;
  private readonly handshakeFailures: Counter<'reason'>;
  private readonly ipRefusals: Counter<'route'>;
  private readonly certNotAfter: Gauge;
  private readonly certReloads: Counter<'result'>;
  // prom-client hashes label sets on every labels() call; the hot path looks children up here instead.
  private readonly requestChildren = new Map<string, CounterChild>();
  private readonly latencyChildren = new Map<string, HistogramChild>();

  constructor(options: ProxyMetricsOptions = {}) {
    const registers = [this.registry];
    const p = METRIC_PREFIX;
    this.connectionsOpen = new Gauge({ name: `${p}tunnel_connections_open`, help: 'WebSocket tunnel connections open now', registers });
    this.connectionsTotal = new Counter({ name: `${p}tunnel_connections_total`, help: 'WebSocket tunnel connections accepted', registers });
    this.connectionsRejected = new Counter({
      name: `${p}tunnel_connections_rejected_total`,
      help: 'WebSocket upgrades refused (max_connections reached, or shutting down)',
      labelNames: ['reason'],
      registers,
    });
    this.requests = new Counter({ name: `${p}requests_total`, help: 'HTTP requests inside the tunnel, by route and status', labelNames: ['route', 'status'], registers });
    this.upstreamLatency = new Histogram({
      name: `${p}upstream_latency_seconds`,
      help: 'Time from sending a request upstream to its response headers, by route',
      labelNames: ['route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.handshakeFailures = new Counter({
      name: `${p}tls_handshake_failures_total`,
      help: 'Inner TLS handshakes that failed or timed out',
      labelNames: ['reason'],
      registers,
    });
    this.ipRefusals = new Counter({
      name: `${p}upstream_ip_refusals_total`,
      help: 'Requests refused because the upstream address is outside upstream.allowed_ips',
      labelNames: ['route'],
      registers,
    });
    this.certNotAfter = new Gauge({ name: `${p}certificate_not_after_seconds`, help: 'notAfter of the served certificate (unix seconds)', registers });
    this.certReloads = new Counter({ name: `${p}certificate_reloads_total`, help: 'Certificate hot reloads, by result', labelNames: ['result'], registers });
    // Make the zero-valued series visible from the start (alerts on rate() need them).
    this.handshakeFailures.inc({ reason: 'timeout' }, 0);
    this.handshakeFailures.inc({ reason: 'error' }, 0);
    this.certReloads.inc({ result: 'success' }, 0);
    this.certReloads.inc({ result: 'failure' }, 0);
    this.connectionsRejected.inc({ reason: 'max_connections' }, 0);
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  tunnelOpened(): void {
    this.connectionsOpen.inc();
    this.connectionsTotal.inc();
  }

  tunnelClosed(): void {
    this.connectionsOpen.dec();
  }

  tunnelRejected(reason: 'max_connections' | 'shutting_down' | 'bad_handshake'): void {
    this.connectionsRejected.inc({ reason });
  }

  requestFinished(route: string, status: number): void {
    const key = `${route}\u0000${status}`;
    let child = this.requestChildren.get(key);
    if (!child) {
      child = this.requests.labels(route, String(status));
      this.requestChildren.set(key, child);
    }
    child.inc();
  }

  upstreamResponded(route: string, seconds: number): void {
    let child = this.latencyChildren.get(route);
    if (!child) {
      child = this.upstreamLatency.labels(route);
      this.latencyChildren.set(route, child);
    }
    child.observe(seconds);
  }

  tlsHandshakeFailed(reason: 'timeout' | 'error'): void {
    this.handshakeFailures.inc({ reason });
  }

  upstreamIpRefused(route: string): void {
    this.ipRefusals.inc({ route });
  }

  certificateLoaded(notAfter: Date): void {
    this.certNotAfter.set(Math.floor(notAfter.getTime() / 1000));
  }

  certificateReloaded(ok: boolean): void {
    this.certReloads.inc({ result: ok ? 'success' : 'failure' });
  }

  /** Prometheus text exposition of everything above. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** The run's start time: Docker networks and containers created after it are this run's own (test/guard/net-guard.mjs). */
export default function setup(): void {
  process.env.TEST_NET_GUARD_SINCE ??= String(Date.now());
}

import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Every test file (and every node process it starts) runs under the network guard: loopback, unix sockets
    // and this run's own containers only.
    globalSetup: ['test/guard/global-setup.ts'],
    setupFiles: ['test/guard/setup.ts'],
    // Integration tests start real servers and containers; a generous per-test budget keeps CI honest
    // without hiding hangs (every test still has a bound).
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});

import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real servers and containers; a generous per-test budget keeps CI honest
    // without hiding hangs (every test still has a bound).
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});

import { defineConfig } from 'vitest/config';

// One embedded PostgreSQL and one redis-server serve the whole run (test/setup/global.ts);
// each test file isolates itself in its own schema and key prefix.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/global.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});

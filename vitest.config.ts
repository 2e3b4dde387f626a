import { defineConfig } from 'vitest/config';

export default defineConfig({
  // graphql 16 has no exports map: make tests and the externalised libraries share one copy
  resolve: { alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }] },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    globalSetup: ['test/harness/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 3,
    env: { TZ: 'UTC' },
  },
});

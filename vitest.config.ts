import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // e2e tests drive the real dotnet client, which is heavy on a 2-core machine: keep files sequential-ish
    maxWorkers: 2,
    fileParallelism: true,
    reporters: ['default'],
  },
});

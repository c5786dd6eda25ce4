import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'testkit/**/*.test.ts', 'test/**/*.test.ts', 'cluster-test/**/*.test.ts'],
    // Container and cluster tests touch real kernel state (cgroups, mounts, netns): keep files
    // in separate processes, and give real-process tests room.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});

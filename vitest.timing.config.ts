import { defineConfig } from 'vitest/config';

// Tests that bound wall-clock delays of the caller's own thread (the event
// loop during a burst): one file at a time, after the main suite, so another
// test file's workers do not share the two CPUs with the one measured.
export default defineConfig({
  test: {
    include: ['test/timing/**/*.test.ts'],
    testTimeout: 120000,
    hookTimeout: 60000,
    pool: 'forks',
    fileParallelism: false,
    server: { deps: { external: [/\/dist\//] } },
  },
});

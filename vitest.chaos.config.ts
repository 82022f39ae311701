import { defineConfig } from 'vitest/config';

// The reliability suite (npm run test:chaos). scripts/test-all.sh runs it
// with RAYTS_CHAOS_SCALE=ci, a bounded form for .ci/run.
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.test.ts'],
    testTimeout: 600000,
    hookTimeout: 60000,
    pool: 'forks',
    fileParallelism: false,
    server: { deps: { external: [/\/dist\//] } },
  },
});

import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/chaos/**', 'test/timing/**', '**/node_modules/**'],
    testTimeout: 60000,
    hookTimeout: 60000,
    pool: 'forks',
    server: { deps: { external: [/\/dist\//] } },
  },
});

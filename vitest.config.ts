import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run the TypeScript sources; the built dist/ is for the bins and for users.
    alias: {
      '@g2c/mux': src('./packages/mux/src/index.ts'),
      '@g2c/cli': src('./packages/cli/src/index.ts'),
      '@g2c/tunnel': src('./packages/tunnel/src/index.ts'),
      '@g2c/agent': src('./agent/src/index.ts'),
      '@g2c/relay': src('./relay/src/index.ts'),
    },
  },
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'agent/src/**/*.test.ts',
      'relay/src/**/*.test.ts',
      'demo/src/**/*.test.ts',
      'test/**/*.test.ts',
    ],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default', './test/summary-reporter.ts'],
  },
});

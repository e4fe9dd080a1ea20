import { defineConfig } from 'vitest/config';

// Native tests train small models; the learning test sets its own longer timeout.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});

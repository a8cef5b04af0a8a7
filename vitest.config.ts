import { defineConfig } from 'vitest/config';

// Integration tests start real servers and processes; give them room and run files one
// at a time on the 2-core build machines so timing-sensitive assertions stay meaningful.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A real redis-server for the scale-out tests (SLUICE_TEST_REDIS names your own).
    globalSetup: ['test/helpers/redis-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    reporters: ['default', 'json'],
    outputFile: { json: 'test-artifacts/vitest-report.json' },
  },
});

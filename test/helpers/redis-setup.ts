// Global setup: one real Redis for the whole test run. SLUICE_TEST_REDIS names a user's
// own server; otherwise scripts/test-redis.mjs starts Debian's redis-server on a free
// loopback port (installing it when missing) and stops it when the run ends. Tests read
// the URL with `inject('redisUrl')`.
import type { TestProject } from 'vitest/node';
// @ts-expect-error plain JavaScript helper shared with .ci/run
import { startRedis } from '../../scripts/test-redis.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const own = process.env.SLUICE_TEST_REDIS;
  if (own) {
    project.provide('redisUrl', own);
    return async () => {};
  }
  const redis = await startRedis();
  project.provide('redisUrl', redis.url);
  return () => redis.stop();
}

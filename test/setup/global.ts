/**
 * One real PostgreSQL (embedded) and one real redis-server for the whole run. Test files isolate themselves: each
 * creates its own schema (test/support/db.ts) and its own Redis key prefix.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { silentLogger } from '../../config/logger.ts';
import { startEmbeddedPostgres } from '../../store/embedded-postgres.ts';
import { startTestRedis } from '../support/redis.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    redisUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-test-pg-'));
  const postgres = await startEmbeddedPostgres({ dataDir, log: silentLogger(), settings: { fsync: 'off', synchronous_commit: 'off' } });
  const redis = await startTestRedis();
  project.provide('databaseUrl', postgres.connectionString);
  project.provide('redisUrl', redis.url);
  return async () => {
    await redis.stop();
    await postgres.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
}

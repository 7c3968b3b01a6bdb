/**
 * Per-suite database isolation: every caller gets a fresh schema in the run's PostgreSQL, migrated, and a pool whose
 * search_path points at it.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { createPool, migrate } from '../../store/db.ts';

export interface TestDatabase {
  url: string;
  schema: string;
  pool: pg.Pool;
  /** Drops the schema and closes the pool. */
  drop(): Promise<void>;
}

export function testDatabaseUrl(): string {
  return inject('databaseUrl');
}

export function testRedisUrl(): string {
  return inject('redisUrl');
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

export async function createTestDatabase(prefix = 't', poolSize = 10): Promise<TestDatabase> {
  const url = testDatabaseUrl();
  const schema = uniqueName(prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_'));
  const pool = createPool({ connectionString: url, schema, max: poolSize });
  await migrate(pool, schema);
  return {
    url,
    schema,
    pool,
    async drop() {
      // With the research schema the migrations make beside it (store/migrations/0021_research.sql).
      for (const each of [schema, `${schema}_research`]) await pool.query(`DROP SCHEMA IF EXISTS "${each}" CASCADE`).catch(() => undefined);
      await pool.end();
    },
  };
}

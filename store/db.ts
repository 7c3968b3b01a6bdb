/**
 * PostgreSQL access: the pool, transactions and versioned migrations.
 *
 * All anchorline tables live in one schema (config `database.schema`), selected through the connection's
 * search_path, so tests can give every suite a schema of its own and a deployment can share a database.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { parseJson } from '../anchor/index.ts';

// bigint (int8) columns come back as strings by default; ours (ids, counts) fit in a double.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

/**
 * Type parsers for queries that read FHIR resource content (`{ text, values, types: LOSSLESS_JSON_TYPES }`): json and
 * jsonb through anchor's parseJson, so a decimal keeps the precision it was stored with (jsonb keeps `5.40`, and
 * every digit of `12345678901234567890`; pg's default JSON.parse keeps neither); every other type as pg parses it.
 * Per query rather than for the pool: the lossless parser is several times slower than JSON.parse, and the queue's
 * and ledger's jsonb hold nothing it would change.
 */
export const LOSSLESS_JSON_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    format !== 'binary' && (oid === pg.types.builtins.JSONB || oid === pg.types.builtins.JSON)
      ? parseJson
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** Anything that can run a query: the pool or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

export interface PoolOptions {
  connectionString: string;
  schema: string;
  /** Connections in the pool. */
  max: number;
  /** Server-side statement timeout in ms; 0 disables. */
  statementTimeoutMs?: number;
  applicationName?: string;
}

export function createPool(options: PoolOptions): pg.Pool {
  const settings = [`-c search_path=${options.schema}`];
  if (options.statementTimeoutMs) settings.push(`-c statement_timeout=${options.statementTimeoutMs}`);
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max,
    options: settings.join(' '),
    application_name: options.applicationName ?? 'anchorline',
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client whose server connection dies emits 'error' on the pool; without a listener that would crash the
  // process. The next checkout gets a fresh connection, so nothing is lost by ignoring it here.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Runs `work` in a transaction. The callback may be run only once; it is not retried here, because only the caller
 * knows whether its side effects outside the database allow that.
 */
export interface TransactionOptions {
  /** false: commit without waiting for the WAL flush (only for work that can be redone from durable state). */
  synchronousCommit?: boolean;
  /**
   * Plan every statement for its actual parameters. Statements over arrays of keys (unnest, jsonb_to_recordset)
   * get generic plans that PostgreSQL switches to after five runs and that scan whole tables once they grow;
   * measured on the ingest batch: 2 ms with custom plans, 20 ms with the generic plan at 40k resources.
   */
  customPlans?: boolean;
}

export async function withTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  const client = await pool.connect();
  try {
    let begin = 'BEGIN';
    if (options.synchronousCommit === false) begin += '; SET LOCAL synchronous_commit = off';
    if (options.customPlans) begin += '; SET LOCAL plan_cache_mode = force_custom_plan';
    await client.query(begin);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

async function readMigrations(): Promise<Migration[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const sql = await readFile(path.join(MIGRATIONS_DIR, file), 'utf8');
    migrations.push({
      version: Number(file.slice(0, 4)),
      name: file.slice(5, -4),
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
    });
  }
  return migrations;
}

/**
 * Applies pending migrations in order, each in its own transaction, under an advisory lock so that an engine and
 * workers starting together do not race. An applied migration whose file has changed since is an error: shipped
 * migrations are never edited, only followed by new ones.
 */
export async function migrate(pool: pg.Pool, schema: string): Promise<number[]> {
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`anchorline-migrate:${schema}`]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const done = new Map<number, string>();
      for (const row of (await client.query<{ version: number; checksum: string }>('SELECT version, checksum FROM schema_migrations')).rows) {
        done.set(row.version, row.checksum);
      }
      for (const migration of await readMigrations()) {
        const existing = done.get(migration.version);
        if (existing !== undefined) {
          if (existing !== migration.checksum) {
            throw new Error(`migration ${migration.version}_${migration.name} was changed after it was applied`);
          }
          continue;
        }
        await client.query('BEGIN');
        try {
          await client.query(migration.sql);
          await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [migration.version, migration.name, migration.checksum]);
          await client.query('COMMIT');
          applied.push(migration.version);
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw new Error(`migration ${migration.version}_${migration.name} failed: ${(error as Error).message}`, { cause: error });
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`anchorline-migrate:${schema}`]);
    }
  } finally {
    client.release();
  }
  return applied;
}

/**
 * The store: PostgreSQL (external via DATABASE_URL, or embedded under the data directory), migrated at open.
 * Public surface of the folder.
 */
import type pg from 'pg';
import type { AnchorlineConfig } from '../config/schema.ts';
import { silentLogger, type Logger } from '../config/logger.ts';
import { createPool, migrate } from './db.ts';
import { runningEmbeddedConnection, startEmbeddedPostgres, type RunningPostgres } from './embedded-postgres.ts';

export { createPool, migrate, withTransaction, type Pool, type PoolClient, type Queryable } from './db.ts';
export { startEmbeddedPostgres, runningEmbeddedConnection, freePort, type RunningPostgres } from './embedded-postgres.ts';
export * as inbox from './inbox.ts';
export * as resources from './resources.ts';
export * as compartment from './compartment.ts';
export * as apiKeys from './api-keys.ts';
export * as oauthClients from './oauth-clients.ts';
export * as auditTrail from './audit-trail.ts';
export * as ledger from './ledger.ts';
export * as chainAnchors from './chain-anchors.ts';
export * as operations from './operations.ts';
export * as mappingConfigs from './mapping-configs.ts';
export * as mappingDeployments from './mapping-deployments.ts';
export * as messageSearch from './message-search.ts';
export { createFileBlobStore, isBlobDigest, blobSha256, type BlobStore, type BlobPut } from './blobs.ts';
export { auditLedger, AUDIT_CHECK_NAMES, type AuditCheckName, type AuditFinding, type AuditOptions, type AuditReport } from './audit.ts';
export { SEARCH_PARAMETERS } from './search-index.ts';
export type { InboxInput, InboxMessage, RecordOutcome, InboxState } from './inbox.ts';
export type { StoredResource, SearchCriterion } from './resources.ts';
export type { ApiKeyInfo } from './api-keys.ts';
export type { OAuthClient, NewOAuthClient } from './oauth-clients.ts';

export interface Store {
  pool: pg.Pool;
  connectionString: string;
  schema: string;
  close(): Promise<void>;
}

/** Opens the database (starting the embedded server when no URL is configured) and applies migrations. */
export async function openStore(config: AnchorlineConfig, log: Logger, options: { poolSize?: number; applicationName?: string } = {}): Promise<Store> {
  let embedded: RunningPostgres | undefined;
  let connectionString = config.database.url;
  if (!connectionString) {
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.database.embeddedPort, log });
    connectionString = embedded.connectionString;
  }
  const pool = createPool({
    connectionString,
    schema: config.database.schema,
    max: options.poolSize ?? config.database.poolSize,
    applicationName: options.applicationName ?? 'anchorline',
  });
  try {
    const applied = await migrate(pool, config.database.schema);
    if (applied.length > 0) log.info({ migrations: applied }, 'store: migrations applied');
  } catch (error) {
    await pool.end();
    await embedded?.stop();
    throw error;
  }
  return {
    pool,
    connectionString,
    schema: config.database.schema,
    async close() {
      await pool.end();
      await embedded?.stop();
    },
  };
}

/**
 * A migrated pool on the engine's database for a command-line tool (audit, mapping, terminology): DATABASE_URL; else
 * the embedded server of a running engine under the data dir; else the embedded server started here, and stopped
 * again by `close`.
 */
export async function openToolDatabase(config: AnchorlineConfig, applicationName: string): Promise<{ pool: pg.Pool; close(): Promise<void> }> {
  const running = config.database.url ? undefined : runningEmbeddedConnection(config.dataDir);
  if (!running) {
    const store = await openStore(config, silentLogger(), { poolSize: 2, applicationName });
    return { pool: store.pool, close: () => store.close() };
  }
  const pool = createPool({ connectionString: running, schema: config.database.schema, max: 2, applicationName });
  try {
    await migrate(pool, config.database.schema);
  } catch (error) {
    await pool.end();
    throw error;
  }
  return { pool, close: () => pool.end() };
}

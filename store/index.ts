/**
 * The store: PostgreSQL (external via DATABASE_URL, or embedded under the data directory), migrated at open.
 * Public surface of the folder.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import type { AnchorlineConfig } from '../config/schema.ts';
import { silentLogger, type Logger } from '../config/logger.ts';
import { createPool, migrate } from './db.ts';
import { attachKeyring, Keyring } from './keys.ts';
import { FileKms } from './kms.ts';
import { runningEmbeddedConnection, startEmbeddedPostgres, type RunningPostgres } from './embedded-postgres.ts';
import { ensureSearchIndex } from './search-index-build.ts';

export { createPool, migrate, refusedForItsValues, withTransaction, QueryCancellation, QueryAbandonedError, isQueryCanceled, isStatementTimeout, type Pool, type PoolClient, type Queryable } from './db.ts';
export { startEmbeddedPostgres, runningEmbeddedConnection, freePort, type RunningPostgres } from './embedded-postgres.ts';
export * as inbox from './inbox.ts';
export * as resources from './resources.ts';
export { blindIndexOf, BlindIndex, PUBLIC_BLIND_INDEX, PREFIX_CHARS } from './blind-index.ts';
export { ensureSearchIndex, type SearchIndexReport } from './search-index-build.ts';
export * as compartment from './compartment.ts';
export * as encryption from './keys.ts';
export { FileKms, type KeyManagementService } from './kms.ts';
export { Keyring, attachKeyring, keyringOf } from './keys.ts';
export { erasePatient, type ErasureOptions, type ErasureReport, type ErasureRequest } from './erasure.ts';
export { knownPatientOf, namesPatient, patientIdentifiers, type MessageBytes, type MessagePatientIdentifier, type MessagePatientReader, type MessagePatients } from './message-patients.ts';
export { keysByMasterKey, retireMasterKey, rewrapMasterKeys, type RewrapReport } from './key-rotation.ts';
export { rotatePatientKey, type PatientKeyRotationOptions, type PatientKeyRotationReport } from './patient-key-rotation.ts';
export * as apiKeys from './api-keys.ts';
export * as oauthClients from './oauth-clients.ts';
export * as users from './users.ts';
export * as signInApps from './sign-in-apps.ts';
export * as oidcPayloads from './oidc-payloads.ts';
export * as auditTrail from './audit-trail.ts';
export * as consents from './consents.ts';
export { ConsentCache, type ConsentCacheOptions } from './consents.ts';
export * as research from './research.ts';
export * as researchCohort from './research-cohort.ts';
export * as researchOmop from './research-omop.ts';
export * as ledger from './ledger.ts';
export * as log from './log.ts';
export * as chainAnchors from './chain-anchors.ts';
export * as operations from './operations.ts';
export * as mappingConfigs from './mapping-configs.ts';
export * as mappingDeployments from './mapping-deployments.ts';
export * as messageSearch from './message-search.ts';
export { createFileBlobStore, isBlobDigest, blobSha256, type BlobStore, type BlobPut, type BlobRead } from './blobs.ts';
export { configuredBlobStore, discardInstance, readInstance, storeInstance, type StoredInstance } from './instance-blobs.ts';
export { auditLedger, AUDIT_CHECK_NAMES, type AuditCheckName, type AuditFinding, type AuditOptions, type AuditReport } from './audit.ts';
export { SEARCH_PARAMETERS } from './search-index.ts';
export type { InboxInput, InboxMessage, RecordOutcome, InboxState } from './inbox.ts';
export type { StoredResource, SearchCriterion } from './resources.ts';
export type { ApiKeyInfo } from './api-keys.ts';
export type { OAuthClient, NewOAuthClient } from './oauth-clients.ts';
export type { User, UserRole, NewUser, UserChanges } from './users.ts';
export type { SignInApp } from './sign-in-apps.ts';

/**
 * The process's connection pools, one per kind of work, so that one kind cannot take the connections another needs
 * (sizes: config database.pools). Each opens connections only when used.
 */
export interface StorePools {
  /** HL7 v2, C-CDA and DICOM intake, the Postgres queue, the bootstrap key and the readiness check. */
  intake: pg.Pool;
  /** The HTTP API; every statement is limited to http.queryTimeoutMs (statement_timeout). */
  api: pg.Pool;
  /** The ingest workers' mapping transactions. */
  workers: pg.Pool;
  /** Anchor worker, chain anchor, sweeper, mapping config polling; also cancels abandoned API statements. */
  background: pg.Pool;
}

export interface Store {
  /** The intake pool (pools.intake), for callers that predate the separate pools. */
  pool: pg.Pool;
  pools: StorePools;
  connectionString: string;
  schema: string;
  /** The data keys (store/keys.ts), attached to every pool; undefined when encryption was never turned on. */
  keyring: Keyring | undefined;
  close(): Promise<void>;
}

/** Where the master key file is: encryption.masterKeyFile, default '<dataDir>/master-key.json'. */
export function masterKeyFilePath(config: AnchorlineConfig): string {
  return config.encryption.masterKeyFile ?? path.join(config.dataDir, 'master-key.json');
}

/**
 * The keyring of a process: with encryption.enabled, over the master key file (created at first start); without it,
 * still over the file when one exists, so that records sealed while encryption was on stay readable (nothing new is
 * sealed); else none.
 */
export async function openKeyring(config: AnchorlineConfig): Promise<Keyring | undefined> {
  const file = masterKeyFilePath(config);
  if (!config.encryption.enabled && !existsSync(file)) return undefined;
  const kms = await FileKms.open(file);
  return new Keyring(kms, { sealing: config.encryption.enabled, cacheMaxKeys: config.encryption.keyCacheMaxKeys, cacheTtlMs: config.encryption.keyCacheTtlMs });
}

/**
 * Opens the database (starting the embedded server when no URL is configured) and applies migrations. `poolSize`
 * sets every pool to that size instead of database.pools (command-line tools).
 */
export async function openStore(
  config: AnchorlineConfig,
  log: Logger,
  options: {
    poolSize?: number;
    applicationName?: string;
    /** Pools whose server sessions run at this niceness when the server is on this host (PoolOptions.sessionNiceness). */
    lowPriority?: { pools: Array<keyof StorePools>; niceness: number };
  } = {},
): Promise<Store> {
  let embedded: RunningPostgres | undefined;
  let connectionString = config.database.url;
  if (!connectionString) {
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.database.embeddedPort, log });
    connectionString = embedded.connectionString;
  }
  const sizes = config.database.pools;
  const applicationName = options.applicationName ?? 'anchorline';
  let warned = false;
  const refused = (error: unknown): void => {
    if (warned) return;
    warned = true;
    log.warn({ code: (error as { code?: unknown }).code }, 'store: the priority of PostgreSQL sessions cannot be lowered; mapping competes with intake at equal priority');
  };
  const lowered = new Set(options.lowPriority?.pools ?? []);
  const pool = (name: keyof StorePools, max: number, statementTimeoutMs?: number): pg.Pool =>
    createPool({
      ...(lowered.has(name) ? { sessionNiceness: { niceness: options.lowPriority!.niceness, onRefused: refused } } : {}),
      connectionString: connectionString!,
      schema: config.database.schema,
      max: options.poolSize ?? max,
      // Named per pool, so pg_stat_activity shows which kind of work holds a connection.
      applicationName: `${applicationName}/${name}`,
      ...(statementTimeoutMs ? { statementTimeoutMs } : {}),
    });
  const pools: StorePools = {
    intake: pool('intake', sizes.intakeConnections),
    api: pool('api', sizes.apiConnections, config.http.queryTimeoutMs),
    workers: pool('workers', sizes.workerConnections),
    background: pool('background', sizes.backgroundConnections),
  };
  const keyring = await openKeyring(config);
  if (keyring) for (const each of Object.values(pools)) attachKeyring(each, keyring);
  const endPools = async (): Promise<void> => {
    await Promise.all(Object.values(pools).map((p) => p.end()));
  };
  try {
    const applied = await migrate(pools.intake, config.database.schema);
    if (applied.length > 0) log.info({ migrations: applied }, 'store: migrations applied');
    await ensureSearchIndex(pools.intake, log);
  } catch (error) {
    await endPools();
    await embedded?.stop();
    throw error;
  }
  return {
    pool: pools.intake,
    pools,
    keyring,
    connectionString,
    schema: config.database.schema,
    async close() {
      await endPools();
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
    const keyring = await openKeyring(config);
    if (keyring) attachKeyring(pool, keyring);
    await migrate(pool, config.database.schema);
    await ensureSearchIndex(pool, silentLogger());
  } catch (error) {
    await pool.end();
    throw error;
  }
  return { pool, close: () => pool.end() };
}

/**
 * An engine started in-process for a test: its own schema in the run's PostgreSQL, free ports, a temporary data dir,
 * silent logs. Pass `redisUrl` to run the queue on BullMQ (with a key prefix of its own).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { DestinationStream } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { parseConfig } from '../../config/load.ts';
import { silentLogger, createLogger } from '../../config/logger.ts';
import type { AnchorlineConfig } from '../../config/schema.ts';
import { startEngine, type Engine, type EngineRole } from '../../cli/engine.ts';
import { attachKeyring } from '../../store/keys.ts';
import { testDatabaseUrl, uniqueName } from './db.ts';
import { MllpTestClient } from './mllp-client.ts';

export const TEST_API_KEY = 'test-admin-key-0123456789abcdef';

export interface TestEngine {
  engine: Engine;
  config: AnchorlineConfig;
  /** A pool of the test's own on the engine's schema, with the engine's keyring attached (store/keys.ts). */
  pool: pg.Pool;
  httpUrl: string;
  mllpPort: number;
  /** The DIMSE listener's port (0 when dicom.enabled is false). */
  dicomPort: number;
  close(): Promise<void>;
  /** Drops the schema and the data dir (after close). */
  destroy(): Promise<void>;
}

export interface TestEngineOptions {
  redisUrl?: string;
  schema?: string;
  role?: EngineRole;
  overrides?: Record<string, unknown>;
  /** Log lines go here (at config log.level, 'debug' when the config says 'silent') instead of nowhere. */
  logDestination?: DestinationStream;
}

export function testConfig(dataDir: string, schema: string, options: TestEngineOptions = {}): AnchorlineConfig {
  const overrides = options.overrides ?? {};
  const raw: Record<string, unknown> = {
    dataDir,
    http: { port: 0 },
    mllp: { port: 0 },
    dicom: { port: 0 },
    database: { url: testDatabaseUrl(), schema },
    redis: options.redisUrl ? { url: options.redisUrl, keyPrefix: schema } : {},
    auth: { apiKey: TEST_API_KEY },
    sweeper: { intervalMs: 300, staleAfterMs: 1_000 },
    queue: { lockMs: 3_000, backoffMs: 100 },
    engine: { shutdownGraceMs: 5_000 },
    // Tests map in their own process unless they are about the worker process (a child per engine costs seconds).
    workers: { isolation: 'inline' },
    log: { level: process.env.TEST_LOG_LEVEL ?? 'silent' },
  };
  // Engines started on one schema (intake and worker nodes) share a master key file, as engines sharing a database
  // must: a worker opens what the intake sealed.
  if (options.schema !== undefined) raw.encryption = { masterKeyFile: sharedMasterKeyFile(options.schema) };
  for (const [key, value] of Object.entries(overrides)) {
    raw[key] = typeof value === 'object' && value && !Array.isArray(value) ? { ...(raw[key] as object), ...(value as object) } : value;
  }
  return parseConfig(raw);
}

/** The master key file of the engines on `schema`, outside any one engine's data dir. */
function sharedMasterKeyFile(schema: string): string {
  return path.join(os.tmpdir(), `anchorline-keys-${schema}`, 'master-key.json');
}

export async function startTestEngine(options: TestEngineOptions = {}): Promise<TestEngine> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-engine-'));
  const schema = options.schema ?? uniqueName('e');
  const config = testConfig(dataDir, schema, options);
  const log = options.logDestination
    ? createLogger({ level: config.log.level === 'silent' ? 'debug' : config.log.level, destination: options.logDestination })
    : config.log.level === 'silent'
      ? silentLogger()
      : createLogger({ level: config.log.level });
  const engine = await startEngine(config, log, options.role ?? 'all');
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await engine.close();
  };
  const pool = new pg.Pool({ connectionString: testDatabaseUrl(), options: `-c search_path=${schema}`, max: 4 });
  // The test reads the store as a tool on the engine's config would (openToolDatabase): sealed rows open.
  if (engine.store.keyring) attachKeyring(pool, engine.store.keyring);
  return {
    engine,
    config,
    pool,
    httpUrl: `http://127.0.0.1:${engine.httpPort}`,
    mllpPort: engine.mllpPort ?? 0,
    dicomPort: engine.dicomPort ?? 0,
    close,
    async destroy() {
      await close();
      // The research database lives in a schema of its own beside the engine's (store/migrations/0021_research.sql).
      for (const each of [schema, `${schema}_research`]) await pool.query(`DROP SCHEMA IF EXISTS "${each}" CASCADE`).catch(() => undefined);
      await pool.end();
      await rm(dataDir, { recursive: true, force: true });
      if (options.schema !== undefined) await rm(path.dirname(sharedMasterKeyFile(options.schema)), { recursive: true, force: true });
    },
  };
}

/** Polls until `check` returns a value that is not undefined/false, or fails after timeoutMs. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

export function authHeaders(key = TEST_API_KEY): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

/**
 * A test file's engine and one MLLP client to it: started before the file's tests, `ready` given both once they are
 * up (the file keeps them in variables of its own), the client closed and the engine stopped after the tests.
 */
export function withEngineAndClient(options: TestEngineOptions, ready: (engine: TestEngine, client: MllpTestClient) => void, timeoutMs?: number): void {
  let engine: TestEngine | undefined;
  let client: MllpTestClient | undefined;
  beforeAll(async () => {
    engine = await startTestEngine(options);
    client = await MllpTestClient.connect(engine.mllpPort);
    ready(engine, client);
  }, timeoutMs);
  afterAll(async () => {
    await client?.close();
    await engine?.destroy();
  });
}

/**
 * PostgreSQL access: the pool, transactions and versioned migrations.
 *
 * All anchorline tables live in one schema (config `database.schema`), selected through the connection's
 * search_path, so tests can give every suite a schema of its own and a deployment can share a database.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setPriority } from 'node:os';
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

/**
 * Distinct statement texts made at run time that get a prepared name (preparedName). Each name is a statement that
 * every connection which ran it keeps for its life, so the names must stay few.
 */
const PREPARED_SHAPES = 200;
const preparedShapes = new Map<string, string>();

/**
 * A name for a statement whose text is made at run time (a search's shape: which parameters, how many values), so
 * that each connection parses and plans it once and reuses the plan: PostgreSQL spent 175 µs planning a read of the
 * fhir_resource view and 37 µs running it. The text must hold every value as a parameter, never inline. Past
 * PREPARED_SHAPES distinct texts, undefined: the statement runs unnamed, planned each time, as before.
 */
export function preparedName(text: string): string | undefined {
  const known = preparedShapes.get(text);
  if (known !== undefined || preparedShapes.size >= PREPARED_SHAPES) return known;
  const name = `anchorline_q_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
  preparedShapes.set(text, name);
  return name;
}

export interface PoolOptions {
  connectionString: string;
  schema: string;
  /** Connections in the pool. */
  max: number;
  /** Server-side statement timeout in ms; 0 disables. */
  statementTimeoutMs?: number;
  applicationName?: string;
  /** Run the pool's server sessions at a lower CPU priority, when the server is on this host. */
  sessionNiceness?: SessionNiceness;
}

export interface SessionNiceness {
  /** Unix niceness, 0-19. */
  niceness: number;
  /** Called when a session's priority cannot be changed; the session is used all the same. */
  onRefused: (error: unknown) => void;
}

export function createPool(options: PoolOptions): pg.Pool {
  const settings = [`-c search_path=${options.schema}`];
  if (options.statementTimeoutMs) settings.push(`-c statement_timeout=${options.statementTimeoutMs}`);
  const onConnect = options.sessionNiceness && sessionPriorityHook(options.connectionString, options.sessionNiceness);
  const pool = new pg.Pool({
    ...(onConnect ? { onConnect } : {}),
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
  // A checked-out client has no such listener: when PostgreSQL restarts while a transaction holds one between two
  // statements, its 'error' event would be unhandled and end the process. The transaction's next statement fails
  // (and its work is retried); the pool drops the broken client when it is released with that error.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/**
 * True when a connection string reaches its server over a Unix socket (`?host=/dir`, or a host that is a path): the
 * server then runs on this machine, and the process id pg_backend_pid() names is one of this machine's processes.
 */
export function overUnixSocket(connectionString: string): boolean {
  try {
    const url = new URL(connectionString);
    return (url.searchParams.get('host') ?? decodeURIComponent(url.hostname)).startsWith('/');
  } catch {
    return false;
  }
}

/**
 * The pool's connect hook that runs each new server session at `niceness` (setpriority on its backend process), so
 * that the work on it yields the cores to other sessions when they are short. Only for a server on this host
 * (overUnixSocket); elsewhere there is no hook and the sessions keep their priority. A session whose priority cannot
 * be changed (the server runs as another user, and this process may not) is reported to `onRefused` and used as it is.
 */
function sessionPriorityHook(connectionString: string, { niceness, onRefused }: SessionNiceness): ((client: pg.ClientBase) => Promise<void>) | undefined {
  if (niceness <= 0 || !overUnixSocket(connectionString)) return undefined;
  return async (client) => {
    try {
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const pid = rows[0]!.pid;
      // A pooler on this host may front a server elsewhere: only a local PostgreSQL process is touched.
      const name = readProcessName(pid);
      if (name !== undefined && !name.startsWith('postgres')) throw new Error(`process ${pid} is not a PostgreSQL backend of this host`);
      setPriority(pid, niceness);
    } catch (error) {
      onRefused(error);
    }
  };
}

/** A process's name from /proc (Linux); undefined where there is no /proc. */
function readProcessName(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT' && !existsSync('/proc/self')) return undefined;
    throw error;
  }
}

/** PostgreSQL's query_canceled: a statement stopped by statement_timeout or by pg_cancel_backend. */
export const QUERY_CANCELED = '57014';

/** True for an error (or an error it was caused by) that says the server cancelled the statement. */
export function isQueryCanceled(error: unknown): boolean {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { code?: unknown }).code === QUERY_CANCELED) return true;
  }
  return false;
}

/** True when the cancelled statement ran out of statement_timeout, rather than being cancelled by a caller. */
export function isStatementTimeout(error: unknown): boolean {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { code?: unknown }).code === QUERY_CANCELED) return /statement timeout/.test((e as Error).message ?? '');
  }
  return false;
}

/** Thrown instead of running a statement for work whose caller went away (QueryCancellation.run). */
export class QueryAbandonedError extends Error {
  constructor() {
    super('the caller went away; the statement was not run');
    this.name = 'QueryAbandonedError';
  }
}

interface CancelScope {
  readonly signal: AbortSignal;
  /** Clients checked out by the work, with the number of statements each is running for it. */
  readonly running: Map<pg.PoolClient, number>;
  /** Clients whose statement was cancelled: closed instead of going back to the pool. */
  readonly cancelled: Set<pg.PoolClient>;
}

/**
 * Cancels a pool's statements on the server when the work that started them is abandoned (an HTTP client that
 * disconnected): closing the socket does not stop PostgreSQL, which runs a statement to its end before it notices
 * that nobody reads the answer. node-postgres cannot cancel a statement of a pooled client, so this instruments the
 * pool: `connect()` and `query()` called inside `run(signal, work)` tie the client they check out to the work, and
 * when the signal aborts, every client still running a statement for it is cancelled with pg_cancel_backend from the
 * `canceller` pool (another pool, so that a full pool can still be cancelled). A cancelled client is closed when it
 * is released rather than reused: a cancel that arrives late could otherwise stop the next caller's statement. Once
 * aborted, the work's further statements fail at once with QueryAbandonedError, but for the ROLLBACK of
 * withTransaction. Work outside `run` (the authentication of a request, background jobs) is not affected.
 */
export class QueryCancellation {
  private readonly scopes = new AsyncLocalStorage<CancelScope>();
  private readonly canceller: Queryable;

  constructor(pool: pg.Pool, canceller: Queryable) {
    this.canceller = canceller;
    const connect = pool.connect.bind(pool);
    const scopes = this.scopes;
    const adopt = (scope: CancelScope, client: pg.PoolClient): pg.PoolClient => {
      if (scope.signal.aborted) {
        client.release();
        throw new QueryAbandonedError();
      }
      scope.running.set(client, 0);
      const release = client.release;
      client.release = (error?: Error | boolean) => {
        scope.running.delete(client);
        // Back to the prototype's query for whoever checks the client out next.
        delete (client as { query?: unknown }).query;
        client.release = release;
        release(error ?? (scope.cancelled.has(client) ? new QueryAbandonedError() : undefined));
      };
      const query = client.query;
      (client as { query: unknown }).query = (...args: unknown[]): unknown => {
        const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string } | undefined)?.text;
        if (scope.signal.aborted && text !== 'ROLLBACK') return Promise.reject(new QueryAbandonedError());
        const result = (query as (...a: unknown[]) => unknown).apply(client, args);
        if (result instanceof Promise) {
          scope.running.set(client, (scope.running.get(client) ?? 0) + 1);
          const done = (): void => {
            const n = scope.running.get(client);
            if (n !== undefined) scope.running.set(client, n - 1);
          };
          result.then(done, done);
        }
        return result;
      };
      return client;
    };
    pool.connect = ((callback?: unknown) => {
      const scope = scopes.getStore();
      if (callback !== undefined || !scope) return (connect as (cb?: unknown) => unknown)(callback);
      return connect().then((client) => adopt(scope, client));
    }) as typeof pool.connect;
    // pg-pool's own query() hands out its client from inside the pool's queue, where the caller's async context is
    // lost; routed through connect() here, it stays with the work that asked.
    const poolQuery = pool.query.bind(pool) as (...args: unknown[]) => unknown;
    (pool as { query: unknown }).query = (...args: unknown[]): unknown => {
      if (!scopes.getStore() || typeof args.at(-1) === 'function') return poolQuery(...args);
      return (async () => {
        const client = await pool.connect();
        let failure: unknown;
        try {
          return await (client.query as (...a: unknown[]) => Promise<unknown>)(...args);
        } catch (error) {
          failure = error;
          throw error;
        } finally {
          // As pg-pool does: a client whose statement failed is not trusted back into the pool.
          client.release(failure === undefined ? undefined : (failure as Error));
        }
      })();
    };
  }

  /** Runs `work`; statements it starts on the pool are cancelled on the server when `signal` aborts. */
  run<T>(signal: AbortSignal, work: () => T): T {
    const scope: CancelScope = { signal, running: new Map(), cancelled: new Set() };
    if (!signal.aborted) signal.addEventListener('abort', () => this.cancel(scope), { once: true });
    return this.scopes.run(scope, work);
  }

  private cancel(scope: CancelScope): void {
    for (const [client, statements] of scope.running) {
      const pid = (client as unknown as { processID?: number | null }).processID;
      if (statements > 0 && typeof pid === 'number') {
        scope.cancelled.add(client);
        // Best effort: when it fails, statement_timeout still ends the statement.
        this.canceller.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => undefined);
      }
    }
  }
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

/**
 * Whether PostgreSQL refused a statement for the values it was given, so that the same values fail the same way
 * every time: SQLSTATE class 22 (data exception: a NUL in text or JSON, a number out of range, a malformed value),
 * 23502 (not null) and 23514 (check constraint) of class 23, and class 54 (program limit exceeded: a value too long
 * for an index row). Not a unique, foreign key or exclusion violation (23505, 23503, 23P01): between concurrent
 * writers those are races (two workers creating the same new resource) that the next try resolves. Nor anything
 * that fails whatever the values (connection, lock, serialization, resource errors). Looks through `cause` chains.
 */
export function refusedForItsValues(error: unknown): string | undefined {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^(22[0-9A-Z]{3}|23502|23514|54[0-9A-Z]{3})$/.test(code)) return code;
  }
  return undefined;
}

/**
 * Splits rows into runs of at most `limit` bytes by `bytesOf` (a row larger than the limit is a run of its own): pages
 * of raw bytes that a reader opens or a statement sends at once, bounded in memory.
 */
export function* byteGroups<Row>(rows: Row[], bytesOf: (row: Row) => number, limit: number): Generator<Row[]> {
  let group: Row[] = [];
  let groupBytes = 0;
  for (const row of rows) {
    const bytes = bytesOf(row);
    if (group.length > 0 && groupBytes + bytes > limit) {
      yield group;
      group = [];
      groupBytes = 0;
    }
    group.push(row);
    groupBytes += bytes;
  }
  if (group.length > 0) yield group;
}

/**
 * The PostgreSQL queue driver: the embedded default when no Redis is configured. Jobs live in the `queue_job` table
 * (store/migrations/0002_queue_jobs.sql, which describes the states).
 *
 * How it moves work, and why:
 * - Enqueue is one statement for any number of jobs (INSERT ... SELECT FROM unnest ... ON CONFLICT) that also sends
 *   a NOTIFY, delivered when it commits.
 * - Each consumer claims up to its free slots in one statement (`FOR UPDATE SKIP LOCKED`, so consumers never wait on
 *   each other), marking the rows active with a lease: locked_until = now + lockMs. A timer renews the leases of the
 *   jobs the consumer holds. A consumer that dies stops renewing, its leases run out, and the claim query treats an
 *   expired lease like a due job: that is the at-least-once guarantee.
 * - Outcomes (complete = delete, retry, fail, release) are batched: handlers that finish while one outcome statement is
 *   in flight go out together in the next. A crash between a handler finishing and its outcome being written means the
 *   job runs again, which the contract allows.
 * - Idle consumers wake on LISTEN/NOTIFY, received on one dedicated connection per JobQueue. Notifications can be
 *   missed (the connection drops, the database restarts), so consumers also poll every pollIntervalMs and sleep only
 *   until the next delayed job is due. The listening connection reconnects on its own; polling keeps work moving
 *   meanwhile, and a reconnect wakes every consumer in case it missed something.
 */
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import type { Logger } from '../config/logger.ts';
import { AnchorlineError } from '../errors/index.ts';
import type { Pool, PoolClient } from '../store/db.ts';
import { INGEST_JOB_PREFIX, INGEST_QUEUE } from './ingest-jobs.ts';
import {
  assertConcurrency,
  assertQueueName,
  DEFAULT_CLOSE_GRACE_MS,
  failureLogFields,
  failureReason,
  isPermanentFailure,
  normaliseJobs,
  retryDelayMs,
  sleep,
  throttledWarn,
  type Consumer,
  type ConsumeOptions,
  type EnqueueJob,
  type JobCounts,
  type JobHandler,
  type JobQueue,
  type QueueSettings,
} from './types.ts';

export interface PostgresQueueOptions {
  /** How often an idle consumer looks for due jobs without being notified, in ms. Default 1000. */
  pollIntervalMs?: number;
}

const DEFAULT_POLL_INTERVAL_MS = 1_000;
/** Outcomes written per statement at most; more wait for the next one. */
const OUTCOME_BATCH = 5_000;
/** How long close() keeps trying to write finished jobs' outcomes after its grace period, in ms. */
const OUTCOME_WRITE_GRACE_MS = 2_000;

// Statements are named, so each pooled connection parses and plans them once.

const ENQUEUE_SQL = `
WITH input AS (
  SELECT job_key, data_id, delay_ms, ord
  FROM unnest($2::text[], $3::text[], $4::int8[]) WITH ORDINALITY AS t(job_key, data_id, delay_ms, ord)
), upserted AS (
  INSERT INTO queue_job AS j (queue, job_key, data, run_at)
  SELECT $1, job_key, jsonb_build_object('id', data_id), now() + delay_ms * interval '1 millisecond'
  FROM input ORDER BY ord
  ON CONFLICT (queue, job_key) DO UPDATE
    SET data = excluded.data, state = 'waiting', run_at = excluded.run_at, attempts = 0, locked_until = NULL,
        locked_by = NULL, last_error = NULL, failed_at = NULL, created_at = now(), updated_at = now()
    WHERE j.state = 'failed'
  RETURNING 1
)
SELECT (SELECT count(*) FROM upserted)::int AS added,
       (SELECT count(*) FROM (SELECT pg_notify($5, $1) FROM upserted LIMIT 1) AS n)::int AS notified`;

const CLAIM_SQL = `
WITH picked AS (
  SELECT id FROM queue_job
  WHERE queue = $1 AND state <> 'failed' AND claimable_at <= now()
  ORDER BY claimable_at, id
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)
UPDATE queue_job AS j
SET state = 'active', attempts = j.attempts + 1, locked_by = $3,
    locked_until = now() + $4 * interval '1 millisecond', updated_at = now()
FROM picked WHERE j.id = picked.id
RETURNING j.id, j.job_key, j.data ->> 'id' AS data_id, j.attempts`;

// Every update checks (id, attempts, locked_by, state): a run that lost its lease (and maybe saw the job claimed
// again) must not touch the newer run.
const OUTCOME_SQL = `
WITH outcome AS (
  SELECT * FROM unnest($2::int8[], $3::int4[], $4::text[], $5::int8[], $6::text[]) AS o(id, attempts, kind, delay_ms, error)
), completed AS (
  DELETE FROM queue_job AS j USING outcome AS o
  WHERE o.kind = 'complete' AND j.id = o.id AND j.attempts = o.attempts AND j.locked_by = $1 AND j.state = 'active'
  RETURNING j.id
), unfinished AS (
  UPDATE queue_job AS j
  SET state = CASE WHEN o.kind = 'fail' THEN 'failed' ELSE 'waiting' END,
      run_at = CASE WHEN o.kind = 'fail' THEN j.run_at ELSE now() + o.delay_ms * interval '1 millisecond' END,
      locked_by = NULL, locked_until = NULL, last_error = COALESCE(o.error, j.last_error),
      failed_at = CASE WHEN o.kind = 'fail' THEN now() END, updated_at = now()
  FROM outcome AS o
  WHERE o.kind <> 'complete' AND j.id = o.id AND j.attempts = o.attempts AND j.locked_by = $1 AND j.state = 'active'
  RETURNING o.kind
)
SELECT (SELECT count(*) FROM completed)::int AS completed,
       (SELECT count(*) FROM (SELECT pg_notify($7, $8) FROM unfinished WHERE kind = 'release' LIMIT 1) AS n)::int AS notified`;

const RENEW_SQL = `
UPDATE queue_job SET locked_until = now() + $3 * interval '1 millisecond', updated_at = now()
WHERE id = ANY($1::int8[]) AND locked_by = $2 AND state = 'active'`;

const NEXT_DUE_SQL = `
SELECT (extract(epoch FROM min(claimable_at) - clock_timestamp()) * 1000)::float8 AS ms
FROM queue_job WHERE queue = $1 AND state <> 'failed'`;

const COUNTS_SQL = `
SELECT count(*) FILTER (WHERE state = 'waiting' AND run_at <= now())::int AS waiting,
       count(*) FILTER (WHERE state = 'active')::int AS active,
       count(*) FILTER (WHERE state = 'waiting' AND run_at > now())::int AS delayed,
       count(*) FILTER (WHERE state = 'failed')::int AS failed
FROM queue_job WHERE queue = $1`;

interface ClaimedRow {
  id: number;
  job_key: string;
  data_id: string;
  attempts: number;
}

type OutcomeKind = 'complete' | 'retry' | 'fail' | 'release';

interface Outcome {
  held: HeldJob;
  kind: OutcomeKind;
  delayMs: number;
  error: string | null;
}

/** A claim this consumer holds: its handler is running, or its outcome is not written yet. */
interface HeldJob {
  rowId: number;
  attempt: number;
  running: boolean;
}

/** Creates the Postgres driver. The pool (its search_path selects the schema) stays owned by the caller. */
export async function createPostgresQueue(pool: Pool, settings: QueueSettings, log: Logger, options: PostgresQueueOptions = {}): Promise<JobQueue> {
  const { rows } = await pool.query<{ schema: string }>('SELECT current_schema() AS schema');
  const schema = rows[0]?.schema;
  if (!schema) throw new AnchorlineError('ANCHORLINE_ERR_CONFIG_INVALID', 'the database connection has no current schema');
  return new PostgresJobQueue(pool, settings, log, schema, options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
}

/** NOTIFY channels are database-wide, so the channel is per schema: deployments and tests sharing a database do not wake each other. */
function channelFor(schema: string): string {
  const channel = `anchorline_queue_${schema}`;
  // Identifiers longer than 63 bytes would be truncated by LISTEN but rejected by pg_notify.
  return Buffer.byteLength(channel) <= 63 ? channel : `anchorline_queue_${createHash('sha256').update(schema).digest('hex').slice(0, 32)}`;
}

/** Errors that mean the database could not be reached (as opposed to a bad statement). */
function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    // SQLSTATE class 08 (connection exception), 57P01-57P03 (shutdown, cannot connect now), 53 (out of resources).
    if (code.startsWith('08') || code.startsWith('57P0') || code.startsWith('53')) return true;
    if (/^E[A-Z]+$/.test(code)) return true; // ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE, ...
  }
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection refused/i.test(message);
}

class PostgresJobQueue implements JobQueue {
  readonly driver = 'postgres' as const;
  private readonly channel: string;
  private readonly consumers = new Set<PostgresConsumer>();
  private listener: NotificationListener | undefined;
  private closed = false;

  readonly pool: Pool;
  readonly settings: QueueSettings;
  readonly log: Logger;
  readonly pollIntervalMs: number;

  constructor(pool: Pool, settings: QueueSettings, log: Logger, schema: string, pollIntervalMs: number) {
    this.pool = pool;
    this.settings = settings;
    this.log = log;
    this.pollIntervalMs = pollIntervalMs;
    this.channel = channelFor(schema);
  }

  /**
   * Adds jobs inside the caller's transaction (a transactional outbox): they exist exactly when that transaction
   * commits, and it pays for one commit instead of two.
   */
  async enqueueInTransaction(client: PoolClient, queue: string, jobs: readonly EnqueueJob[]): Promise<void> {
    assertQueueName(queue);
    this.assertOpen();
    const batch = normaliseJobs(jobs);
    if (batch.length === 0) return;
    await client.query({ name: 'anchorline_queue_enqueue', text: ENQUEUE_SQL, values: this.enqueueValues(queue, batch) });
  }

  inlineIngestEnqueue(firstParam: number): { ctes: string; from: string; values: unknown[] } {
    this.assertOpen();
    const queue = `$${firstParam}::text`;
    const channel = `$${firstParam + 1}::text`;
    const prefix = `$${firstParam + 2}::text`;
    // The same job as enqueue(ingestJob(id)) writes: key prefix || id, data {"id": "<id>"}, runnable now; a failed
    // job of that key is made waiting again (never the case for a new message's id, kept for the same rule).
    const ctes = `ingest_jobs AS (
      INSERT INTO queue_job AS j (queue, job_key, data, run_at)
      SELECT ${queue}, ${prefix} || id, jsonb_build_object('id', id::text), now() FROM ingest_ids ORDER BY id
      ON CONFLICT (queue, job_key) DO UPDATE
        SET data = excluded.data, state = 'waiting', run_at = excluded.run_at, attempts = 0, locked_until = NULL,
            locked_by = NULL, last_error = NULL, failed_at = NULL, created_at = now(), updated_at = now()
        WHERE j.state = 'failed'
      RETURNING 1)`;
    const from = `(SELECT count(*) FROM (SELECT pg_notify(${channel}, ${queue}) FROM ingest_jobs LIMIT 1) AS n) AS ingest_notified(n)`;
    return { ctes, from, values: [INGEST_QUEUE, this.channel, INGEST_JOB_PREFIX] };
  }

  private enqueueValues(queue: string, batch: ReturnType<typeof normaliseJobs>): unknown[] {
    return [queue, batch.map((j) => j.jobId), batch.map((j) => j.dataId), batch.map((j) => j.delayMs), this.channel];
  }

  async enqueue(queue: string, jobs: readonly EnqueueJob[]): Promise<void> {
    assertQueueName(queue);
    this.assertOpen();
    const batch = normaliseJobs(jobs);
    if (batch.length === 0) return;
    const values = this.enqueueValues(queue, batch);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.pool.query({ name: 'anchorline_queue_enqueue', text: ENQUEUE_SQL, values });
        return;
      } catch (error) {
        // Two batches sharing job keys in different orders can deadlock on each other's new rows; Postgres aborts
        // one, and the statement is safe to repeat.
        if ((error as { code?: string }).code === '40P01' && attempt < 3) continue;
        if (isConnectionError(error)) throw new AnchorlineError('ANCHORLINE_ERR_QUEUE_UNAVAILABLE', 'the queue database is unreachable', { cause: error });
        throw error;
      }
    }
  }

  consume(queue: string, handler: JobHandler, options: ConsumeOptions): Consumer {
    assertQueueName(queue);
    assertConcurrency(options.concurrency);
    this.assertOpen();
    if (!this.listener) {
      this.listener = new NotificationListener(
        { ...(this.pool.options as pg.ClientConfig), keepAlive: true },
        this.channel,
        this.log,
        (payload) => this.wake(payload),
        () => this.wake(undefined),
      );
      this.listener.start();
    }
    const consumer = new PostgresConsumer(this, queue, handler, options.concurrency, () => this.consumers.delete(consumer));
    this.consumers.add(consumer);
    consumer.start();
    return consumer;
  }

  async counts(queue: string): Promise<JobCounts> {
    assertQueueName(queue);
    try {
      const { rows } = await this.pool.query<JobCounts>({ name: 'anchorline_queue_counts', text: COUNTS_SQL, values: [queue] });
      return rows[0] ?? { waiting: 0, active: 0, delayed: 0, failed: 0 };
    } catch (error) {
      if (isConnectionError(error)) throw new AnchorlineError('ANCHORLINE_ERR_QUEUE_UNAVAILABLE', 'the queue database is unreachable', { cause: error });
      throw error;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.consumers.size > 0) {
      // Shutdown order is workers first; if a caller forgot, release their jobs rather than leave them to lease expiry.
      this.log.warn({ consumers: this.consumers.size }, 'queue closed before its consumers; closing them now');
      await Promise.all([...this.consumers].map((consumer) => consumer.close(0)));
    }
    await this.listener?.stop();
  }

  /** Wakes the consumers of one queue, or of all queues (after a reconnect, when notifications may have been missed). */
  private wake(queue: string | undefined): void {
    for (const consumer of this.consumers) {
      if (queue === undefined || consumer.queue === queue) consumer.wake();
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new AnchorlineError('ANCHORLINE_ERR_SHUTTING_DOWN', 'the queue is closed');
  }

  // ---- statements used by consumers ----

  async claim(queue: string, consumerId: string, limit: number): Promise<ClaimedRow[]> {
    const { rows } = await this.pool.query<ClaimedRow>({
      name: 'anchorline_queue_claim',
      text: CLAIM_SQL,
      values: [queue, limit, consumerId, this.settings.lockMs],
    });
    return rows;
  }

  async writeOutcomes(queue: string, consumerId: string, outcomes: readonly Outcome[]): Promise<void> {
    await this.pool.query({
      name: 'anchorline_queue_outcome',
      text: OUTCOME_SQL,
      values: [
        consumerId,
        outcomes.map((o) => o.held.rowId),
        outcomes.map((o) => o.held.attempt),
        outcomes.map((o) => o.kind),
        outcomes.map((o) => o.delayMs),
        outcomes.map((o) => o.error),
        this.channel,
        queue,
      ],
    });
  }

  async renew(consumerId: string, rowIds: number[]): Promise<void> {
    await this.pool.query({ name: 'anchorline_queue_renew', text: RENEW_SQL, values: [rowIds, consumerId, this.settings.lockMs] });
  }

  /** Ms until the queue's next job becomes claimable (<= 0: one is due now), or null when it holds none. */
  async nextDueMs(queue: string): Promise<number | null> {
    const { rows } = await this.pool.query<{ ms: number | null }>({ name: 'anchorline_queue_next_due', text: NEXT_DUE_SQL, values: [queue] });
    return rows[0]?.ms ?? null;
  }
}

/** A one-slot wake-up: notify() before wait() is not lost, and several notify() calls wake one wait(). */
class Signal {
  private pending = false;
  private resolveWaiter: (() => void) | undefined;

  notify(): void {
    this.pending = true;
    const resolve = this.resolveWaiter;
    this.resolveWaiter = undefined;
    resolve?.();
  }

  wait(timeoutMs: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(), Math.max(0, timeoutMs));
      const done = (): void => {
        clearTimeout(timer);
        this.resolveWaiter = undefined;
        this.pending = false;
        resolve();
      };
      this.resolveWaiter = done;
    });
  }
}

/** Resolves when `promise` settles or after `ms`, whichever is first, without leaving a timer behind. */
async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([promise.then(noop, noop), new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, ms))))]);
  } finally {
    clearTimeout(timer);
  }
}

function noop(): void {}

class PostgresConsumer implements Consumer {
  private readonly id = `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  /** Woken when work may have arrived (a notification, a retry coming due, shutdown). */
  private readonly workArrived = new Signal();
  /** Woken when a handler finishes and frees a slot. */
  private readonly slotFreed = new Signal();
  private readonly held = new Set<HeldJob>();
  private readonly tasks = new Set<Promise<void>>();
  private readonly warn: (fields: Record<string, unknown>, message: string) => void;
  private outcomes: Outcome[] = [];
  private inFlight = 0;
  private stopping = false;
  /** Set once close() has given up on the rest: late outcomes are dropped (their leases run out instead). */
  private abandoned = false;
  private pumping: Promise<void> | undefined;
  private flushing: Promise<void> | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private renewing = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryAt = Infinity;
  private closing: Promise<void> | undefined;

  readonly queue: string;
  private readonly owner: PostgresJobQueue;
  private readonly handler: JobHandler;
  private readonly concurrency: number;
  private readonly onClosed: () => void;

  constructor(owner: PostgresJobQueue, queue: string, handler: JobHandler, concurrency: number, onClosed: () => void) {
    this.owner = owner;
    this.queue = queue;
    this.handler = handler;
    this.concurrency = concurrency;
    this.onClosed = onClosed;
    this.warn = throttledWarn(owner.log);
  }

  start(): void {
    // Renew well before expiry, so that one slow or failed renewal does not lose the lease.
    this.renewTimer = setInterval(() => void this.renewLeases(), Math.max(50, Math.floor(this.owner.settings.lockMs / 3)));
    this.pumping = this.pump();
  }

  wake(): void {
    this.workArrived.notify();
  }

  close(graceMs = DEFAULT_CLOSE_GRACE_MS): Promise<void> {
    this.closing ??= this.shutdown(graceMs);
    return this.closing;
  }

  /** Claims jobs while slots are free; sleeps when the queue has nothing due. */
  private async pump(): Promise<void> {
    const poll = this.owner.pollIntervalMs;
    while (!this.stopping) {
      const free = this.concurrency - this.inFlight;
      if (free <= 0) {
        await this.slotFreed.wait(poll);
        // Handlers that finish together (a batch committed at once) free their slots in one turn of the event loop;
        // claim for all of them at once instead of one job per wake-up.
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      let claimed: ClaimedRow[];
      try {
        claimed = await this.owner.claim(this.queue, this.id, free);
      } catch (error) {
        this.warn({ queue: this.queue, errorCode: (error as { code?: string }).code }, 'queue claim failed; will retry');
        await this.workArrived.wait(poll);
        continue;
      }
      if (this.stopping) {
        // close() began while the claim was in flight: hand these back untouched instead of starting them.
        this.releaseUnstarted(claimed);
        break;
      }
      for (const row of claimed) this.run(row);
      if (claimed.length < free) {
        // Nothing more is due (or other consumers hold what is): sleep until notified, until the next job is due,
        // or at most one poll interval.
        let sleepMs = poll;
        try {
          const dueMs = await this.owner.nextDueMs(this.queue);
          if (dueMs !== null) sleepMs = Math.min(poll, Math.max(dueMs, claimed.length === 0 ? 10 : 0));
        } catch {
          // The claim above reports connection trouble; polling covers this.
        }
        if (sleepMs > 0) await this.workArrived.wait(sleepMs);
      }
    }
  }

  private releaseUnstarted(rows: readonly ClaimedRow[]): void {
    if (rows.length === 0) return;
    const outcomes = rows.map((row) => ({
      held: { rowId: row.id, attempt: row.attempts, running: false },
      kind: 'release' as const,
      delayMs: 0,
      error: null,
    }));
    this.owner.writeOutcomes(this.queue, this.id, outcomes).catch((error: unknown) => {
      this.warn({ queue: this.queue, errorCode: (error as { code?: string }).code }, 'releasing jobs failed; their leases will expire instead');
    });
  }

  private run(row: ClaimedRow): void {
    const held: HeldJob = { rowId: row.id, attempt: row.attempts, running: true };
    this.held.add(held);
    this.inFlight += 1;
    const task = this.execute(row, held).finally(() => {
      this.inFlight -= 1;
      this.tasks.delete(task);
      this.slotFreed.notify();
    });
    this.tasks.add(task);
  }

  private async execute(row: ClaimedRow, held: HeldJob): Promise<void> {
    const { maxAttempts } = this.owner.settings;
    const fields = { queue: this.queue, jobId: row.job_key, attempt: row.attempts };
    if (row.attempts > maxAttempts) {
      // Only runs cut short by dead workers get here (a handler's own errors stop at maxAttempts): a job that keeps
      // killing its worker is failed instead of being handed out forever.
      this.owner.log.warn(fields, 'job failed: its runs were cut short more than maxAttempts times');
      this.record(held, 'fail', 0, 'ANCHORLINE_ERR_INTERNAL: lease expired on every attempt (worker died or stalled)');
      return;
    }
    try {
      await this.handler({ id: row.data_id }, { queue: this.queue, jobId: row.job_key, attempt: row.attempts });
      this.record(held, 'complete', 0, null);
    } catch (error) {
      const reason = failureReason(error);
      if (isPermanentFailure(error)) {
        this.owner.log.warn({ ...fields, ...failureLogFields(error) }, 'job failed permanently');
        this.record(held, 'fail', 0, reason);
      } else if (row.attempts >= maxAttempts) {
        this.owner.log.warn({ ...fields, ...failureLogFields(error) }, 'job failed; attempts exhausted');
        this.record(held, 'fail', 0, reason);
      } else {
        const delayMs = retryDelayMs(this.owner.settings, row.attempts);
        this.owner.log.warn({ ...fields, ...failureLogFields(error), retryInMs: delayMs }, 'job failed; will retry');
        this.record(held, 'retry', delayMs, reason);
      }
    }
  }

  private record(held: HeldJob, kind: OutcomeKind, delayMs: number, error: string | null): void {
    held.running = false;
    if (this.abandoned) {
      this.held.delete(held);
      return;
    }
    this.outcomes.push({ held, kind, delayMs, error });
    this.flush();
  }

  /** Starts writing outcomes unless a write is in flight; that one picks up what arrived meanwhile. */
  private flush(): void {
    if (this.flushing) return;
    this.flushing = this.writeOutcomes().finally(() => {
      this.flushing = undefined;
      if (this.outcomes.length > 0 && !this.abandoned) this.flush();
    });
  }

  private async writeOutcomes(): Promise<void> {
    while (this.outcomes.length > 0 && !this.abandoned) {
      const batch = this.outcomes.splice(0, OUTCOME_BATCH);
      try {
        await this.owner.writeOutcomes(this.queue, this.id, batch);
      } catch (error) {
        // Keep them and try again: until written, the jobs stay leased (and renewed) by this consumer.
        this.outcomes.unshift(...batch);
        this.warn({ queue: this.queue, errorCode: (error as { code?: string }).code }, 'writing job outcomes failed; will retry');
        await sleep(this.owner.pollIntervalMs);
        continue;
      }
      for (const outcome of batch) {
        this.held.delete(outcome.held);
        if (outcome.kind === 'retry') this.wakeAt(Date.now() + outcome.delayMs);
      }
    }
  }

  /** Wakes the pump when a retry comes due, so a short backoff is not stretched to the poll interval. */
  private wakeAt(at: number): void {
    if (this.stopping || at >= this.retryAt) return;
    clearTimeout(this.retryTimer);
    this.retryAt = at;
    this.retryTimer = setTimeout(() => {
      this.retryAt = Infinity;
      this.workArrived.notify();
    }, Math.max(0, at - Date.now()));
  }

  private async renewLeases(): Promise<void> {
    if (this.renewing || this.held.size === 0) return;
    this.renewing = true;
    try {
      await this.owner.renew(this.id, [...new Set([...this.held].map((h) => h.rowId))]);
    } catch (error) {
      this.warn({ queue: this.queue, errorCode: (error as { code?: string }).code }, 'renewing job leases failed; will retry');
    } finally {
      this.renewing = false;
    }
  }

  private async shutdown(graceMs: number): Promise<void> {
    const deadline = Date.now() + graceMs;
    this.stopping = true;
    clearTimeout(this.retryTimer);
    this.workArrived.notify();
    this.slotFreed.notify();
    // Bounded: a claim stuck on an unreachable database must not hold shutdown (its result is released if it
    // ever arrives).
    await settleWithin(this.pumping ?? Promise.resolve(), deadline - Date.now());
    await settleWithin(Promise.all(this.tasks), deadline - Date.now());
    // Write what finished. Even close(0) gets a short while for that; after it, give up (those jobs run again once
    // their leases expire).
    const writeDeadline = Math.max(deadline, Date.now() + OUTCOME_WRITE_GRACE_MS);
    while (Date.now() < writeDeadline) {
      if (this.outcomes.length > 0 && !this.flushing) this.flush();
      if (!this.flushing) break;
      await settleWithin(this.flushing, writeDeadline - Date.now());
    }
    const stillRunning = [...this.held].filter((h) => h.running);
    if (stillRunning.length > 0) {
      // Hand them back now rather than after lockMs: another worker can take them at once. Their handlers keep
      // running here, but with the lease gone their outcomes match no row and are dropped.
      this.owner.log.warn({ queue: this.queue, jobs: stillRunning.length, graceMs }, 'releasing jobs still running after the shutdown grace period');
      try {
        await this.owner.writeOutcomes(this.queue, this.id, stillRunning.map((held) => ({ held, kind: 'release' as const, delayMs: 0, error: null })));
      } catch (error) {
        this.warn({ queue: this.queue, errorCode: (error as { code?: string }).code }, 'releasing jobs failed; their leases will expire instead');
      }
    }
    this.abandoned = true;
    clearInterval(this.renewTimer);
    this.held.clear();
    this.outcomes = [];
    this.onClosed();
  }
}

/**
 * LISTEN on a dedicated connection (not from the pool: it is held forever and must survive the pool's idle
 * timeout). Reconnects with backoff when the connection is lost; `onConnected` runs after every (re)connect.
 */
class NotificationListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly warn: (fields: Record<string, unknown>, message: string) => void;

  private readonly config: pg.ClientConfig;
  private readonly channel: string;
  private readonly log: Logger;
  private readonly onNotify: (payload: string) => void;
  private readonly onConnected: () => void;

  constructor(config: pg.ClientConfig, channel: string, log: Logger, onNotify: (payload: string) => void, onConnected: () => void) {
    this.config = config;
    this.channel = channel;
    this.log = log;
    this.onNotify = onNotify;
    this.onConnected = onConnected;
    this.warn = throttledWarn(log);
  }

  start(): void {
    void this.connect();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client(this.config);
    let lost = false;
    const onLost = (error?: unknown): void => {
      if (lost) return;
      lost = true;
      if (this.client === client) this.client = undefined;
      client.end().catch(noop);
      if (this.stopped) return;
      this.warn({ errorCode: (error as { code?: string } | undefined)?.code }, 'queue notification connection lost; reconnecting (consumers poll meanwhile)');
      const delayMs = Math.min(250 * 2 ** this.failures, 5_000);
      this.failures += 1;
      this.retryTimer = setTimeout(() => void this.connect(), delayMs);
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (message) => {
      if (message.channel === this.channel && message.payload) this.onNotify(message.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel.replaceAll('"', '""')}"`);
    } catch (error) {
      onLost(error);
      return;
    }
    if (this.stopped || lost) {
      await client.end().catch(noop);
      return;
    }
    if (this.failures > 0) this.log.info('queue notification connection restored');
    this.client = client;
    this.failures = 0;
    this.onConnected();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    if (client) await client.end().catch(noop);
  }
}

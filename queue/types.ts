/**
 * The work queue's contract, shared by both drivers (BullMQ on Redis, and PostgreSQL when no Redis is configured).
 *
 * What the queue is for. Postgres is the source of truth; the queue only distributes work. A producer commits its
 * state first (e.g. the intake stores a message) and then enqueues a job naming it, and a sweeper re-enqueues anything
 * that is not finished. So a job carries ids only (`{ id }`), a failed enqueue loses nothing, and the queue may hand a
 * job out more than once: delivery is at-least-once, never exactly-once.
 *
 * Enqueue and duplicates. Within one queue a job is identified by its `jobId`. `enqueue` adds each job unless a job
 * with the same jobId is already waiting, delayed or active in that queue; then that entry is a no-op (its data and
 * delay are not changed). Duplicates inside one call count once (the first wins). A job that completed has been
 * removed, so the same jobId can be added again and will run again; completion is recorded just after the handler
 * resolves, so an enqueue racing that moment may still be a no-op (the sweeper covers that window). A job kept as
 * failed is replaced by the new one, starting again from attempt 1: re-enqueueing is how work whose retries were
 * exhausted gets another chance. `data` is stored as `{ id }` whatever else the object holds. Enqueue of a batch is
 * all-or-nothing. When the backend cannot be reached it rejects quickly with ANCHORLINE_ERR_QUEUE_UNAVAILABLE
 * (retryable) instead of waiting for it.
 *
 * Outcomes. A handler that resolves completes the job: it is removed. A handler that throws an AnchorlineError whose
 * catalogue entry is not retryable fails the job at once: it is kept as failed, for inspection, and never retried.
 * Any other throw is retried after backoffMs * 2^(attempt - 1) until maxAttempts runs have been made; then the job is
 * kept as failed. Failed jobs are bounded (BullMQ keeps the newest 10000; Postgres keeps them until re-enqueued or
 * deleted by an operator).
 *
 * What a handler may assume. Nothing about earlier runs: it may be a first run, a retry after its own error, or a
 * re-run after a worker died mid-job or was shut down (its run was cut short and the job handed out again after its
 * lease expired or it was released). It may even overlap a run that a stalled worker has not yet noticed it lost.
 * So a handler re-reads its input from Postgres by id and writes idempotently: running it twice has one effect.
 * `ctx.attempt` is 1-based and counts every time the job was handed to a handler, including runs cut short by a dead
 * worker; those count towards maxAttempts too, so a job that keeps killing its worker ends up failed rather than
 * looping. The queue never logs or stores anything but ids, attempt numbers and error codes/messages (which, by the
 * error catalogue's rule, carry no patient data).
 *
 * Lifecycle. Resources are created at start-up, passed in, and closed on shutdown: close consumers (workers) first,
 * then the queue.
 */
import type { Logger } from '../config/logger.ts';
import { AnchorlineError, isAnchorlineError } from '../errors/index.ts';
import type { PoolClient } from '../store/db.ts';

/** What a job carries: the id of the record its handler re-reads from Postgres. Ids only, never payloads. */
export interface JobData {
  readonly id: string;
}

export interface JobContext {
  /** Queue the job came from. */
  readonly queue: string;
  /** The job's id within that queue, as given to enqueue. */
  readonly jobId: string;
  /** 1-based: which run of this job this is (runs cut short by a dead worker count). */
  readonly attempt: number;
}

export type JobHandler = (data: JobData, ctx: JobContext) => Promise<void>;

export interface QueueSettings {
  /** Runs a job may get before it is kept as failed (config `queue.maxAttempts`). */
  maxAttempts: number;
  /** First retry delay, doubled each further attempt, in ms (config `queue.backoffMs`). */
  backoffMs: number;
  /** A running job whose worker stops renewing its lease is handed out again after this long, in ms (config `queue.lockMs`). */
  lockMs: number;
}

export interface EnqueueJob {
  /** Identity of the job within its queue (see the duplicate rules above). */
  jobId: string;
  data: JobData;
  /** Do not run before this many ms from now. Default 0. */
  delayMs?: number;
}

export interface ConsumeOptions {
  /** Handlers this consumer runs at once. */
  concurrency: number;
}

export interface JobCounts {
  /** Ready to run now. */
  waiting: number;
  /** Claimed by a worker (including ones whose worker died and whose lease has not been noticed as expired yet). */
  active: number;
  /** Scheduled for later: enqueued with a delay, or waiting out a retry backoff. */
  delayed: number;
  /** Kept as failed. */
  failed: number;
}

export interface JobQueue {
  readonly driver: 'postgres' | 'bullmq';
  /** Adds jobs to a queue; see the duplicate rules above. Rejects with ANCHORLINE_ERR_QUEUE_UNAVAILABLE when the backend is down. */
  enqueue(queue: string, jobs: readonly EnqueueJob[]): Promise<void>;
  /**
   * Present only on drivers whose jobs live in the caller's database: adds the jobs inside the caller's open
   * transaction, so they exist exactly when it commits (same duplicate rules as enqueue).
   */
  enqueueInTransaction?(client: PoolClient, queue: string, jobs: readonly EnqueueJob[]): Promise<void>;
  /**
   * Present only on drivers whose jobs live in the caller's database: the parts of one statement that also enqueues
   * an ingest job for each message id in the caller's CTE `ingest_ids(id)`, so that rows and their jobs are written
   * by one statement, in one round trip. `ctes` are further WITH items (they may refer to ingest_ids), `from` is a
   * one-row relation to cross-join in the final SELECT (it makes the notification happen), and `values` are their
   * parameters, numbered from `firstParam`.
   */
  inlineIngestEnqueue?(firstParam: number): { ctes: string; from: string; values: unknown[] };
  /** Starts running `handler` for the queue's jobs, at most `concurrency` at once, until the consumer is closed. */
  consume(queue: string, handler: JobHandler, options: ConsumeOptions): Consumer;
  counts(queue: string): Promise<JobCounts>;
  /** Closes connections. Consumers must be closed first (close workers before queues). */
  close(): Promise<void>;
}

export interface Consumer {
  /**
   * Stops taking new jobs and waits for the running ones, up to graceMs (default DEFAULT_CLOSE_GRACE_MS); jobs still
   * running then are released so that another worker takes them (their handlers are not interrupted, but their
   * outcome is ignored).
   */
  close(graceMs?: number): Promise<void>;
}

/** How long Consumer.close waits for running handlers by default, in ms; matches config `engine.shutdownGraceMs`. */
export const DEFAULT_CLOSE_GRACE_MS = 20_000;

// ---- Shared by the drivers; not part of the public surface (index.ts does not export these). ----

/** Queue names become Redis key segments and NOTIFY payloads, so they are restricted to a safe alphabet. */
const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

export function assertQueueName(queue: string): void {
  if (!QUEUE_NAME.test(queue)) {
    throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'queue name must be 1-100 characters of A-Z a-z 0-9 _ . - and start with a letter or digit');
  }
}

export function assertConcurrency(concurrency: number): void {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'concurrency must be a positive integer');
  }
}

/** Validates a batch and drops later duplicates of a jobId (the first one wins, as a second enqueue would be a no-op). */
export function normaliseJobs(jobs: readonly EnqueueJob[]): Array<{ jobId: string; dataId: string; delayMs: number }> {
  const seen = new Set<string>();
  const result: Array<{ jobId: string; dataId: string; delayMs: number }> = [];
  for (const job of jobs) {
    if (typeof job.jobId !== 'string' || job.jobId.length === 0 || job.jobId.length > 512) {
      throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'jobId must be a string of 1-512 characters');
    }
    if (typeof job.data?.id !== 'string') {
      throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'job data must be { id: string }');
    }
    const delayMs = job.delayMs ?? 0;
    if (!Number.isFinite(delayMs) || delayMs < 0) {
      throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'delayMs must be a non-negative number');
    }
    if (seen.has(job.jobId)) continue;
    seen.add(job.jobId);
    result.push({ jobId: job.jobId, dataId: job.data.id, delayMs: Math.round(delayMs) });
  }
  return result;
}

/** Delay before the run after a failed `attempt` (1-based): backoffMs * 2^(attempt - 1). */
export function retryDelayMs(settings: QueueSettings, attempt: number): number {
  return settings.backoffMs * 2 ** Math.max(0, attempt - 1);
}

/** True when the catalogue says trying again cannot help. Unknown errors are assumed transient. */
export function isPermanentFailure(error: unknown): boolean {
  return isAnchorlineError(error) && !error.retryable;
}

/**
 * The failure text stored with a job and logged. Catalogue errors carry code and detail, which are free of patient
 * data by the catalogue's rule; any other error is reduced to its name and a bounded message.
 */
export function failureReason(error: unknown): string {
  if (isAnchorlineError(error)) return error.message;
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 500);
  return 'non-error value thrown';
}

/** Log fields for a failed run: ids, attempt and error code only. */
export function failureLogFields(error: unknown): { errorCode: string; errorName?: string } {
  if (isAnchorlineError(error)) return { errorCode: error.code };
  return { errorCode: 'ANCHORLINE_ERR_INTERNAL', errorName: error instanceof Error ? error.name : typeof error };
}

/**
 * Logs a recurring background failure (a lost connection, say) once, then at most once per interval with a count of
 * what was suppressed, so an outage does not flood the log.
 */
export function throttledWarn(log: Logger, intervalMs = 10_000): (fields: Record<string, unknown>, message: string) => void {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (fields, message) => {
    const now = Date.now();
    const entry = last.get(message);
    if (entry && now - entry.at < intervalMs) {
      entry.suppressed += 1;
      return;
    }
    last.set(message, { at: now, suppressed: 0 });
    log.warn({ ...fields, ...(entry?.suppressed ? { suppressed: entry.suppressed } : {}) }, message);
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

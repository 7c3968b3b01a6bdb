/**
 * Operational statistics read from PostgreSQL: message counts by state and minute, recent errors, and how far
 * anchoring lags. The database is the one place every engine and worker process writes to, so these are right for
 * the whole deployment whichever process answers. GET /admin/stats and the state gauges of GET /metrics both read
 * them here.
 *
 * Cost: every statement reads an index range bounded by time or by a small partial index, never the whole inbox
 * (migration 0012): counts over the last minute, 30 minutes or 24 hours read that window of inbox_message_received
 * or inbox_message_processed; the backlog reads inbox_message_unfinished (queued rows only); the leaf counts read
 * ledger_leaf_unbatched. Counting is still proportional to the window's traffic, so callers should not poll more
 * than every few seconds. Times come from the database's clock, so ages do not depend on the caller's.
 */
import type { Queryable } from './db.ts';

/** How far back `byState` and `errors` look, in hours. */
export const RECENT_WINDOW_HOURS = 24;
/** Minutes of per-minute throughput. */
export const THROUGHPUT_MINUTES = 30;

export interface MessageCounts {
  /** Messages received (any disposition) in the last 60 seconds. */
  receivedLastMinute: number;
  /** Messages received in the last RECENT_WINDOW_HOURS, by their state now. */
  byState: { queued: number; done: number; failed: number; rejected: number };
  /** Of those done, the messages mapped with warnings (mapping issues of severity warning or error). */
  mappedWithWarnings: number;
}

export async function messageCounts(db: Queryable): Promise<MessageCounts> {
  const result = await db.query<{ last_minute: number; queued: number; done: number; failed: number; rejected: number; warned: number }>(
    `SELECT count(*) FILTER (WHERE received_at >= now() - interval '60 seconds')::int AS last_minute,
            count(*) FILTER (WHERE state = 'queued')::int AS queued,
            count(*) FILTER (WHERE state = 'done')::int AS done,
            count(*) FILTER (WHERE state = 'failed')::int AS failed,
            count(*) FILTER (WHERE state = 'rejected')::int AS rejected,
            -- Through the partial index of warned messages (0013), which holds only the few that have warnings.
            (SELECT count(*)::int FROM inbox_message w
              WHERE w.mapping_warnings > 0 AND w.state = 'done' AND w.received_at >= now() - make_interval(hours => $1)) AS warned
       FROM inbox_message
      WHERE received_at >= now() - make_interval(hours => $1)`,
    [RECENT_WINDOW_HOURS],
  );
  const row = result.rows[0]!;
  return {
    receivedLastMinute: row.last_minute,
    byState: { queued: row.queued, done: row.done, failed: row.failed, rejected: row.rejected },
    mappedWithWarnings: row.warned,
  };
}

/** Accepted messages not yet mapped (state 'queued'), however old. */
export async function inboxBacklog(db: Queryable): Promise<number> {
  const result = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM inbox_message WHERE state = 'queued'`);
  return result.rows[0]!.n;
}

export interface ThroughputMinute {
  /** Start of the minute. */
  minute: Date;
  /** Messages received in that minute (any disposition). */
  received: number;
  /** Messages mapped in that minute. */
  done: number;
  /** Messages that failed mapping in that minute. */
  failed: number;
}

/** One row per minute of the last THROUGHPUT_MINUTES, oldest first, the current (partial) minute last. */
export async function throughput(db: Queryable): Promise<ThroughputMinute[]> {
  const result = await db.query<{ minute: Date; received: number; done: number; failed: number }>(
    `WITH bounds AS (SELECT date_trunc('minute', now()) - make_interval(mins => $1 - 1) AS since),
          minutes AS (SELECT generate_series(since, date_trunc('minute', now()), interval '1 minute') AS minute FROM bounds),
          received AS (
            SELECT date_trunc('minute', received_at) AS minute, count(*)::int AS n
              FROM inbox_message, bounds WHERE received_at >= bounds.since GROUP BY 1),
          processed AS (
            SELECT date_trunc('minute', processed_at) AS minute,
                   count(*) FILTER (WHERE state = 'done')::int AS done,
                   count(*) FILTER (WHERE state = 'failed')::int AS failed
              FROM inbox_message, bounds WHERE processed_at >= bounds.since GROUP BY 1)
     SELECT m.minute, COALESCE(r.n, 0) AS received, COALESCE(p.done, 0) AS done, COALESCE(p.failed, 0) AS failed
       FROM minutes m LEFT JOIN received r USING (minute) LEFT JOIN processed p USING (minute)
      ORDER BY m.minute`,
    [THROUGHPUT_MINUTES],
  );
  return result.rows;
}

export interface ErrorCount {
  /** The ANCHORLINE_ERR_* code recorded on the messages. */
  code: string;
  count: number;
  /** When the latest of them was refused or failed. */
  lastAt: Date;
}

/**
 * Failed and rejected messages (conflicts included) of the last RECENT_WINDOW_HOURS, by error code, most frequent
 * first. A message counts when it was received or failed in the window.
 */
export async function errorCounts(db: Queryable): Promise<ErrorCount[]> {
  const result = await db.query<{ code: string; count: number; last_at: Date }>(
    `SELECT COALESCE(error_code, 'ANCHORLINE_ERR_INTERNAL') AS code, count(*)::int AS count,
            max(COALESCE(processed_at, received_at)) AS last_at
       FROM inbox_message
      WHERE state IN ('failed', 'rejected')
        AND (received_at >= now() - make_interval(hours => $1) OR processed_at >= now() - make_interval(hours => $1))
      GROUP BY 1
      ORDER BY count DESC, code`,
    [RECENT_WINDOW_HOURS],
  );
  return result.rows.map((row) => ({ code: row.code, count: row.count, lastAt: row.last_at }));
}

export interface ChainAnchorStatus {
  /** The newest batch a confirmed chain anchor names (it covers every batch before it too). */
  lastAnchoredBatch: number | null;
  /** When that anchor was confirmed. */
  lastAnchoredAt: Date | null;
  /** Closed batches after the last anchored one. */
  unanchoredBatches: number;
}

export interface AnchorStatus {
  unbatchedLeaves: number;
  /** Age of the oldest leaf not yet in a batch, in seconds; null when none waits. */
  oldestUnbatchedAgeSeconds: number | null;
  lastBatchNumber: number | null;
  lastBatchClosedAt: Date | null;
  /** Seconds since the newest batch closed; null before the first. */
  secondsSinceLastBatch: number | null;
  /** Only when asked for (batch headers are anchored on chain). */
  chain: ChainAnchorStatus | null;
}

export async function anchorStatus(db: Queryable, options: { chain: boolean }): Promise<AnchorStatus> {
  const result = await db.query<{
    unbatched: number;
    oldest_age: number | null;
    batch_number: number | null;
    closed_at: Date | null;
    since_batch: number | null;
    anchored_batch: number | null;
    anchored_at: Date | null;
  }>(
    `SELECT (SELECT count(*)::int FROM ledger_leaf WHERE batch_number IS NULL) AS unbatched,
            (SELECT extract(epoch FROM now() - created_at)::float8 FROM ledger_leaf WHERE batch_number IS NULL ORDER BY id LIMIT 1) AS oldest_age,
            b.batch_number, b.created_at AS closed_at, extract(epoch FROM now() - b.created_at)::float8 AS since_batch,
            a.batch_number AS anchored_batch, a.confirmed_at AS anchored_at
       FROM (SELECT 1) AS one
       LEFT JOIN LATERAL (SELECT number AS batch_number, created_at FROM log_checkpoint UNION ALL SELECT batch_number, created_at FROM ledger_batch
                          ORDER BY batch_number DESC LIMIT 1) AS b ON true
       LEFT JOIN LATERAL (SELECT batch_number, confirmed_at FROM ledger_anchor
                           WHERE $1 AND state = 'confirmed' ORDER BY batch_number DESC LIMIT 1) AS a ON true`,
    [options.chain],
  );
  const row = result.rows[0]!;
  const lastBatchNumber = row.batch_number === null ? null : Number(row.batch_number);
  const lastAnchoredBatch = row.anchored_batch === null ? null : Number(row.anchored_batch);
  return {
    unbatchedLeaves: row.unbatched,
    oldestUnbatchedAgeSeconds: row.oldest_age === null ? null : Math.max(0, row.oldest_age),
    lastBatchNumber,
    lastBatchClosedAt: row.closed_at,
    secondsSinceLastBatch: row.since_batch === null ? null : Math.max(0, row.since_batch),
    chain: options.chain
      ? { lastAnchoredBatch, lastAnchoredAt: row.anchored_at, unanchoredBatches: Math.max(0, (lastBatchNumber ?? 0) - (lastAnchoredBatch ?? 0)) }
      : null,
  };
}

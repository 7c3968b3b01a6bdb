/**
 * The ingest queue, shared by its producers (intake, sweeper) and its consumer (the ingest worker): one job per
 * accepted inbox message, named after the message, so enqueueing a message again is the same job.
 */
import type { EnqueueJob } from './types.ts';

export const INGEST_QUEUE = 'ingest';

/** Job keys are this prefix and the message id (also written in SQL by the Postgres queue's inline enqueue). */
export const INGEST_JOB_PREFIX = 'msg-';

export function ingestJob(messageId: number): EnqueueJob {
  return { jobId: `${INGEST_JOB_PREFIX}${messageId}`, data: { id: String(messageId) } };
}

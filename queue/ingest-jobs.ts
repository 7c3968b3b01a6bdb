/**
 * The ingest queue, shared by its producers (intake, sweeper) and its consumer (the ingest worker): one job per
 * accepted inbox message, named after the message, so enqueueing a message again is the same job.
 */
import type { EnqueueJob } from './types.ts';

export const INGEST_QUEUE = 'ingest';

export function ingestJob(messageId: number): EnqueueJob {
  return { jobId: `msg-${messageId}`, data: { id: String(messageId) } };
}

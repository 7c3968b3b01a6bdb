/**
 * The work queue: its contract (types.ts), the two drivers, and the factory that picks one from the config.
 * BullMQ on Redis when `redis.url` is set, otherwise the PostgreSQL driver on the engine's own database.
 */
import type { AnchorlineConfig } from '../config/schema.ts';
import type { Logger } from '../config/logger.ts';
import type { Pool } from '../store/db.ts';
import type { BullMQQueueOptions } from './bullmq.ts';
import { createPostgresQueue } from './postgres.ts';
import type { JobQueue, QueueSettings } from './types.ts';

export type { Consumer, ConsumeOptions, EnqueueJob, JobContext, JobCounts, JobData, JobHandler, JobQueue, QueueSettings } from './types.ts';
export { DEFAULT_CLOSE_GRACE_MS } from './types.ts';
export { INGEST_QUEUE, ingestJob } from './ingest-jobs.ts';
export type { BullMQQueueOptions } from './bullmq.ts';
export { createPostgresQueue, type PostgresQueueOptions } from './postgres.ts';

export function queueSettings(config: AnchorlineConfig): QueueSettings {
  return { maxAttempts: config.queue.maxAttempts, backoffMs: config.queue.backoffMs, lockMs: config.queue.lockMs };
}

/**
 * Creates the queue the config asks for. `pool` is the engine's pool (its search_path selects the schema); the
 * Postgres driver uses it, the BullMQ driver ignores it. Rejects with ANCHORLINE_ERR_REDIS_EVICTION_POLICY when Redis
 * may evict keys, and with ANCHORLINE_ERR_QUEUE_UNAVAILABLE when Redis does not answer at start-up.
 */
/**
 * The BullMQ driver (queue/bullmq.ts), loaded on first use: bullmq and ioredis take ~0.5 s to load, which an engine on
 * the PostgreSQL queue should not pay at every start.
 */
export async function createBullMQQueue(options: BullMQQueueOptions, settings: QueueSettings, log: Logger): Promise<JobQueue> {
  return (await import('./bullmq.ts')).createBullMQQueue(options, settings, log);
}

export async function createQueue(config: AnchorlineConfig, pool: Pool, log: Logger): Promise<JobQueue> {
  const settings = queueSettings(config);
  if (config.redis.url) {
    return createBullMQQueue({ url: config.redis.url, keyPrefix: config.redis.keyPrefix }, settings, log.child({ component: 'queue', driver: 'bullmq' }));
  }
  return createPostgresQueue(pool, settings, log.child({ component: 'queue', driver: 'postgres' }));
}

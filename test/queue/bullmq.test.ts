/**
 * BullMQ driver specifics, each on a private redis-server where the test needs to misconfigure or kill it.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../config/logger.ts';
import { isAnchorlineError } from '../../errors/index.ts';
import { freePort } from '../../store/embedded-postgres.ts';
import { createBullMQQueue } from '../../queue/index.ts';
import { startTestRedis } from '../support/redis.ts';
import { uniqueName } from '../support/db.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { createHarness, startRedisOnPort, TEST_QUEUE_SETTINGS, waitFor } from './support/harness.ts';

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  return isAnchorlineError(error) ? error.code : `not a coded error: ${String(error)}`;
}

describe('bullmq queue driver', () => {
  it('refuses a Redis that may evict keys', async () => {
    const redis = await startTestRedis(['--maxmemory-policy', 'allkeys-lru']);
    try {
      const created = createBullMQQueue({ url: redis.url, keyPrefix: uniqueName('q') }, TEST_QUEUE_SETTINGS, silentLogger());
      expect(await codeOf(created)).toBe('ANCHORLINE_ERR_REDIS_EVICTION_POLICY');
    } finally {
      await redis.stop();
    }
  });

  it('fails fast at start-up when Redis does not answer', async () => {
    const port = await freePort(); // nothing listens there
    const startedAt = Date.now();
    const created = createBullMQQueue({ url: `redis://127.0.0.1:${port}`, keyPrefix: uniqueName('q'), connectTimeoutMs: 2_000 }, TEST_QUEUE_SETTINGS, silentLogger());
    expect(await codeOf(created)).toBe('ANCHORLINE_ERR_QUEUE_UNAVAILABLE');
    expect(Date.now() - startedAt).toBeLessThan(2_500);
  });

  it('keeps a bounded number of failed jobs', async () => {
    const redis = await startTestRedis();
    const queue = await createBullMQQueue({ url: redis.url, keyPrefix: uniqueName('q'), keepFailed: 2 }, TEST_QUEUE_SETTINGS, silentLogger());
    try {
      const consumer = queue.consume(
        'ingest',
        async () => {
          throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_FAILED');
        },
        { concurrency: 1 },
      );
      await queue.enqueue('ingest', Array.from({ length: 5 }, (_, i) => ({ jobId: `f${i}`, data: { id: `f${i}` } })));
      await waitFor(async () => {
        const counts = await queue.counts('ingest');
        return counts.waiting === 0 && counts.active === 0;
      }, 'all five failed');
      expect((await queue.counts('ingest')).failed).toBe(2);
      await consumer.close();
    } finally {
      await queue.close();
      await redis.stop();
    }
  });

  it('fails enqueue fast while Redis is down, and consumers resume when it is back', async () => {
    const port = await freePort();
    let redis = await startRedisOnPort(port);
    const h = await createHarness('bullmq', { redisUrl: `redis://127.0.0.1:${port}` });
    const crashes: unknown[] = [];
    const onUncaught = (error: unknown): void => void crashes.push(error);
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    try {
      const handled: string[] = [];
      h.consume('ingest', async (data) => {
        handled.push(data.id);
      });
      await h.queue.enqueue('ingest', [{ jobId: 'before', data: { id: 'before' } }]);
      await waitFor(() => handled.includes('before'), 'job before the outage');

      await redis.kill();
      const startedAt = Date.now();
      expect(await codeOf(h.queue.enqueue('ingest', [{ jobId: 'during', data: { id: 'during' } }]))).toBe('ANCHORLINE_ERR_QUEUE_UNAVAILABLE');
      expect(Date.now() - startedAt).toBeLessThan(1_000);
      expect(await codeOf(h.queue.counts('ingest'))).toBe('ANCHORLINE_ERR_QUEUE_UNAVAILABLE');

      // A new, empty Redis where the old one was (what a restart without persistence looks like).
      await new Promise((resolve) => setTimeout(resolve, 500));
      redis = await startRedisOnPort(port);
      await waitFor(
        () =>
          h.queue.enqueue('ingest', [{ jobId: 'after', data: { id: 'after' } }]).then(
            () => true,
            () => false,
          ),
        'enqueue once Redis is back',
      );
      await waitFor(() => handled.includes('after'), 'the consumer resumed', 30_000);
      expect(crashes).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUncaught);
      await h.dispose();
      await redis.kill();
    }
  });

  it('uses the configured settings for retries', async () => {
    // Guards the mapping from QueueSettings to BullMQ options: attempts and backoff come from the settings.
    const h = await createHarness('bullmq');
    try {
      const attempts: number[] = [];
      h.consume('ingest', async (_data, ctx) => {
        attempts.push(ctx.attempt);
        throw new Error('always');
      });
      await h.queue.enqueue('ingest', [{ jobId: 'r', data: { id: 'r' } }]);
      await waitFor(async () => (await h.queue.counts('ingest')).failed === 1, 'failed');
      expect(attempts).toEqual(Array.from({ length: TEST_QUEUE_SETTINGS.maxAttempts }, (_, i) => i + 1));
    } finally {
      await h.dispose();
    }
  });
});

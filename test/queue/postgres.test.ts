/**
 * PostgreSQL driver specifics: leases that run out, NOTIFY wake-ups, and a database restart under a running consumer.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../config/logger.ts';
import { isAnchorlineError } from '../../errors/index.ts';
import { createPool, migrate } from '../../store/db.ts';
import { startEmbeddedPostgres } from '../../store/embedded-postgres.ts';
import { createPostgresQueue, type JobContext } from '../../queue/index.ts';
import { createHarness, deferred, isIdle, sleep, TEST_QUEUE_SETTINGS, waitFor, type Harness } from './support/harness.ts';

describe('postgres queue driver', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await createHarness('postgres');
  });

  afterEach(async () => {
    await h.dispose();
  });

  it('hands out a claim whose lease ran out (its worker died) with the next attempt number', async () => {
    await h.queue.enqueue('ingest', [{ jobId: 'orphan', data: { id: 'o' } }]);
    // What a worker that died right after claiming leaves behind.
    await h.db.pool.query(
      `UPDATE queue_job SET state = 'active', attempts = 1, locked_by = 'dead-worker', locked_until = now() + interval '300 milliseconds'
       WHERE job_key = 'orphan'`,
    );
    const startedAt = Date.now();
    const rerun = deferred<{ ctx: JobContext; at: number }>();
    h.consume('ingest', async (_data, ctx) => rerun.resolve({ ctx, at: Date.now() }));
    const { ctx, at } = await rerun.promise;
    expect(ctx.attempt).toBe(2);
    expect(at - startedAt).toBeGreaterThanOrEqual(250);
    await waitFor(async () => isIdle(await h.queue.counts('ingest')), 'completed');
  });

  it('ignores the outcome of a run that lost its lease to a newer run', async () => {
    const started = deferred();
    const finish = deferred();
    h.consume('ingest', async () => {
      started.resolve();
      await finish.promise;
    });
    await h.queue.enqueue('ingest', [{ jobId: 'taken', data: { id: 't' } }]);
    await started.promise;
    // Another worker claimed it after this one's lease expired (say the event loop was blocked past lockMs).
    await h.db.pool.query(
      `UPDATE queue_job SET attempts = attempts + 1, locked_by = 'newer-worker', locked_until = now() + interval '1 minute'
       WHERE job_key = 'taken'`,
    );
    finish.resolve();
    await sleep(300);
    const { rows } = await h.db.pool.query(`SELECT state, attempts, locked_by FROM queue_job WHERE job_key = 'taken'`);
    expect(rows).toEqual([{ state: 'active', attempts: 2, locked_by: 'newer-worker' }]);
  });

  it('fails, without running it, a job whose runs kept being cut short more than maxAttempts times', async () => {
    await h.queue.enqueue('ingest', [{ jobId: 'poison', data: { id: 'p' } }]);
    await h.db.pool.query(
      `UPDATE queue_job SET state = 'active', attempts = $1, locked_by = 'dead-worker', locked_until = now() - interval '1 second'
       WHERE job_key = 'poison'`,
      [TEST_QUEUE_SETTINGS.maxAttempts],
    );
    let ran = false;
    h.consume('ingest', async () => {
      ran = true;
    });
    await waitFor(async () => (await h.queue.counts('ingest')).failed === 1, 'poison job failed');
    expect(ran).toBe(false);
    const { rows } = await h.db.pool.query<{ last_error: string }>(`SELECT last_error FROM queue_job WHERE job_key = 'poison'`);
    expect(rows[0]?.last_error).toMatch(/lease expired/);
  });

  it('keeps the reason with a failed job, and only ids in its data', async () => {
    h.consume('ingest', async () => {
      throw new Error('boom');
    });
    await h.queue.enqueue('ingest', [{ jobId: 'j', data: { id: 'x' } }]);
    await waitFor(async () => (await h.queue.counts('ingest')).failed === 1, 'failed');
    const { rows } = await h.db.pool.query(`SELECT data, attempts, last_error, locked_by, locked_until FROM queue_job WHERE job_key = 'j'`);
    expect(rows[0]).toEqual({ data: { id: 'x' }, attempts: 3, last_error: 'Error: boom', locked_by: null, locked_until: null });
  });

  it('wakes an idle consumer by NOTIFY, well within the polling interval', async () => {
    const ranAt = deferred<number>();
    h.consume('ingest', async () => ranAt.resolve(Date.now()));
    await sleep(150); // the consumer has found nothing and is asleep
    const enqueuedAt = Date.now();
    await h.queue.enqueue('ingest', [{ jobId: 'n', data: { id: 'n' } }]);
    // Polling alone would take about 850 ms here.
    expect((await ranAt.promise) - enqueuedAt).toBeLessThan(600);
  });

  it('does not wake consumers of other queues or run their jobs', async () => {
    const ingest: string[] = [];
    h.consume('ingest', async (data) => {
      ingest.push(data.id);
    });
    await h.queue.enqueue('anchor', [{ jobId: 'a', data: { id: 'a' } }]);
    await h.queue.enqueue('ingest', [{ jobId: 'i', data: { id: 'i' } }]);
    await waitFor(() => ingest.length === 1, 'ingest job');
    await sleep(100);
    expect(ingest).toEqual(['i']);
    expect(await h.queue.counts('anchor')).toEqual({ waiting: 1, active: 0, delayed: 0, failed: 0 });
  });

  it('rejects bad input with a coded error', async () => {
    await expect(h.queue.enqueue('bad name', [{ jobId: 'x', data: { id: 'x' } }])).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_INVALID_REQUEST' });
    await expect(h.queue.enqueue('ingest', [{ jobId: '', data: { id: 'x' } }])).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_INVALID_REQUEST' });
    expect(() => h.queue.consume('ingest', async () => undefined, { concurrency: 0 })).toThrow(/concurrency/);
  });
});

describe('postgres queue driver across a database restart', () => {
  it('keeps consuming when the database restarts, and its notifications come back', async () => {
    const log = silentLogger();
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-queue-restart-'));
    await chmod(dataDir, 0o755); // the server runs unprivileged when we are root
    let server = await startEmbeddedPostgres({ dataDir, log, settings: { fsync: 'off' } });
    const pool = createPool({ connectionString: server.connectionString, schema: 'queue_restart', max: 5 });
    try {
      await migrate(pool, 'queue_restart');
      const queue = await createPostgresQueue(pool, TEST_QUEUE_SETTINGS, log);
      const handled = new Map<string, number>();
      const consumer = queue.consume(
        'ingest',
        async (data) => {
          handled.set(data.id, Date.now());
        },
        { concurrency: 2 },
      );
      await queue.enqueue('ingest', [{ jobId: 'before', data: { id: 'before' } }]);
      await waitFor(() => handled.has('before'), 'job before the restart');

      await server.stop();
      // While the database is down, enqueue fails fast with a coded, retryable error.
      const failure = await queue.enqueue('ingest', [{ jobId: 'down', data: { id: 'down' } }]).catch((error: unknown) => error);
      expect(isAnchorlineError(failure) && failure.code).toBe('ANCHORLINE_ERR_QUEUE_UNAVAILABLE');
      server = await startEmbeddedPostgres({ dataDir, port: server.port, log, settings: { fsync: 'off' } });

      // The pool replaces its dead connections; the first enqueue may still meet one.
      await waitFor(
        () =>
          queue.enqueue('ingest', [{ jobId: 'after', data: { id: 'after' } }]).then(
            () => true,
            () => false,
          ),
        'enqueue after the restart',
      );
      await waitFor(() => handled.has('after'), 'job after the restart');

      // Once the LISTEN connection is back, a job is picked up well within the polling interval again.
      await waitFor(async () => {
        const id = `probe-${Date.now()}`;
        const enqueuedAt = Date.now();
        await queue.enqueue('ingest', [{ jobId: id, data: { id } }]);
        await waitFor(() => handled.has(id), 'probe handled', 5_000);
        return (handled.get(id) ?? Infinity) - enqueuedAt < 500;
      }, 'a notification-driven pickup', 15_000);

      await consumer.close();
      await queue.close();
    } finally {
      await pool.end();
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

/**
 * The queue contract (queue/types.ts), run against both drivers on real servers: BullMQ on redis-server and
 * the PostgreSQL driver on the embedded PostgreSQL. Every test gets its own schema and key prefix.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AnchorlineError } from '../../errors/index.ts';
import type { JobContext } from '../../queue/index.ts';
import { createHarness, deferred, DRIVERS, isIdle, sleep, TEST_QUEUE_SETTINGS, waitFor, type Harness } from './support/harness.ts';
import type { WorkerSpec } from './support/crash-worker.ts';

const CRASH_WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'support', 'crash-worker.ts');

describe.each(DRIVERS)('queue contract (%s)', (driver) => {
  let h: Harness;

  beforeEach(async () => {
    h = await createHarness(driver);
  });

  afterEach(async () => {
    await h.dispose();
  });

  it('runs jobs enqueued before a consumer started, passing ids and a 1-based attempt', async () => {
    // '42' and 'msg:7' are ids BullMQ would refuse as they are; the driver must carry them unchanged.
    await h.queue.enqueue('ingest', [
      { jobId: 'msg-1', data: { id: 'm1' } },
      { jobId: '42', data: { id: 'm42' } },
      { jobId: 'msg:7', data: { id: 'm7' } },
    ]);
    expect(await h.queue.counts('ingest')).toEqual({ waiting: 3, active: 0, delayed: 0, failed: 0 });
    const seen: Array<{ id: string; ctx: JobContext }> = [];
    h.consume('ingest', async (data, ctx) => {
      seen.push({ id: data.id, ctx });
    });
    await waitFor(() => seen.length === 3, 'three jobs handled');
    expect(seen.map((s) => [s.ctx.jobId, s.id]).sort()).toEqual([
      ['42', 'm42'],
      ['msg-1', 'm1'],
      ['msg:7', 'm7'],
    ]);
    for (const s of seen) expect(s.ctx).toMatchObject({ queue: 'ingest', attempt: 1 });
    await waitFor(async () => isIdle(await h.queue.counts('ingest')), 'completed jobs removed');
  });

  it('keeps only ids in the job data', async () => {
    const data = { id: 'm1', patientName: 'HONG^GILDONG' };
    await h.queue.enqueue('ingest', [{ jobId: 'msg-1', data }]);
    const got = deferred<unknown>();
    h.consume('ingest', async (jobData) => got.resolve(jobData));
    expect(await got.promise).toEqual({ id: 'm1' });
  });

  it('handles a jobId once while it is waiting, delayed or active, however often it is enqueued', async () => {
    await h.queue.enqueue('ingest', [
      { jobId: 'x', data: { id: 'first' } },
      { jobId: 'x', data: { id: 'second' } },
    ]);
    await h.queue.enqueue('ingest', [{ jobId: 'x', data: { id: 'third' } }]);
    await h.queue.enqueue('ingest', [{ jobId: 'later', data: { id: 'later' }, delayMs: 400 }]);
    await h.queue.enqueue('ingest', [{ jobId: 'later', data: { id: 'now' } }]);
    expect(await h.queue.counts('ingest')).toEqual({ waiting: 1, active: 0, delayed: 1, failed: 0 });

    const release = deferred();
    const calls: string[] = [];
    h.consume('ingest', async (data, ctx) => {
      calls.push(`${ctx.jobId}=${data.id}`);
      if (ctx.jobId === 'x') await release.promise;
    });
    await waitFor(() => calls.length === 1, 'x started');
    await h.queue.enqueue('ingest', [{ jobId: 'x', data: { id: 'while-active' } }]);
    release.resolve();
    await waitFor(() => calls.length === 2, 'the delayed job handled');
    await waitFor(async () => isIdle(await h.queue.counts('ingest')), 'queue idle');
    await sleep(200);
    expect(calls).toEqual(['x=first', 'later=later']);
  });

  it('handles the same jobId again once the earlier job completed', async () => {
    const calls: string[] = [];
    h.consume('ingest', async (data) => {
      calls.push(data.id);
    });
    await h.queue.enqueue('ingest', [{ jobId: 'x', data: { id: 'one' } }]);
    await waitFor(() => calls.length === 1, 'first run');
    await waitFor(async () => isIdle(await h.queue.counts('ingest')), 'first job removed');
    await h.queue.enqueue('ingest', [{ jobId: 'x', data: { id: 'two' } }]);
    await waitFor(() => calls.length === 2, 'second run');
    expect(calls).toEqual(['one', 'two']);
  });

  it('retries a retryable failure with exponential backoff until it succeeds', async () => {
    const runs: Array<{ attempt: number; at: number }> = [];
    h.consume('ingest', async (_data, ctx) => {
      runs.push({ attempt: ctx.attempt, at: Date.now() });
      if (ctx.attempt < 3) throw new Error('database briefly unavailable');
    });
    await h.queue.enqueue('ingest', [{ jobId: 'flaky', data: { id: 'f' } }]);
    await waitFor(() => runs.length === 3, 'three runs');
    await waitFor(async () => isIdle(await h.queue.counts('ingest')), 'completed after the third run');
    expect(runs.map((r) => r.attempt)).toEqual([1, 2, 3]);
    const gaps = runs.slice(1).map((run, i) => run.at - (runs[i]?.at ?? 0));
    // backoffMs * 2^(attempt - 1): 50 ms, then 100 ms (a few ms of timer slack allowed).
    expect(gaps[0]).toBeGreaterThanOrEqual(TEST_QUEUE_SETTINGS.backoffMs - 5);
    expect(gaps[1]).toBeGreaterThanOrEqual(2 * TEST_QUEUE_SETTINGS.backoffMs - 5);
  });

  it('fails a job at once on a permanent (non-retryable) error and keeps it as failed', async () => {
    const attempts: number[] = [];
    h.consume('ingest', async (_data, ctx) => {
      attempts.push(ctx.attempt);
      throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_FAILED', 'PID-3 has no identifier');
    });
    await h.queue.enqueue('ingest', [{ jobId: 'bad', data: { id: 'b' } }]);
    await waitFor(async () => (await h.queue.counts('ingest')).failed === 1, 'job failed');
    await sleep(4 * TEST_QUEUE_SETTINGS.backoffMs + 200);
    expect(attempts).toEqual([1]);
    expect(await h.queue.counts('ingest')).toEqual({ waiting: 0, active: 0, delayed: 0, failed: 1 });
  });

  it('keeps a job as failed after maxAttempts retryable failures, and runs it afresh when enqueued again', async () => {
    const attempts: number[] = [];
    let healthy = false;
    h.consume('ingest', async (_data, ctx) => {
      attempts.push(ctx.attempt);
      if (!healthy) throw new AnchorlineError('ANCHORLINE_ERR_STORE_UNAVAILABLE');
    });
    await h.queue.enqueue('ingest', [{ jobId: 'doomed', data: { id: 'd' } }]);
    await waitFor(async () => (await h.queue.counts('ingest')).failed === 1, 'job failed');
    await sleep(200);
    expect(attempts).toEqual([1, 2, 3]);

    // The sweeper's second chance: a failed job is replaced by a new one, from attempt 1.
    healthy = true;
    await h.queue.enqueue('ingest', [{ jobId: 'doomed', data: { id: 'd' } }]);
    await waitFor(() => attempts.length === 4, 'run again');
    expect(attempts[3]).toBe(1);
    await waitFor(async () => isIdle(await h.queue.counts('ingest')), 'completed and no longer failed');
  });

  it('runs exactly `concurrency` handlers at once', async () => {
    const concurrency = 3;
    let active = 0;
    let maxActive = 0;
    const allBusy = deferred();
    const done: string[] = [];
    h.consume(
      'ingest',
      async (data) => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        if (active === concurrency) allBusy.resolve();
        // Each handler waits (bounded) until `concurrency` run together: proves they really run in parallel.
        await Promise.race([allBusy.promise, sleep(3_000)]);
        await sleep(30);
        active -= 1;
        done.push(data.id);
      },
      concurrency,
    );
    await h.queue.enqueue(
      'ingest',
      Array.from({ length: 12 }, (_, i) => ({ jobId: `c${i}`, data: { id: `c${i}` } })),
    );
    await waitFor(() => done.length === 12, 'all twelve handled');
    expect(maxActive).toBe(concurrency);
  });

  it('keeps a job with its worker while the handler runs longer than the lock (the lease is renewed)', async () => {
    const runs: number[] = [];
    const handler = async (_data: unknown, ctx: JobContext): Promise<void> => {
      runs.push(ctx.attempt);
      await sleep(2.5 * TEST_QUEUE_SETTINGS.lockMs);
    };
    // A second idle consumer would take the job if its lease ran out.
    h.consume('ingest', handler);
    h.consume('ingest', handler);
    await h.queue.enqueue('ingest', [{ jobId: 'long', data: { id: 'l' } }]);
    await waitFor(async () => runs.length === 1 && isIdle(await h.queue.counts('ingest')), 'the long job completed', 15_000);
    expect(runs).toEqual([1]);
  });

  it('does not run a delayed job before its time', async () => {
    const delayMs = 800;
    const startedAt = Date.now();
    await h.queue.enqueue('ingest', [{ jobId: 'later', data: { id: 'l' }, delayMs }]);
    expect(await h.queue.counts('ingest')).toEqual({ waiting: 0, active: 0, delayed: 1, failed: 0 });
    const ranAt = deferred<number>();
    h.consume('ingest', async () => ranAt.resolve(Date.now()));
    const elapsed = (await ranAt.promise) - startedAt;
    expect(elapsed).toBeGreaterThanOrEqual(delayMs);
    expect(elapsed).toBeLessThan(delayMs + 1_500);
  });

  it('close() waits for running handlers and records their outcome', async () => {
    const started = deferred();
    let finished = false;
    const consumer = h.consume('ingest', async () => {
      started.resolve();
      await sleep(400);
      finished = true;
    });
    await h.queue.enqueue('ingest', [{ jobId: 'slow', data: { id: 's' } }]);
    await started.promise;
    await consumer.close();
    expect(finished).toBe(true);
    expect(await h.queue.counts('ingest')).toEqual({ waiting: 0, active: 0, delayed: 0, failed: 0 });
  });

  it('close(graceMs) releases a job still running after the grace period to another worker at once', async () => {
    const stuck = deferred();
    const firstStarted = deferred();
    const first = h.consume('ingest', async () => {
      firstStarted.resolve();
      await stuck.promise;
    });
    await h.queue.enqueue('ingest', [{ jobId: 'stuck', data: { id: 's' } }]);
    await firstStarted.promise;
    const closeStarted = Date.now();
    await first.close(200);
    expect(Date.now() - closeStarted).toBeLessThan(TEST_QUEUE_SETTINGS.lockMs);
    // Released (waiting again), not left active for lease expiry or the stalled check to notice.
    expect(await h.queue.counts('ingest')).toEqual({ waiting: 1, active: 0, delayed: 0, failed: 0 });

    const second = deferred<number>();
    h.consume('ingest', async (_data, ctx) => second.resolve(ctx.attempt));
    expect(await second.promise).toBe(2);
    stuck.resolve(); // the abandoned handler finishes late; its outcome must not disturb anything
    await waitFor(async () => isIdle(await h.queue.counts('ingest')), 'completed by the second worker');
  });

  it('hands a job out again when its worker process dies mid-job', async () => {
    await h.queue.enqueue('ingest', [{ jobId: 'victim', data: { id: 'v' } }]);
    const spec: WorkerSpec = { config: h.config, databaseUrl: h.db.url, schema: h.db.schema, queue: 'ingest' };
    const child = spawn(process.execPath, ['--no-warnings', CRASH_WORKER, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      const started = await new Promise<{ started: string; attempt: number }>((resolve, reject) => {
        const lines = readline.createInterface({ input: child.stdout });
        lines.on('line', (line) => {
          const message = JSON.parse(line) as { started?: string; attempt?: number };
          if (message.started) resolve(message as { started: string; attempt: number });
        });
        child.once('exit', (code) => reject(new Error(`worker process exited early (code ${code})`)));
      });
      expect(started).toEqual({ started: 'victim', attempt: 1, id: 'v' });
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    expect((await h.queue.counts('ingest')).active).toBe(1);

    const rerun = deferred<JobContext>();
    h.consume('ingest', async (_data, ctx) => rerun.resolve(ctx));
    const ctx = await rerun.promise;
    expect(ctx).toEqual({ queue: 'ingest', jobId: 'victim', attempt: 2 });
    await waitFor(async () => isIdle(await h.queue.counts('ingest')), 'completed after the rerun');
  });

  it('handles 2000 jobs exactly once under concurrency', async () => {
    const total = 2_000;
    const handled = new Map<string, number>();
    let active = 0;
    let maxActive = 0;
    h.consume(
      'ingest',
      async (data, ctx) => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        expect(ctx.jobId).toBe(`job-${data.id}`);
        handled.set(ctx.jobId, (handled.get(ctx.jobId) ?? 0) + 1);
        await new Promise((resolve) => setImmediate(resolve));
        active -= 1;
      },
      8,
    );
    for (let start = 0; start < total; start += 500) {
      await h.queue.enqueue(
        'ingest',
        Array.from({ length: 500 }, (_, i) => ({ jobId: `job-${start + i}`, data: { id: String(start + i) } })),
      );
    }
    await waitFor(() => handled.size === total, `${total} jobs handled`, 30_000);
    await waitFor(async () => isIdle(await h.queue.counts('ingest')), 'queue idle');
    await sleep(200);
    expect([...handled.values()].every((n) => n === 1)).toBe(true);
    expect(handled.size).toBe(total);
    expect(maxActive).toBeLessThanOrEqual(8);
  });
});

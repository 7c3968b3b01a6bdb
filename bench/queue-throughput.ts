/**
 * Queue throughput: jobs/s through a trivial handler at concurrency 8, for both drivers, on servers this script
 * starts itself (an embedded PostgreSQL with its default durability settings, and a private redis-server).
 *
 *   npx tsx bench/queue-throughput.ts            # 20000 jobs per run
 *   JOBS=50000 CONCURRENCY=8 npx tsx bench/queue-throughput.ts
 *
 * Two figures per driver: `backlog` enqueues all jobs first (in batches of 1000, one statement / one MULTI each) and
 * then times one consumer draining them; `stream` starts the consumer first and times enqueue + processing together,
 * as the intake feeds the workers.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../config/logger.ts';
import { configSchema } from '../config/schema.ts';
import { createPool, migrate } from '../store/db.ts';
import { startEmbeddedPostgres } from '../store/embedded-postgres.ts';
import { startTestRedis } from '../test/support/redis.ts';
import { createQueue, type JobQueue } from '../queue/index.ts';

const JOBS = Number(process.env.JOBS ?? 20_000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 8);
const ENQUEUE_BATCH = 1_000;

interface Figures {
  enqueuePerSecond: number;
  backlogPerSecond: number;
  streamPerSecond: number;
}

async function enqueueAll(queue: JobQueue, name: string, runId: string): Promise<void> {
  for (let start = 0; start < JOBS; start += ENQUEUE_BATCH) {
    const batch = [];
    for (let i = start; i < Math.min(JOBS, start + ENQUEUE_BATCH); i++) batch.push({ jobId: `${runId}-${i}`, data: { id: String(i) } });
    await queue.enqueue(name, batch);
  }
}

/** Runs a consumer until `JOBS` handler calls have happened; returns the elapsed ms measured from `startedAt`. */
async function drain(queue: JobQueue, name: string, startedAt: () => number, feed?: () => Promise<void>): Promise<number> {
  let handled = 0;
  let finish!: () => void;
  const allHandled = new Promise<void>((resolve) => (finish = resolve));
  const consumer = queue.consume(
    name,
    async () => {
      handled += 1;
      if (handled === JOBS) finish();
    },
    { concurrency: CONCURRENCY },
  );
  await feed?.();
  await allHandled;
  const elapsed = performance.now() - startedAt();
  await consumer.close();
  return elapsed;
}

async function measure(queue: JobQueue): Promise<Figures> {
  // backlog
  let t0 = performance.now();
  await enqueueAll(queue, 'backlog', 'b');
  const enqueueMs = performance.now() - t0;
  t0 = performance.now();
  const backlogMs = await drain(queue, 'backlog', () => t0);
  // stream
  let t1 = 0;
  const streamMs = await drain(
    queue,
    'stream',
    () => t1,
    async () => {
      t1 = performance.now();
      await enqueueAll(queue, 'stream', 's');
    },
  );
  return {
    enqueuePerSecond: Math.round(JOBS / (enqueueMs / 1000)),
    backlogPerSecond: Math.round(JOBS / (backlogMs / 1000)),
    streamPerSecond: Math.round(JOBS / (streamMs / 1000)),
  };
}

async function main(): Promise<void> {
  const log = silentLogger();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-bench-queue-'));
  // mkdtemp makes it 0700; when we are root the server runs as an unprivileged user that must be able to enter it.
  await chmod(dataDir, 0o755);
  const postgres = await startEmbeddedPostgres({ dataDir, log });
  const redis = await startTestRedis();
  const pool = createPool({ connectionString: postgres.connectionString, schema: 'bench_queue', max: 20 });
  const results: Record<string, Figures> = {};
  try {
    await migrate(pool, 'bench_queue');
    for (const driver of ['postgres', 'bullmq'] as const) {
      const config = configSchema.parse({
        redis: driver === 'bullmq' ? { url: redis.url, keyPrefix: 'bench' } : {},
        queue: { concurrency: CONCURRENCY },
      });
      const queue = await createQueue(config, pool, log);
      try {
        results[driver] = await measure(queue);
      } finally {
        await queue.close();
      }
      console.log(`${driver.padEnd(8)} enqueue ${results[driver]?.enqueuePerSecond} jobs/s | backlog drain ${results[driver]?.backlogPerSecond} jobs/s | stream (enqueue+run) ${results[driver]?.streamPerSecond} jobs/s`);
    }
    console.log(`(${JOBS} jobs per run, concurrency ${CONCURRENCY}, trivial handler, ${os.cpus().length} CPUs, Node ${process.version})`);
  } finally {
    await pool.end();
    await redis.stop();
    await postgres.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();

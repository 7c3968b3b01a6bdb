/**
 * What the queue tests share: a queue of either driver on the run's PostgreSQL and Redis, isolated by a fresh schema
 * and key prefix, whose consumers are closed and whose data is removed afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Redis } from 'ioredis';
import { silentLogger } from '../../../config/logger.ts';
import { configSchema, type AnchorlineConfig } from '../../../config/schema.ts';
import { createQueue, type Consumer, type JobHandler, type JobQueue } from '../../../queue/index.ts';
import { createTestDatabase, testRedisUrl, uniqueName, type TestDatabase } from '../../support/db.ts';

export type Driver = 'postgres' | 'bullmq';
export const DRIVERS: readonly Driver[] = ['postgres', 'bullmq'];

/** Short enough that retries and dead-worker recovery fit in a test. */
export const TEST_QUEUE_SETTINGS = { maxAttempts: 3, backoffMs: 50, lockMs: 1_000 } as const;

export interface Harness {
  driver: Driver;
  config: AnchorlineConfig;
  queue: JobQueue;
  db: TestDatabase;
  /** Redis key prefix (BullMQ) or schema (Postgres): what isolates this test. */
  namespace: string;
  consume(queue: string, handler: JobHandler, concurrency?: number): Consumer;
  dispose(): Promise<void>;
}

export async function createHarness(driver: Driver, options: { redisUrl?: string } = {}): Promise<Harness> {
  const db = await createTestDatabase('queue');
  const redisUrl = options.redisUrl ?? testRedisUrl();
  const keyPrefix = uniqueName('q');
  const config = configSchema.parse({
    redis: driver === 'bullmq' ? { url: redisUrl, keyPrefix } : {},
    queue: TEST_QUEUE_SETTINGS,
  });
  let queue: JobQueue;
  try {
    queue = await createQueue(config, db.pool, silentLogger());
  } catch (error) {
    await db.drop();
    throw error;
  }
  const consumers: Consumer[] = [];
  return {
    driver,
    config,
    queue,
    db,
    namespace: driver === 'bullmq' ? keyPrefix : db.schema,
    consume(name, handler, concurrency = 4) {
      const consumer = queue.consume(name, handler, { concurrency });
      consumers.push(consumer);
      return consumer;
    },
    async dispose() {
      await Promise.all(consumers.map((c) => c.close(0)));
      await queue.close();
      await db.drop();
      if (driver === 'bullmq') await deleteKeys(redisUrl, keyPrefix);
    },
  };
}

async function deleteKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } catch {
    // the test's private redis may already be gone
  } finally {
    redis.disconnect();
  }
}

export function isIdle(counts: { waiting: number; active: number; delayed: number; failed: number }): boolean {
  return counts.waiting === 0 && counts.active === 0 && counts.delayed === 0 && counts.failed === 0;
}

export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(15);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * A redis-server on a given port, so that a test can kill Redis and bring a new one up where the clients expect it
 * (startTestRedis always picks a new port).
 */
export async function startRedisOnPort(port: number): Promise<{ process: ChildProcess; kill(): Promise<void> }> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`redis-server did not start on port ${port}`);
    await sleep(25);
  }
  return {
    process: child,
    async kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

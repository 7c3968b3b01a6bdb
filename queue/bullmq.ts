/**
 * The BullMQ queue driver, used when a Redis URL is configured. One BullMQ Queue per queue name (created on first
 * use), one Worker per consume().
 *
 * Connections, and why there are two kinds:
 * - The producer connection has no offline queue and a command timeout, so that when Redis is down `enqueue` fails at
 *   once with ANCHORLINE_ERR_QUEUE_UNAVAILABLE instead of holding the caller (an MLLP ACK, an HTTP request) until Redis
 *   returns. Nothing is lost: the intake has committed the message to Postgres, and the sweeper re-enqueues it.
 * - Workers share a connection with `maxRetriesPerRequest: null` (BullMQ requires it for its blocking fetch) that
 *   reconnects on its own, so consumers resume by themselves when Redis comes back.
 *
 * BullMQ refuses custom job ids that look like integers or contain ':', so a jobId is stored encoded
 * (bullJobId) and the original is kept as the BullMQ job name, which is what handlers see as ctx.jobId.
 *
 * Redis must not evict keys (`maxmemory-policy noeviction`): an evicted job is lost silently, and BullMQ's own
 * bookkeeping breaks. Creation reads the policy with INFO (CONFIG is often disabled on managed Redis) and refuses
 * anything else.
 */
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from '../config/logger.ts';
import { AnchorlineError } from '../errors/index.ts';
import {
  assertConcurrency,
  assertQueueName,
  DEFAULT_CLOSE_GRACE_MS,
  failureLogFields,
  failureReason,
  isPermanentFailure,
  normaliseJobs,
  retryDelayMs,
  throttledWarn,
  type Consumer,
  type ConsumeOptions,
  type EnqueueJob,
  type JobCounts,
  type JobHandler,
  type JobQueue,
  type QueueSettings,
} from './types.ts';

export interface BullMQQueueOptions {
  /** Redis URL (config `redis.url`). */
  url: string;
  /** Prefix of every BullMQ key (config `redis.keyPrefix`). */
  keyPrefix: string;
  /** How long creation waits for Redis to answer before failing, in ms. Default 10000. */
  connectTimeoutMs?: number;
  /** Failed jobs kept per queue (the newest), in jobs. Default 10000. */
  keepFailed?: number;
}

interface BullJobData {
  id: string;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_KEEP_FAILED = 10_000;
/** Producer commands that take longer than this fail (Redis is hung or unreachable), in ms. */
const PRODUCER_COMMAND_TIMEOUT_MS = 5_000;

/** Reconnect delay for our Redis connections: quick at first, then every 2 s. */
function reconnectDelayMs(times: number): number {
  return Math.min(100 * times, 2_000);
}

/** An injective mapping to ids BullMQ accepts: never all digits (the 'j_' prefix), never ':' (percent-encoded). */
export function bullJobId(jobId: string): string {
  return `j_${encodeURIComponent(jobId)}`;
}

/** Creates the BullMQ driver after checking that Redis answers and will not evict keys. */
export async function createBullMQQueue(options: BullMQQueueOptions, settings: QueueSettings, log: Logger): Promise<JobQueue> {
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const producer = new Redis(options.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: PRODUCER_COMMAND_TIMEOUT_MS,
    connectTimeout: connectTimeoutMs,
    retryStrategy: reconnectDelayMs,
  });
  const warn = throttledWarn(log);
  producer.on('error', (error: Error & { code?: string }) => warn({ errorCode: error.code }, 'redis producer connection error'));
  try {
    await withTimeout(producer.connect(), connectTimeoutMs, 'redis did not answer in time');
    const policy = infoField(await producer.info('memory'), 'maxmemory_policy');
    if (policy !== 'noeviction') {
      throw new AnchorlineError('ANCHORLINE_ERR_REDIS_EVICTION_POLICY', `maxmemory-policy is ${policy ?? 'unknown'}; set it to noeviction`);
    }
  } catch (error) {
    producer.disconnect();
    if (error instanceof AnchorlineError) throw error;
    throw new AnchorlineError('ANCHORLINE_ERR_QUEUE_UNAVAILABLE', 'redis is unreachable', { cause: error });
  }
  return new BullMQJobQueue(options, settings, log, producer);
}

function infoField(info: string, name: string): string | undefined {
  for (const line of info.split(/\r?\n/)) {
    if (line.startsWith(`${name}:`)) return line.slice(name.length + 1).trim();
  }
  return undefined;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves when `promise` settles or after `ms`, whichever is first; true if it settled. */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, ms)))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Closes a connection politely when it is up, at once when it is not (QUIT would wait for a reconnect). */
async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    try {
      await withTimeout(client.quit(), 1_000, 'quit timed out');
      return;
    } catch {
      // fall through to a hard disconnect
    }
  }
  client.disconnect();
}

class BullMQJobQueue implements JobQueue {
  readonly driver = 'bullmq' as const;
  private readonly queues = new Map<string, Queue<BullJobData, void, string>>();
  private readonly consumers = new Set<BullMQConsumer>();
  private readonly keepFailed: number;
  readonly warn: (fields: Record<string, unknown>, message: string) => void;
  private workerConnection: Redis | undefined;
  private closed = false;

  readonly settings: QueueSettings;
  readonly log: Logger;
  private readonly options: BullMQQueueOptions;
  private readonly producer: Redis;

  constructor(options: BullMQQueueOptions, settings: QueueSettings, log: Logger, producer: Redis) {
    this.options = options;
    this.settings = settings;
    this.log = log;
    this.producer = producer;
    this.keepFailed = options.keepFailed ?? DEFAULT_KEEP_FAILED;
    this.warn = throttledWarn(log);
  }

  async enqueue(queue: string, jobs: readonly EnqueueJob[]): Promise<void> {
    assertQueueName(queue);
    this.assertOpen();
    const batch = normaliseJobs(jobs);
    if (batch.length === 0) return;
    const bullQueue = this.queueFor(queue);
    const ids = batch.map((job) => bullJobId(job.jobId));
    try {
      // A failed job with the same id would make the add a no-op; the contract replaces it instead. One round trip
      // finds them; removing one is rare.
      const failedKey = bullQueue.toKey('failed');
      const scores = (await this.producer.pipeline(ids.map((id) => ['zscore', failedKey, id])).exec()) ?? [];
      for (const [index, [error, score]] of scores.entries()) {
        if (error) throw error;
        if (score !== null) await bullQueue.remove(ids[index] as string);
      }
      await bullQueue.addBulk(
        batch.map((job, index) => ({
          name: job.jobId,
          data: { id: job.dataId },
          opts: { jobId: ids[index] as string, ...(job.delayMs > 0 ? { delay: job.delayMs } : {}) },
        })),
      );
    } catch (error) {
      throw new AnchorlineError('ANCHORLINE_ERR_QUEUE_UNAVAILABLE', 'redis did not accept the jobs', { cause: error });
    }
  }

  consume(queue: string, handler: JobHandler, options: ConsumeOptions): Consumer {
    assertQueueName(queue);
    assertConcurrency(options.concurrency);
    this.assertOpen();
    const consumer = new BullMQConsumer(this, queue, handler, options.concurrency, this.workerRedis(), () => this.consumers.delete(consumer));
    this.consumers.add(consumer);
    return consumer;
  }

  async counts(queue: string): Promise<JobCounts> {
    assertQueueName(queue);
    try {
      const counts = await this.queueFor(queue).getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed');
      const n = (type: string): number => counts[type] ?? 0;
      return { waiting: n('waiting') + n('prioritized'), active: n('active'), delayed: n('delayed'), failed: n('failed') };
    } catch (error) {
      throw new AnchorlineError('ANCHORLINE_ERR_QUEUE_UNAVAILABLE', 'redis did not answer', { cause: error });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.consumers.size > 0) {
      // Shutdown order is workers first; if a caller forgot, release their jobs rather than leave them to stall.
      this.log.warn({ consumers: this.consumers.size }, 'queue closed before its consumers; closing them now');
      await Promise.all([...this.consumers].map((consumer) => consumer.close(0)));
    }
    await Promise.all([...this.queues.values()].map((queue) => queue.close().catch(() => undefined)));
    this.queues.clear();
    await closeRedis(this.producer);
    if (this.workerConnection) await closeRedis(this.workerConnection);
  }

  workerOptions(): { prefix: string; keepFailed: number } {
    return { prefix: this.options.keyPrefix, keepFailed: this.keepFailed };
  }

  private queueFor(name: string): Queue<BullJobData, void, string> {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue<BullJobData, void, string>(name, {
        connection: this.producer,
        prefix: this.options.keyPrefix,
        // Creating a Queue must not wait for Redis (enqueue has to fail fast while it is down), and must not send
        // the version check then either: a failed init would leave this Queue broken for good.
        skipWaitingForReady: true,
        skipVersionCheck: true,
        defaultJobOptions: {
          attempts: this.settings.maxAttempts,
          backoff: { type: 'exponential', delay: this.settings.backoffMs },
          removeOnComplete: true,
          removeOnFail: { count: this.keepFailed },
        },
      });
      queue.on('error', (error: Error & { code?: string }) => this.warn({ queue: name, errorCode: error.code }, 'bullmq queue error'));
      this.queues.set(name, queue);
    }
    return queue;
  }

  private workerRedis(): Redis {
    if (!this.workerConnection) {
      const connection = new Redis(this.options.url, { maxRetriesPerRequest: null, retryStrategy: reconnectDelayMs });
      connection.on('error', (error: Error & { code?: string }) => this.warn({ errorCode: error.code }, 'redis worker connection error'));
      this.workerConnection = connection;
    }
    return this.workerConnection;
  }

  private assertOpen(): void {
    if (this.closed) throw new AnchorlineError('ANCHORLINE_ERR_SHUTTING_DOWN', 'the queue is closed');
  }
}

interface RunningJob {
  job: Job<BullJobData, void, string>;
  token: string | undefined;
  done: Promise<void>;
}

class BullMQConsumer implements Consumer {
  private readonly worker: Worker<BullJobData, void, string>;
  private readonly running = new Set<RunningJob>();
  private closing: Promise<void> | undefined;

  private readonly owner: BullMQJobQueue;
  private readonly queue: string;
  private readonly handler: JobHandler;
  private readonly onClosed: () => void;

  constructor(owner: BullMQJobQueue, queue: string, handler: JobHandler, concurrency: number, connection: Redis, onClosed: () => void) {
    this.owner = owner;
    this.queue = queue;
    this.handler = handler;
    this.onClosed = onClosed;
    const { settings } = owner;
    const { prefix, keepFailed } = owner.workerOptions();
    this.worker = new Worker<BullJobData, void, string>(queue, (job, token) => this.process(job, token), {
      connection,
      prefix,
      concurrency,
      lockDuration: settings.lockMs,
      // A job whose worker died is noticed within about lockMs + 2 * stalledInterval.
      stalledInterval: settings.lockMs,
      // Runs cut short by a dead worker count as attempts, as in the Postgres driver: a job that keeps killing its
      // worker ends up failed instead of looping.
      maxStartedAttempts: settings.maxAttempts,
      maxStalledCount: settings.maxAttempts,
      // Also set per job by the producer; repeated here for jobs added by other producers.
      removeOnComplete: { count: 0 },
      removeOnFail: { count: keepFailed },
    });
    // Without a listener an 'error' event would throw and take the process down; during a Redis outage these are
    // expected and the worker reconnects by itself.
    this.worker.on('error', (error: Error & { code?: string }) => owner.warn({ queue, errorCode: error.code }, 'bullmq worker error'));
  }

  close(graceMs = DEFAULT_CLOSE_GRACE_MS): Promise<void> {
    this.closing ??= this.shutdown(graceMs);
    return this.closing;
  }

  private async process(job: Job<BullJobData, void, string>, token: string | undefined): Promise<void> {
    const { settings, log } = this.owner;
    // attemptsStarted counts runs including ones cut short by a dead worker; attemptsMade only finished ones.
    const attempt = Math.max(job.attemptsStarted, job.attemptsMade + 1);
    const fields = { queue: this.queue, jobId: job.name, attempt };
    let finished!: () => void;
    const entry: RunningJob = { job, token, done: new Promise<void>((resolve) => (finished = resolve)) };
    this.running.add(entry);
    try {
      await this.handler({ id: String(job.data.id) }, { queue: this.queue, jobId: job.name, attempt });
    } catch (error) {
      // Only the reason text goes to Redis: the original error might carry more than ids.
      if (isPermanentFailure(error)) {
        log.warn({ ...fields, ...failureLogFields(error) }, 'job failed permanently');
        throw new UnrecoverableError(failureReason(error));
      }
      // Mirrors BullMQ's own decision (Job.shouldRetryJob), which counts finished attempts for the backoff.
      const willRetry = job.attemptsMade + 1 < settings.maxAttempts && job.attemptsStarted < settings.maxAttempts;
      if (willRetry) {
        log.warn({ ...fields, ...failureLogFields(error), retryInMs: retryDelayMs(settings, job.attemptsMade + 1) }, 'job failed; will retry');
      } else {
        log.warn({ ...fields, ...failureLogFields(error) }, 'job failed; attempts exhausted');
      }
      throw new Error(failureReason(error));
    } finally {
      this.running.delete(entry);
      finished();
    }
  }

  private async shutdown(graceMs: number): Promise<void> {
    const deadline = Date.now() + graceMs;
    // Stop fetching without waiting; the wait below is bounded by the grace period.
    await this.worker.pause(true).catch(() => undefined);
    await settledWithin(Promise.all([...this.running].map((r) => r.done)), graceMs);
    const stillRunning = [...this.running];
    if (stillRunning.length === 0) {
      // Lets BullMQ finish recording the outcomes of the jobs that just ended; bounded in case Redis is down.
      if (!(await settledWithin(this.worker.close(), Math.max(deadline - Date.now(), 5_000)))) {
        this.owner.warn({ queue: this.queue }, 'bullmq worker did not close in time; abandoning it');
        await this.worker.disconnect().catch(() => undefined);
      }
    } else {
      // Hand them back now rather than after the stalled check: another worker can take them at once. Their
      // handlers keep running here, but without the lock their outcomes are rejected by Redis.
      this.owner.log.warn({ queue: this.queue, jobs: stillRunning.length, graceMs }, 'releasing jobs still running after the shutdown grace period');
      for (const { job, token } of stillRunning) {
        await job.moveToWait(token).catch((error: Error & { code?: string }) =>
          this.owner.warn({ queue: this.queue, errorCode: error.code }, 'releasing a job failed; the stalled check will hand it out instead'),
        );
      }
      await settledWithin(this.worker.close(true), 5_000);
    }
    this.onClosed();
  }
}

/**
 * The sweeper: Postgres is the source of truth and the queue only distributes work, so every few seconds the
 * accepted messages that are still unfinished some time after they arrived are enqueued again. Enqueueing is
 * idempotent (one job id per message), so a message whose job is merely waiting is not duplicated, and one whose job
 * was lost (Redis restarted empty, a crash between commit and enqueue) gets a new one.
 */
import type pg from 'pg';
import { errorFields, type Logger } from '../config/logger.ts';
import { inbox } from '../store/index.ts';
import { INGEST_QUEUE, ingestJob, type JobQueue } from '../queue/index.ts';

export interface SweeperOptions {
  pool: pg.Pool;
  queue: JobQueue;
  log: Logger;
  intervalMs: number;
  staleAfterMs: number;
  batchSize: number;
}

export class Sweeper {
  private readonly options: SweeperOptions;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(options: SweeperOptions) {
    this.options = options;
  }

  start(): void {
    this.timer = setInterval(() => void this.sweep().catch(() => undefined), this.options.intervalMs);
    this.timer.unref();
  }

  /** One pass; returns how many messages were re-enqueued. */
  async sweep(): Promise<number> {
    if (this.running) return this.running;
    this.running = this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<number> {
    const { pool, queue, log } = this.options;
    try {
      const ids = await inbox.unfinishedMessageIds(pool, new Date(Date.now() - this.options.staleAfterMs), this.options.batchSize);
      if (ids.length === 0) return 0;
      await queue.enqueue(INGEST_QUEUE, ids.map(ingestJob));
      log.info({ count: ids.length, firstId: ids[0] }, 'sweeper: re-enqueued unfinished messages');
      return ids.length;
    } catch (error) {
      log.warn(errorFields(error), 'sweeper: pass failed; will try again');
      return 0;
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}

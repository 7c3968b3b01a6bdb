/**
 * Waits for the ingest worker to finish a message, for ACKs sent after mapping. The worker (in this process or
 * another) commits the message's final state with NOTIFY on MESSAGE_DONE_CHANNEL; one LISTEN connection serves all
 * waiters, and a slow poll covers notifications missed while that connection was being re-established.
 */
import pg from 'pg';
import { inbox } from '../../store/index.ts';


export interface FinishedMessage {
  state: string;
  ack: Buffer | null;
  ackCode: string | null;
}

export class MappingWaiter {
  private readonly waiters = new Map<number, Array<(done: FinishedMessage | undefined) => void>>();
  private listener: pg.Client | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private readonly pool: pg.Pool;
  private readonly connection: pg.ClientConfig;
  private readonly pollIntervalMs: number;

  constructor(pool: pg.Pool, connection: pg.ClientConfig, pollIntervalMs = 1_000) {
    this.pool = pool;
    this.connection = connection;
    this.pollIntervalMs = pollIntervalMs;
  }

  async start(): Promise<void> {
    await this.connect();
    this.pollTimer = setInterval(() => void this.poll(), this.pollIntervalMs);
    this.pollTimer.unref();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client(this.connection);
    client.on('error', () => undefined);
    client.on('end', () => {
      if (this.closed) return;
      this.listener = undefined;
      setTimeout(() => void this.connect().catch(() => undefined), 500).unref();
    });
    client.on('notification', (n) => {
      const id = Number(n.payload);
      if (this.waiters.has(id)) void this.check(id);
    });
    await client.connect();
    await client.query(`LISTEN ${inbox.MESSAGE_DONE_CHANNEL}`);
    this.listener = client;
  }

  /** Resolves with the finished message, or undefined after timeoutMs. */
  async wait(messageId: number, timeoutMs: number): Promise<FinishedMessage | undefined> {
    const done = new Promise<FinishedMessage | undefined>((resolve) => {
      const list = this.waiters.get(messageId) ?? [];
      list.push(resolve);
      this.waiters.set(messageId, list);
    });
    // The message may have finished before we started waiting.
    void this.check(messageId);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    const result = await Promise.race([done, timeout]);
    clearTimeout(timer);
    if (result === undefined) this.settle(messageId, undefined);
    return result;
  }

  private async check(messageId: number): Promise<void> {
    try {
      const state = await inbox.messageState(this.pool, messageId);
      if (state && state.state !== 'queued' && state.ack) this.settle(messageId, state);
    } catch {
      // The poll tries again.
    }
  }

  private async poll(): Promise<void> {
    for (const id of [...this.waiters.keys()]) await this.check(id);
  }

  private settle(messageId: number, value: FinishedMessage | undefined): void {
    const list = this.waiters.get(messageId);
    this.waiters.delete(messageId);
    for (const resolve of list ?? []) resolve(value);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    for (const id of [...this.waiters.keys()]) this.settle(id, undefined);
    await this.listener?.end().catch(() => undefined);
  }
}

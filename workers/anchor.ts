/**
 * The anchor worker: closes batches of provenance leaves (by size or time), builds each batch's RFC 9162 tree and
 * records a header that commits to its root and to the previous header, signed with the engine's Ed25519 key.
 * Several processes may run it; an advisory lock lets one close at a time. Anchoring outside the engine (a chain
 * driver) comes on top of these headers; the local driver is these signed, chained headers in PostgreSQL.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { errorFields, type Logger } from '../config/logger.ts';
import { bytesToHex, hexToBytes, merkleRoot, headerHash, publicKeyFor, signHeader, generateSigningKey, type BatchHeader } from '../anchor/index.ts';
import { ledger } from '../store/index.ts';

export interface AnchorWorkerOptions {
  pool: pg.Pool;
  log: Logger;
  signingKey: Uint8Array;
  closeAfterMs: number;
  maxLeaves: number;
}

/**
 * The engine's signing key from `file`, created there (mode 0600) when missing and `create` is set. Processes that
 * must not mint a key of their own (workers elsewhere) pass create = false and get undefined instead.
 */
export async function loadSigningKey(file: string, create: boolean): Promise<Uint8Array | undefined> {
  if (existsSync(file)) {
    const hex = (await readFile(file, 'utf8')).trim();
    const key = hexToBytes(hex);
    if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte Ed25519 private key in hex`);
    return key;
  }
  if (!create) return undefined;
  const { privateKey } = generateSigningKey();
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, bytesToHex(privateKey) + '\n', { mode: 0o600 });
  return privateKey;
}

export class AnchorWorker {
  private readonly options: AnchorWorkerOptions;
  private readonly publicKeyHex: string;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<unknown> | undefined;
  private lastClosedAt = Date.now();

  constructor(options: AnchorWorkerOptions) {
    this.options = options;
    this.publicKeyHex = bytesToHex(publicKeyFor(options.signingKey));
  }

  get publicKey(): string {
    return this.publicKeyHex;
  }

  start(): void {
    // Checks often for a full batch, and wakes exactly when closeAfterMs has passed since the last close, so a
    // version waits at most closeAfterMs (plus the close itself) for its batch, not up to a check interval more.
    const tickMs = Math.max(50, Math.min(1_000, Math.floor(this.options.closeAfterMs / 5)));
    const schedule = (): void => {
      if (this.stopped) return;
      const untilDue = this.lastClosedAt + this.options.closeAfterMs - Date.now();
      this.timer = setTimeout(() => void this.tick().finally(schedule), Math.max(1, Math.min(tickMs, untilDue)));
      this.timer.unref();
    };
    schedule();
  }

  private async tick(): Promise<void> {
    if (this.running) return;
    const due = Date.now() - this.lastClosedAt >= this.options.closeAfterMs;
    this.running = (async () => {
      try {
        if (!due) {
          const waiting = await this.options.pool.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM (SELECT 1 FROM ledger_leaf WHERE batch_number IS NULL LIMIT $1) AS w',
            [this.options.maxLeaves],
          );
          if ((waiting.rows[0]?.n ?? 0) < this.options.maxLeaves) return;
        }
        await this.closeAll();
      } catch (error) {
        // Try again a full window later rather than at once: the database is likely away.
        this.lastClosedAt = Date.now();
        this.options.log.warn(errorFields(error), 'anchor: closing a batch failed; will try again');
      }
    })().finally(() => (this.running = undefined));
    await this.running;
  }

  /** Closes batches until no leaf waits; returns how many were closed. */
  async closeAll(): Promise<number> {
    let closed = 0;
    while (true) {
      const batch = await ledger.closeBatch(this.options.pool, this.options.maxLeaves, (pending) => {
        const header: BatchHeader = {
          v: 1,
          batchNumber: pending.batchNumber,
          previousHeaderHash: pending.previousHeaderHash,
          firstLeafIndex: pending.firstLeafIndex,
          leafCount: pending.leafHashes.length,
          root: bytesToHex(merkleRoot(pending.leafHashes)),
          time: new Date().toISOString(),
        };
        return { header: { ...header }, headerHash: headerHash(header), signature: signHeader(header, this.options.signingKey), publicKey: this.publicKeyHex };
      });
      this.lastClosedAt = Date.now();
      if (!batch) return closed;
      closed += 1;
      this.options.log.info({ batchNumber: batch.batchNumber, leaves: (batch.header as { leafCount: number }).leafCount, headerHash: batch.headerHash }, 'anchor: batch closed');
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}

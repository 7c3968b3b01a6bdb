/**
 * The anchor worker: appends provenance leaves to the one RFC 9162 log (by count or time) and signs a C2SP
 * checkpoint of the log at each close (anchor/log-bundle.ts: size, root, time and the previous checkpoint's hash),
 * with the engine's Ed25519 key under the log's origin. Several processes may run it; an advisory lock lets one
 * append at a time. Witnesses cosign these checkpoints and a chain driver anchors their hashes; the local driver is
 * the signed, linked checkpoints in PostgreSQL.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import type pg from 'pg';
import { errorFields, type Logger } from '../config/logger.ts';
import { bytesToHex, checkpointHash, formatLogCheckpoint, generateSigningKey, hexToBytes, publicKeyFor, signAnchorClaim } from '../anchor/index.ts';
import { ed25519NoteSigner, formatSignatureLine, formatVerifierKey, SIGNATURE_TYPE_ED25519, type NoteSigner } from '../anchor/log/index.ts';
import { log as logStore } from '../store/index.ts';

export interface AnchorWorkerOptions {
  pool: pg.Pool;
  log: Logger;
  signingKey: Uint8Array;
  closeAfterMs: number;
  maxLeaves: number;
  /** The log's origin (checkpoint line 1, the log key's name); default from the key (defaultLogOrigin). */
  origin?: string;
}

/**
 * The origin a log takes when none is configured: stable for a key, unique across keys (the first 8 bytes of
 * SHA-256 of the public key, in hex), and a schema-less URL path as C2SP tlog-checkpoint recommends.
 */
export function defaultLogOrigin(publicKey: Uint8Array): string {
  return `anchorline.localhost/log/${bytesToHex(sha256(publicKey).subarray(0, 8))}`;
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
  private origin: string | undefined;
  private signer: NoteSigner | undefined;
  private logKey = '';

  constructor(options: AnchorWorkerOptions) {
    this.options = options;
    this.publicKeyHex = bytesToHex(publicKeyFor(options.signingKey));
  }

  /**
   * The log's origin and signer. A log keeps the origin of its first checkpoint: a configured origin that differs
   * from the stored one is reported and not used, since witnesses and auditors know the log by it.
   */
  private async logSigner(): Promise<NoteSigner> {
    if (this.signer) return this.signer;
    const publicKey = publicKeyFor(this.options.signingKey);
    const latest = await logStore.latestCheckpoint(this.options.pool);
    const stored = latest?.text.slice(0, latest.text.indexOf('\n'));
    const configured = this.options.origin ?? defaultLogOrigin(publicKey);
    if (stored !== undefined && stored !== configured && this.options.origin !== undefined) {
      this.options.log.warn({ origin: stored }, 'anchor: the log keeps the origin of its first checkpoint; anchor.origin differs and is not used');
    }
    this.origin = stored ?? configured;
    this.signer = ed25519NoteSigner(this.origin, this.options.signingKey);
    this.logKey = formatVerifierKey(this.origin, SIGNATURE_TYPE_ED25519, publicKey);
    return this.signer;
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

  /** Closes checkpoints while each is full (a backlog), then stops; returns how many were signed. */
  async closeAll(): Promise<number> {
    const signer = await this.logSigner();
    let closed = 0;
    while (true) {
      const result = await logStore.closeCheckpoint(this.options.pool, this.options.maxLeaves, (pending) => {
        const text = formatLogCheckpoint({
          origin: this.origin!,
          size: pending.size,
          rootHash: pending.rootHash,
          time: new Date().toISOString(),
          ...(pending.previousText === undefined ? {} : { previous: checkpointHash(pending.previousText) }),
          ...(pending.legacyHeaderHash === undefined ? {} : { legacy: pending.legacyHeaderHash }),
        });
        const signature = formatSignatureLine({ name: signer.name, keyId: signer.keyId, signature: signer.sign(new TextEncoder().encode(text)) });
        return { text, signature, checkpointHash: bytesToHex(checkpointHash(text)), logKey: this.logKey };
      });
      this.lastClosedAt = Date.now();
      if (!result) return closed;
      closed += 1;
      this.options.log.info(
        { checkpoint: result.checkpoint.number, treeSize: result.checkpoint.treeSize, leaves: result.appended, checkpointHash: result.checkpoint.checkpointHash },
        'anchor: checkpoint signed',
      );
      // Only a full checkpoint means a backlog: leaves that arrived while this one closed wait for the next window,
      // rather than each getting a checkpoint (a signature, a witness round and a chain transaction) of its own.
      if (result.appended < this.options.maxLeaves) return closed;
    }
  }

  /**
   * The signed claim that checkpoint `number` was anchored where the chain driver says (anchor/log-bundle.ts), for
   * proof bundles to carry; undefined when `number` is a batch from before the one log.
   */
  async signAnchorClaim(anchor: { number: number; chainId: number; contract: string; txHash: string; blockNumber: number; blockHash: string }): Promise<string | undefined> {
    const signer = await this.logSigner();
    const checkpoint = await logStore.checkpointByNumber(this.options.pool, anchor.number);
    if (!checkpoint) return undefined;
    return signAnchorClaim(
      {
        origin: signer.name,
        checkpointNumber: checkpoint.number,
        treeSize: checkpoint.treeSize,
        checkpointHash: hexToBytes(checkpoint.checkpointHash),
        chainId: anchor.chainId,
        contract: anchor.contract.toLowerCase(),
        txHash: anchor.txHash,
        blockNumber: anchor.blockNumber,
        blockHash: anchor.blockHash,
      },
      signer,
    );
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}

/**
 * The 'evm' anchor driver: puts the hashes of closed batch headers into an AnchorRegistry contract, one transaction
 * at a time, and follows each until it is final.
 *
 * Every step is written to PostgreSQL (store/chain-anchors.ts) before the chain sees it, and every step re-reads the
 * chain, so a process killed anywhere resumes correctly:
 *   1. Nothing in flight: take the newest closed batch not yet anchored (anchoring a header also fixes every earlier
 *      one through the header chain, so a backlog costs one transaction). Ask the registry first: if it already
 *      holds this header hash (a row lost with a restored database), record where; if it holds another, that is a
 *      conflict and nothing is sent. Simulate the call (a revert, such as a submitter not on the allow-list, is
 *      reported and never sent), sign locally, record the signed bytes as 'sent', then broadcast.
 *   2. 'sent': a receipt moves it to 'included'. Without one, the registry is asked whether the batch is anchored
 *      anyway (then the Anchored event says where); else a transaction the node still knows is waited for; one the
 *      node has forgotten (dropped, or never broadcast before a crash) is broadcast again unchanged while its nonce
 *      is unused, or abandoned when another transaction took the nonce. The same signed bytes cannot land twice,
 *      and the registry refuses a batch number it has, so nothing is ever anchored twice.
 *   3. 'included': once `confirmations` blocks stand on it, the receipt is fetched again; a different block hash
 *      (re-included elsewhere after a reorg) is recorded and counted again, a missing receipt (the block was
 *      reorged away) sends it back to 'sent', and the same block confirms it.
 * Failures back off exponentially (retryBackoffMs doubling up to maxRetryBackoffMs) and leave batches pending; the
 * intake and batch closing never wait for the chain. One process at a time drives the chain (an advisory lock), so
 * engines and workers sharing a database do not race for nonces.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import type { Address, Hex, LocalAccount } from 'viem';
import { RegistryClient } from '../anchor/chain/registry.ts';
import { errorFields, type Logger } from '../config/logger.ts';
import { AnchorlineError, isAnchorlineError } from '../errors/index.ts';
import { chainAnchors } from '../store/index.ts';

export interface ChainAnchorOptions {
  pool: pg.Pool;
  log: Logger;
  rpcUrl: string;
  contract: Address;
  submitter: LocalAccount;
  /** Expected chain id; when unset the node's own is taken. */
  chainId?: number;
  confirmations: number;
  pollIntervalMs: number;
  requestTimeoutMs: number;
  retryBackoffMs: number;
  maxRetryBackoffMs: number;
  gasHeadroomPercent: number;
  /** Event searches start at this block; default 0. */
  fromBlock?: number;
  /** Blocks per eth_getLogs request; default 1000. */
  logRangeBlocks?: number;
  /**
   * Signs the claim (anchor/log-bundle.ts anchor claim) for a confirmed anchor of checkpoint `number`, with the log
   * key; undefined when `number` is not a checkpoint. Without it, anchors are confirmed without claims and proof
   * bundles cannot name them.
   */
  signClaim?: (anchor: { number: number; chainId: number; contract: string; txHash: string; blockNumber: number; blockHash: string }) => Promise<string | undefined>;
}

/** What one step did; tests and status reporting read it. */
export type StepOutcome =
  | 'idle'
  | 'busy'
  | 'sent'
  | 'rebroadcast'
  | 'waiting'
  | 'included'
  | 'reorged'
  | 'confirmed'
  | 'abandoned'
  | 'recovered'
  | 'backing-off';

/** The submitter's secp256k1 key from `file`, created there (mode 0600) when missing and `create` is set. */
export async function loadSubmitterKey(file: string, create: boolean): Promise<LocalAccount | undefined> {
  if (existsSync(file)) {
    const text = (await readFile(file, 'utf8')).trim();
    const hex = (text.startsWith('0x') ? text : `0x${text}`) as Hex;
    if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) throw new Error(`${file} does not hold a 32-byte secp256k1 private key in hex`);
    return privateKeyToAccount(hex);
  }
  if (!create) return undefined;
  const key = generatePrivateKey();
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, key + '\n', { mode: 0o600 });
  return privateKeyToAccount(key);
}

/** Per schema, so engines on separate schemas of one database do not exclude each other. */
const DRIVER_LOCK = `hashtext('anchorline-chain-anchor:' || current_schema())`;

export class ChainAnchorDriver {
  readonly client: RegistryClient;
  private readonly options: ChainAnchorOptions;
  private chainId: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;
  private failures = 0;
  private notBefore = 0;

  constructor(options: ChainAnchorOptions) {
    this.options = options;
    this.client = new RegistryClient({
      rpcUrl: options.rpcUrl,
      contract: options.contract,
      requestTimeoutMs: options.requestTimeoutMs,
      fromBlock: options.fromBlock,
      logRangeBlocks: options.logRangeBlocks,
    });
  }

  get submitter(): Address {
    return this.options.submitter.address;
  }

  start(): void {
    const loop = (): void => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.running = this.step().finally(() => {
          this.running = undefined;
          loop();
        });
      }, this.options.pollIntervalMs);
      this.timer.unref();
    };
    loop();
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /**
   * One step of the state machine above, under the driver lock. Never throws: a failure is logged with its code,
   * recorded on the transaction in flight, and makes the next steps wait (backing off).
   */
  async step(now = Date.now()): Promise<StepOutcome> {
    if (now < this.notBefore) return 'backing-off';
    const client = await this.options.pool.connect().catch((error: unknown) => {
      this.options.log.warn(errorFields(error), 'chain anchor: database unavailable');
      return undefined;
    });
    if (!client) return this.backOff(now);
    let locked = false;
    try {
      locked = (await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${DRIVER_LOCK}) AS ok`)).rows[0]?.ok ?? false;
      if (!locked) return 'busy';
      const outcome = await this.advance(client);
      this.failures = 0;
      this.notBefore = 0;
      return outcome;
    } catch (error) {
      const code = isAnchorlineError(error) ? error.code : 'ANCHORLINE_ERR_INTERNAL';
      const inFlight = await chainAnchors.inFlight(client).catch(() => undefined);
      if (inFlight) await chainAnchors.noteError(client, inFlight.id, code).catch(() => undefined);
      const level = code === 'ANCHORLINE_ERR_CHAIN_UNAVAILABLE' ? 'warn' : 'error';
      this.options.log[level]({ ...errorFields(error), retryInMs: this.nextBackoffMs() }, 'chain anchor: step failed; batches stay pending');
      return this.backOff(now);
    } finally {
      if (locked) await client.query(`SELECT pg_advisory_unlock(${DRIVER_LOCK})`).catch(() => undefined);
      client.release();
    }
  }

  private nextBackoffMs(): number {
    return Math.min(this.options.maxRetryBackoffMs, this.options.retryBackoffMs * 2 ** this.failures);
  }

  private backOff(now: number): 'backing-off' {
    this.notBefore = now + this.nextBackoffMs();
    this.failures += 1;
    return 'backing-off';
  }

  /** Checks once per process that the node is on the configured chain and the address holds the registry. */
  private async chain(): Promise<number> {
    if (this.chainId !== undefined) return this.chainId;
    const id = await this.client.chainId();
    if (this.options.chainId !== undefined && id !== this.options.chainId) {
      throw new AnchorlineError('ANCHORLINE_ERR_CHAIN_MISCONFIGURED', `node reports chain id ${id}, configured ${this.options.chainId}`);
    }
    if (!(await this.client.hasCode())) throw new AnchorlineError('ANCHORLINE_ERR_CHAIN_MISCONFIGURED', `no contract at ${this.options.contract} on chain ${id}`);
    this.chainId = id;
    return id;
  }

  private async advance(db: pg.PoolClient): Promise<StepOutcome> {
    const current = await chainAnchors.inFlight(db);
    if (current?.state === 'sent') return this.reconcileSent(db, current);
    if (current?.state === 'included') return this.checkIncluded(db, current);
    const next = await chainAnchors.nextBatchToAnchor(db);
    if (!next) return 'idle';
    return this.send(db, next.batchNumber, `0x${next.headerHash}`);
  }

  private async send(db: pg.PoolClient, batchNumber: number, headerHash: Hex): Promise<StepOutcome> {
    const chainId = await this.chain();
    const account = this.options.submitter;
    const onChain = await this.client.headerHashOf(account.address, batchNumber);
    if (onChain === headerHash) return this.recover(db, chainId, batchNumber, headerHash);
    const latest = await this.client.latestBatchOf(account.address);
    if (latest >= batchNumber) {
      throw new AnchorlineError(
        'ANCHORLINE_ERR_CHAIN_CONFLICT',
        `the registry holds batch ${latest} for submitter ${account.address}, at or after batch ${batchNumber}, with another header hash; is the key shared or the database restored from an old backup?`,
      );
    }
    await this.client.simulateAnchor(account, batchNumber, headerHash);
    const nonce = await this.client.nonce(account.address, 'pending');
    const signed = await this.client.signAnchor(account, chainId, batchNumber, headerHash, nonce, this.options.gasHeadroomPercent);
    const row = await chainAnchors.recordSent(db, {
      batchNumber,
      headerHash: headerHash.slice(2),
      chainId,
      contract: this.options.contract,
      submitter: account.address,
      nonce,
      txHash: signed.txHash,
      rawTx: signed.rawTransaction,
    });
    await this.client.broadcast(signed.rawTransaction);
    this.options.log.info({ batchNumber, txHash: row.txHash, nonce, chainId }, 'chain anchor: transaction sent');
    return 'sent';
  }

  /** The registry already holds this batch's hash, with no live row for it: record the transaction that put it there. */
  private async recover(db: pg.PoolClient, chainId: number, batchNumber: number, headerHash: Hex): Promise<StepOutcome> {
    const found = await this.client.findAnchored(this.options.submitter.address, batchNumber);
    if (!found) throw new AnchorlineError('ANCHORLINE_ERR_CHAIN_UNAVAILABLE', `batch ${batchNumber} is in the registry but its Anchored event was not found`);
    const row = await chainAnchors.recordSent(db, {
      batchNumber,
      headerHash: headerHash.slice(2),
      chainId,
      contract: this.options.contract,
      submitter: this.options.submitter.address,
      // Not our signed bytes: nothing to broadcast again if a reorg drops it (a new transaction is made instead).
      nonce: -1,
      txHash: found.txHash,
      rawTx: '0x',
    });
    await chainAnchors.markIncluded(db, row.id, { txHash: found.txHash, blockNumber: Number(found.blockNumber), blockHash: found.blockHash });
    this.options.log.warn({ batchNumber, txHash: found.txHash }, 'chain anchor: batch was already in the registry; recorded its transaction');
    return 'recovered';
  }

  private async reconcileSent(db: pg.PoolClient, tx: chainAnchors.AnchorTransaction): Promise<StepOutcome> {
    await this.chain();
    const receipt = await this.client.receipt(tx.txHash as Hex);
    if (receipt?.status === 'success') {
      await chainAnchors.markIncluded(db, tx.id, { txHash: tx.txHash, blockNumber: Number(receipt.blockNumber), blockHash: receipt.blockHash });
      this.options.log.info({ batchNumber: tx.batchNumber, txHash: tx.txHash, blockNumber: Number(receipt.blockNumber) }, 'chain anchor: transaction included');
      return 'included';
    }
    const onChain = await this.client.headerHashOf(this.options.submitter.address, tx.batchNumber);
    if (onChain === `0x${tx.headerHash}`) {
      // Anchored, but not by the recorded transaction (a replacement): the event says which.
      const found = await this.client.findAnchored(this.options.submitter.address, tx.batchNumber);
      if (found) {
        await chainAnchors.markIncluded(db, tx.id, { txHash: found.txHash, blockNumber: Number(found.blockNumber), blockHash: found.blockHash });
        return 'included';
      }
    }
    if (receipt?.status === 'reverted') {
      await chainAnchors.markAbandoned(db, tx.id, 'ANCHORLINE_ERR_CHAIN_REVERTED');
      this.options.log.error({ batchNumber: tx.batchNumber, txHash: tx.txHash }, 'chain anchor: transaction reverted; the batch will be anchored again');
      return 'abandoned';
    }
    if (await this.client.knowsTransaction(tx.txHash as Hex)) return 'waiting';
    // The node does not know it: dropped from its pool, lost with a restarted node, or never broadcast.
    if (tx.nonce < 0 || (await this.client.nonce(this.options.submitter.address, 'latest')) > tx.nonce) {
      await chainAnchors.markAbandoned(db, tx.id, 'ANCHORLINE_ERR_CHAIN_REVERTED');
      this.options.log.warn({ batchNumber: tx.batchNumber, txHash: tx.txHash, nonce: tx.nonce }, 'chain anchor: another transaction used the nonce; the batch will be anchored again');
      return 'abandoned';
    }
    await this.client.broadcast(tx.rawTx as Hex);
    this.options.log.info({ batchNumber: tx.batchNumber, txHash: tx.txHash }, 'chain anchor: transaction broadcast again');
    return 'rebroadcast';
  }

  private async checkIncluded(db: pg.PoolClient, tx: chainAnchors.AnchorTransaction): Promise<StepOutcome> {
    await this.chain();
    const head = await this.client.blockNumber();
    if (head - BigInt(tx.blockNumber!) + 1n < BigInt(this.options.confirmations)) return 'waiting';
    const receipt = await this.client.receipt(tx.txHash as Hex);
    if (!receipt || receipt.status !== 'success') {
      await chainAnchors.markReorged(db, tx.id);
      this.options.log.warn({ batchNumber: tx.batchNumber, txHash: tx.txHash, blockNumber: tx.blockNumber }, 'chain anchor: block reorged away; reconciling');
      return 'reorged';
    }
    if (receipt.blockHash !== tx.blockHash) {
      await chainAnchors.markIncluded(db, tx.id, { txHash: tx.txHash, blockNumber: Number(receipt.blockNumber), blockHash: receipt.blockHash });
      this.options.log.warn({ batchNumber: tx.batchNumber, txHash: tx.txHash, blockNumber: Number(receipt.blockNumber) }, 'chain anchor: re-included in another block after a reorg');
      return 'reorged';
    }
    const onChain = await this.client.headerHashOf(this.options.submitter.address, tx.batchNumber);
    if (onChain !== `0x${tx.headerHash}`) {
      await chainAnchors.markReorged(db, tx.id);
      return 'reorged';
    }
    const claim = await this.options.signClaim?.({
      number: tx.batchNumber,
      chainId: tx.chainId,
      contract: tx.contract,
      txHash: tx.txHash,
      blockNumber: tx.blockNumber!,
      blockHash: tx.blockHash!,
    });
    await chainAnchors.markConfirmed(db, tx.id, claim);
    this.options.log.info({ batchNumber: tx.batchNumber, txHash: tx.txHash, blockNumber: tx.blockNumber, confirmations: Number(head - BigInt(tx.blockNumber!) + 1n) }, 'chain anchor: confirmed');
    return 'confirmed';
  }
}

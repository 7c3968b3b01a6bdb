/**
 * Anchor transactions on an EVM chain (table ledger_anchor, migration 0005).
 *
 * Contract:
 * - A transaction is recorded (`recordSent`) after it is signed and before it is broadcast; its hash and raw bytes
 *   are kept so that it can be looked up, or broadcast again unchanged, after a crash. Re-broadcasting the same
 *   signed bytes can never anchor twice: they carry one nonce.
 * - At most one transaction is in flight (state 'sent' or 'included') and at most one live (not 'abandoned') per
 *   batch; the unique indexes make a second insert fail rather than double-send.
 * - State moves sent -> included -> confirmed, back from included to sent when a reorg drops the block, and to
 *   abandoned when the transaction can no longer land. Confirmed rows are final.
 * - The anchor that covers a batch is the confirmed one with the smallest batch number at or after it: a header
 *   commits to every earlier header, so anchoring batch n also anchors batches before n.
 * - Since the one log (migration 0016), batch_number is a checkpoint number and header_hash its checkpoint hash;
 *   a confirmed checkpoint anchor also holds the claim the log key signed (`claim`), which proof bundles carry.
 */
import type { Queryable } from './db.ts';

export type AnchorState = 'sent' | 'included' | 'confirmed' | 'abandoned';

export interface AnchorTransaction {
  id: number;
  batchNumber: number;
  headerHash: string;
  chainId: number;
  contract: string;
  submitter: string;
  state: AnchorState;
  nonce: number;
  txHash: string;
  rawTx: string;
  blockNumber: number | null;
  blockHash: string | null;
  lastError: string | null;
}

const COLUMNS = `id, batch_number, header_hash, chain_id, contract, submitter, state, nonce, tx_hash, raw_tx, block_number, block_hash, last_error`;

interface Row {
  id: string;
  batch_number: string;
  header_hash: string;
  chain_id: string;
  contract: string;
  submitter: string;
  state: AnchorState;
  nonce: string;
  tx_hash: string;
  raw_tx: string;
  block_number: string | null;
  block_hash: string | null;
  last_error: string | null;
}

function fromRow(row: Row): AnchorTransaction {
  return {
    id: Number(row.id),
    batchNumber: Number(row.batch_number),
    headerHash: row.header_hash,
    chainId: Number(row.chain_id),
    contract: row.contract,
    submitter: row.submitter,
    state: row.state,
    nonce: Number(row.nonce),
    txHash: row.tx_hash,
    rawTx: row.raw_tx,
    blockNumber: row.block_number === null ? null : Number(row.block_number),
    blockHash: row.block_hash,
    lastError: row.last_error,
  };
}

/** The transaction in flight ('sent' or 'included'), if any. */
export async function inFlight(db: Queryable): Promise<AnchorTransaction | undefined> {
  const result = await db.query<Row>(`SELECT ${COLUMNS} FROM ledger_anchor WHERE state IN ('sent', 'included') LIMIT 1`);
  return result.rows[0] ? fromRow(result.rows[0]) : undefined;
}

/**
 * The newest signed checkpoint after every batch or checkpoint with a live anchor: what to anchor next, if anything.
 * Batches closed before the one log are not anchored any more: the first checkpoint's legacy line commits to their
 * last header, so anchoring any checkpoint anchors them too.
 */
export async function nextBatchToAnchor(db: Queryable): Promise<{ batchNumber: number; headerHash: string } | undefined> {
  const result = await db.query<{ number: string; checkpoint_hash: string }>(
    `SELECT number, checkpoint_hash FROM log_checkpoint
      WHERE number > COALESCE((SELECT max(batch_number) FROM ledger_anchor WHERE state <> 'abandoned'), 0)
      ORDER BY number DESC LIMIT 1`,
  );
  const row = result.rows[0];
  return row ? { batchNumber: Number(row.number), headerHash: row.checkpoint_hash } : undefined;
}

export type NewAnchorTransaction = Omit<AnchorTransaction, 'id' | 'state' | 'blockNumber' | 'blockHash' | 'lastError'>;

export async function recordSent(db: Queryable, tx: NewAnchorTransaction): Promise<AnchorTransaction> {
  const result = await db.query<Row>(
    `INSERT INTO ledger_anchor (batch_number, header_hash, chain_id, contract, submitter, state, nonce, tx_hash, raw_tx)
     VALUES ($1, $2, $3, $4, $5, 'sent', $6, $7, $8) RETURNING ${COLUMNS}`,
    [tx.batchNumber, tx.headerHash, tx.chainId, tx.contract, tx.submitter, tx.nonce, tx.txHash, tx.rawTx],
  );
  return fromRow(result.rows[0]!);
}


/** Records where the transaction landed; `txHash` differs from the recorded one only when another transaction did the anchoring. */
export async function markIncluded(db: Queryable, id: number, inclusion: { txHash: string; blockNumber: number; blockHash: string }): Promise<void> {
  await db.query(
    `UPDATE ledger_anchor SET state = 'included', tx_hash = $2, block_number = $3, block_hash = $4, last_error = NULL, updated_at = now()
      WHERE id = $1 AND state IN ('sent', 'included')`,
    [id, inclusion.txHash, inclusion.blockNumber, inclusion.blockHash],
  );
}

/** Back to 'sent' after a reorg dropped the block that held it. */
export async function markReorged(db: Queryable, id: number): Promise<void> {
  await db.query(`UPDATE ledger_anchor SET state = 'sent', block_number = NULL, block_hash = NULL, updated_at = now() WHERE id = $1 AND state = 'included'`, [id]);
}

/** Confirms the anchor and stores the claim note the log key signed for it (undefined for an old batch's anchor). */
export async function markConfirmed(db: Queryable, id: number, claim?: string): Promise<void> {
  await db.query(
    `UPDATE ledger_anchor SET state = 'confirmed', confirmed_at = now(), last_error = NULL, updated_at = now(), claim = $2 WHERE id = $1 AND state = 'included'`,
    [id, claim ?? null],
  );
}

export async function markAbandoned(db: Queryable, id: number, errorCode: string): Promise<void> {
  await db.query(`UPDATE ledger_anchor SET state = 'abandoned', last_error = $2, updated_at = now() WHERE id = $1 AND state IN ('sent', 'included')`, [id, errorCode]);
}

export async function noteError(db: Queryable, id: number, errorCode: string): Promise<void> {
  await db.query(`UPDATE ledger_anchor SET last_error = $2, updated_at = now() WHERE id = $1`, [id, errorCode]);
}

/** The confirmed anchor covering `batchNumber`: the first confirmed one at or after it. */
export async function coveringAnchor(db: Queryable, batchNumber: number): Promise<AnchorTransaction | undefined> {
  const result = await db.query<Row>(
    `SELECT ${COLUMNS} FROM ledger_anchor WHERE state = 'confirmed' AND batch_number >= $1 ORDER BY batch_number LIMIT 1`,
    [batchNumber],
  );
  return result.rows[0] ? fromRow(result.rows[0]) : undefined;
}

/** Every anchor transaction of a batch, oldest first (for operators and tests). */
export async function anchorsOfBatch(db: Queryable, batchNumber: number): Promise<AnchorTransaction[]> {
  const result = await db.query<Row>(`SELECT ${COLUMNS} FROM ledger_anchor WHERE batch_number = $1 ORDER BY id`, [batchNumber]);
  return result.rows.map(fromRow);
}

/** Counts by state, for status reporting. */
export async function countsByState(db: Queryable): Promise<Record<AnchorState, number>> {
  const result = await db.query<{ state: AnchorState; n: number }>(`SELECT state, count(*)::int AS n FROM ledger_anchor GROUP BY state`);
  const counts: Record<AnchorState, number> = { sent: 0, included: 0, confirmed: 0, abandoned: 0 };
  for (const row of result.rows) counts[row.state] = row.n;
  return counts;
}

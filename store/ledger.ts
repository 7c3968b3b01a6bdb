/**
 * The provenance ledger: leaves and signed batch headers.
 *
 * Contract:
 * - `appendLeaves` runs inside the transaction that writes the resource versions, so a version and its leaf exist
 *   together or not at all. One leaf per (type, id, version); appending it twice is an error (the transaction fails).
 * - `closeBatch` takes the unbatched leaves in insertion order, numbers them after the last batched leaf, and
 *   records the batch header the caller signs, all in one transaction under an advisory lock, so batches are
 *   contiguous and only one closer runs at a time. Leaf numbering never has gaps or repeats.
 */
import type pg from 'pg';
import { GENESIS_PREVIOUS_HEADER_HASH } from '../anchor/index.ts';
import { withTransaction, type Queryable } from './db.ts';

export interface NewLeaf {
  resourceType: string;
  resourceId: string;
  versionId: number;
  preimage: Record<string, unknown>;
  leafHash: Uint8Array;
}

export async function appendLeaves(client: pg.PoolClient, leaves: NewLeaf[]): Promise<void> {
  if (leaves.length === 0) return;
  await client.query({
    name: 'anchorline_ledger_append',
    text: `INSERT INTO ledger_leaf (resource_type, resource_id, version_id, preimage, leaf_hash)
           SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::jsonb[], $5::bytea[])`,
    values: [
      leaves.map((l) => l.resourceType),
      leaves.map((l) => l.resourceId),
      leaves.map((l) => l.versionId),
      leaves.map((l) => JSON.stringify(l.preimage)),
      leaves.map((l) => Buffer.from(l.leafHash)),
    ],
  });
}

export interface StoredBatch {
  batchNumber: number;
  header: Record<string, unknown>;
  headerHash: string;
  signature: string;
  publicKey: string;
  anchor: Record<string, unknown>;
}

export interface PendingBatch {
  batchNumber: number;
  previousHeaderHash: string;
  firstLeafIndex: number;
  leafHashes: Uint8Array[];
}

/**
 * Closes a batch of up to `maxLeaves` unbatched leaves. `sign` turns the pending batch into its header, hash and
 * signature (the Merkle root is computed there). Returns undefined when another closer holds the lock or nothing is
 * waiting.
 */
export async function closeBatch(
  pool: pg.Pool,
  maxLeaves: number,
  sign: (pending: PendingBatch) => { header: Record<string, unknown>; headerHash: string; signature: string; publicKey: string },
): Promise<StoredBatch | undefined> {
  return withTransaction(pool, async (client) => {
    // Nothing is written when the lock is taken or nothing waits, so returning commits an empty transaction.
    const locked = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_xact_lock(hashtext('anchorline-ledger-close:' || current_schema())) AS ok`);
    if (!locked.rows[0]?.ok) return undefined;
    const leaves = await client.query<{ id: number; leaf_hash: Buffer }>(
      'SELECT id, leaf_hash FROM ledger_leaf WHERE batch_number IS NULL ORDER BY id LIMIT $1',
      [maxLeaves],
    );
    if (leaves.rows.length === 0) return undefined;
    const last = await client.query<{ batch_number: number; header_hash: string; first: number; count: number }>(
      `SELECT batch_number, header_hash, (header->>'firstLeafIndex')::bigint AS first, (header->>'leafCount')::bigint AS count
         FROM ledger_batch ORDER BY batch_number DESC LIMIT 1`,
    );
    const previous = last.rows[0];
    const pending: PendingBatch = {
      batchNumber: previous ? Number(previous.batch_number) + 1 : 1,
      previousHeaderHash: previous?.header_hash ?? GENESIS_PREVIOUS_HEADER_HASH,
      firstLeafIndex: previous ? Number(previous.first) + Number(previous.count) : 0,
      leafHashes: leaves.rows.map((r) => new Uint8Array(r.leaf_hash)),
    };
    const signed = sign(pending);
    await client.query(
      `INSERT INTO ledger_batch (batch_number, header, header_hash, signature, public_key) VALUES ($1, $2, $3, $4, $5)`,
      [pending.batchNumber, JSON.stringify(signed.header), signed.headerHash, signed.signature, signed.publicKey],
    );
    await client.query(
      `UPDATE ledger_leaf l SET batch_number = $1, leaf_index = x.idx
         FROM unnest($2::bigint[], $3::bigint[]) AS x(id, idx) WHERE l.id = x.id`,
      [pending.batchNumber, leaves.rows.map((r) => r.id), leaves.rows.map((_, i) => pending.firstLeafIndex + i)],
    );
    return { batchNumber: pending.batchNumber, header: signed.header, headerHash: signed.headerHash, signature: signed.signature, publicKey: signed.publicKey, anchor: { driver: 'local' } };
  });
}

export interface LeafRecord {
  preimage: Record<string, unknown>;
  leafHash: Buffer;
  batchNumber: number | null;
  leafIndex: number | null;
}

export async function findLeaf(db: Queryable, resourceType: string, resourceId: string, versionId: number): Promise<LeafRecord | undefined> {
  const result = await db.query<{ preimage: Record<string, unknown>; leaf_hash: Buffer; batch_number: number | null; leaf_index: number | null }>(
    'SELECT preimage, leaf_hash, batch_number, leaf_index FROM ledger_leaf WHERE resource_type = $1 AND resource_id = $2 AND version_id = $3',
    [resourceType, resourceId, versionId],
  );
  const row = result.rows[0];
  return row ? { preimage: row.preimage, leafHash: row.leaf_hash, batchNumber: row.batch_number, leafIndex: row.leaf_index } : undefined;
}

/** The leaf hashes of one batch, in leaf-index order. */
export async function batchLeafHashes(db: Queryable, batchNumber: number): Promise<Uint8Array[]> {
  const result = await db.query<{ leaf_hash: Buffer }>('SELECT leaf_hash FROM ledger_leaf WHERE batch_number = $1 ORDER BY leaf_index', [batchNumber]);
  return result.rows.map((r) => new Uint8Array(r.leaf_hash));
}

/** Batches from `fromBatch` on, in order, at most `limit`. */
export async function batchesFrom(db: Queryable, fromBatch: number, limit: number): Promise<StoredBatch[]> {
  const result = await db.query<{ batch_number: number; header: Record<string, unknown>; header_hash: string; signature: string; public_key: string; anchor: Record<string, unknown> }>(
    'SELECT batch_number, header, header_hash, signature, public_key, anchor FROM ledger_batch WHERE batch_number >= $1 ORDER BY batch_number LIMIT $2',
    [fromBatch, limit],
  );
  return result.rows.map((r) => ({ batchNumber: Number(r.batch_number), header: r.header, headerHash: r.header_hash, signature: r.signature, publicKey: r.public_key, anchor: r.anchor }));
}

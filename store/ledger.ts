/**
 * The provenance ledger's leaves.
 *
 * Contract:
 * - `appendLeaves` runs inside the transaction that writes the resource versions, so a version and its leaf exist
 *   together or not at all. One leaf per (type, id, version); appending it twice is an error (the transaction fails).
 * - Leaves are numbered and appended to the one log by store/log.ts closeCheckpoint; ledger_batch holds the signed
 *   batch headers written before the log, read only (anchorline-proof/1, the audit).
 */
import type pg from 'pg';
import type { Queryable } from './db.ts';

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

export interface LeafRecord {
  /** Empty once the record was erased. */
  preimage: Record<string, unknown>;
  /** The record was erased (store/erasure.ts): its preimage is gone, its leaf hash stays in the log. */
  erased: boolean;
  leafHash: Buffer;
  batchNumber: number | null;
  leafIndex: number | null;
}

export async function findLeaf(db: Queryable, resourceType: string, resourceId: string, versionId: number): Promise<LeafRecord | undefined> {
  const result = await db.query<{ preimage: Record<string, unknown> | null; leaf_hash: Buffer; batch_number: number | null; leaf_index: number | null; erased: boolean }>(
    'SELECT preimage, leaf_hash, batch_number, leaf_index, erased_at IS NOT NULL AS erased FROM ledger_leaf WHERE resource_type = $1 AND resource_id = $2 AND version_id = $3',
    [resourceType, resourceId, versionId],
  );
  const row = result.rows[0];
  return row ? { preimage: row.preimage ?? {}, erased: row.erased, leafHash: row.leaf_hash, batchNumber: row.batch_number, leafIndex: row.leaf_index } : undefined;
}

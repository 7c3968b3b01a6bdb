/**
 * Data as the engine wrote it before the one log: the waiting leaves numbered after the last batch, rooted in their
 * own RFC 9162 tree, under a signed header chained to the previous one (anchorline-proof/1's rules). Tests of
 * migrated data dirs and of the audit of old batches make their old batches with it.
 */
import type pg from 'pg';
import { bytesToHex, GENESIS_PREVIOUS_HEADER_HASH, headerHash, merkleRoot, publicKeyFor, signHeader, type BatchHeader } from '../../anchor/index.ts';

/** Closes every leaf waiting (batch_number NULL) into one old-style batch signed with `signingKey`; returns its header. */
export async function closeOldBatch(pool: pg.Pool, signingKey: Uint8Array): Promise<BatchHeader> {
  const leaves = await pool.query<{ id: string; leaf_hash: Buffer }>('SELECT id, leaf_hash FROM ledger_leaf WHERE batch_number IS NULL ORDER BY id');
  if (leaves.rows.length === 0) throw new Error('no leaf waits for a batch');
  const last = await pool.query<{ header: BatchHeader; header_hash: string }>('SELECT header, header_hash FROM ledger_batch ORDER BY batch_number DESC LIMIT 1');
  const previous = last.rows[0];
  const header: BatchHeader = {
    v: 1,
    batchNumber: previous ? previous.header.batchNumber + 1 : 1,
    previousHeaderHash: previous?.header_hash ?? GENESIS_PREVIOUS_HEADER_HASH,
    firstLeafIndex: previous ? previous.header.firstLeafIndex + previous.header.leafCount : 0,
    leafCount: leaves.rows.length,
    root: bytesToHex(merkleRoot(leaves.rows.map((r) => new Uint8Array(r.leaf_hash)))),
    time: new Date().toISOString(),
  };
  await pool.query('INSERT INTO ledger_batch (batch_number, header, header_hash, signature, public_key) VALUES ($1, $2, $3, $4, $5)', [
    header.batchNumber,
    JSON.stringify(header),
    headerHash(header),
    signHeader(header, signingKey),
    bytesToHex(publicKeyFor(signingKey)),
  ]);
  await pool.query('UPDATE ledger_leaf l SET batch_number = $1, leaf_index = x.idx FROM unnest($2::bigint[], $3::bigint[]) AS x(id, idx) WHERE l.id = x.id', [
    header.batchNumber,
    leaves.rows.map((r) => r.id),
    leaves.rows.map((_, i) => header.firstLeafIndex + i),
  ]);
  return header;
}

/**
 * A data dir written before the one log: its leaves were batched under signed, chained batch headers. After the
 * migration, those leaves become the first entries of the log in their leaf_index order, the first checkpoint names
 * the last batch header in its legacy line, proofs of old leaves come as anchorline-proof/2, and a bundle made
 * under the old rules (anchorline-proof/1) still verifies by those rules.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  bytesToHex,
  checkpointHash,
  generateSigningKey,
  headerHash,
  MerkleTree,
  parseLogCheckpoint,
  verifyBundle,
  verifyConsistencyDocument,
  type BatchHeader,
  type ProofBundle,
} from '../../anchor/index.ts';
import { consistencyProof } from '../../anchor/log/index.ts';
import { buildProofBundle } from '../../api/proofs.ts';
import { silentLogger } from '../../config/logger.ts';
import { log as logStore } from '../../store/index.ts';
import { AnchorWorker } from '../../workers/anchor.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { appendTestLeaves } from '../support/leaves.ts';
import { closeOldBatch } from '../support/old-batches.ts';

let db: TestDatabase;
const signingKey = generateSigningKey().privateKey;
const LOCAL = { anchorDriver: 'local', witnessQuorum: 0 } as const;

beforeEach(async () => {
  db = await createTestDatabase('logmig');
});
afterEach(async () => {
  await db.drop();
});

async function appendLeaves(count: number): Promise<string[]> {
  return (await appendTestLeaves(db.pool, count)).map((p) => p.id);
}

async function closeBatch(): Promise<BatchHeader> {
  return closeOldBatch(db.pool, signingKey);
}

/** An anchorline-proof/1 bundle of the leaf at `leafIndex`, as the engine served it before the log. */
async function oldBundle(leafIndex: number): Promise<ProofBundle> {
  const leaf = (await db.pool.query('SELECT preimage, leaf_hash, batch_number FROM ledger_leaf WHERE leaf_index = $1', [leafIndex])).rows[0];
  const batches = (await db.pool.query('SELECT header, header_hash, signature, public_key FROM ledger_batch WHERE batch_number >= $1 ORDER BY batch_number', [leaf.batch_number])).rows;
  const hashes = (await db.pool.query('SELECT leaf_hash FROM ledger_leaf WHERE batch_number = $1 ORDER BY leaf_index', [leaf.batch_number])).rows.map((r) => new Uint8Array(r.leaf_hash));
  const signed = (row: { header: BatchHeader; header_hash: string; signature: string }) => ({ header: row.header, headerHash: row.header_hash, signature: row.signature });
  return {
    format: 'anchorline-proof/1',
    leaf: { preimage: leaf.preimage, leafIndex, leafHash: bytesToHex(new Uint8Array(leaf.leaf_hash)) },
    auditPath: MerkleTree.fromLeafHashes(hashes).inclusionProof(leafIndex - batches[0].header.firstLeafIndex).map(bytesToHex),
    batch: signed(batches[0]),
    publicKey: batches[0].public_key,
    headerChain: batches.slice(1).map(signed),
    anchor: { driver: 'local' },
  };
}

describe('a data dir from before the one log', () => {
  it('appends its batched leaves first, links the old header chain, and keeps old bundles verifying', async () => {
    const oldIds = await appendLeaves(3);
    await closeBatch();
    oldIds.push(...(await appendLeaves(4)));
    const lastHeader = await closeBatch();
    const saved = await oldBundle(1);
    expect(verifyBundle(saved).ok).toBe(true);

    // New leaves wait beside the old ones when the engine restarts on the new version.
    const newIds = await appendLeaves(2);
    const worker = new AnchorWorker({ pool: db.pool, log: silentLogger(), signingKey, closeAfterMs: 60_000, maxLeaves: 5 });
    expect(await worker.closeAll()).toBe(2);
    const checkpoints = await logStore.checkpointsFrom(db.pool, 0, 10);
    // Numbers continue the batches'; the first holds old leaves only (maxLeaves 5), the second the rest.
    expect(checkpoints.map((c) => [c.number, c.treeSize])).toEqual([
      [3, 5],
      [4, 9],
    ]);
    const first = parseLogCheckpoint(checkpoints[0]!.text);
    const second = parseLogCheckpoint(checkpoints[1]!.text);
    if (!first.ok || !second.ok) throw new Error('checkpoints do not parse');
    expect(first.value.legacy).toBe(headerHash(lastHeader));
    expect(first.value.previous).toBeUndefined();
    expect(second.value.legacy).toBeUndefined();
    expect(bytesToHex(second.value.previous!)).toBe(bytesToHex(checkpointHash(checkpoints[0]!.text)));

    // Log leaf i is the leaf with leaf_index i: the old ones keep their numbers, the new ones follow.
    const numbered = await db.pool.query<{ resource_id: string; leaf_index: string }>('SELECT resource_id, leaf_index FROM ledger_leaf ORDER BY leaf_index');
    expect(numbered.rows.map((r) => r.resource_id)).toEqual([...oldIds, ...newIds]);
    expect(numbered.rows.map((r) => Number(r.leaf_index))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);

    // Every leaf, old or new, now has a one-log proof; and the two checkpoints are consistent.
    for (const id of [...oldIds, ...newIds]) {
      const bundle = await buildProofBundle(db.pool, 'Observation', id, 1, LOCAL);
      expect(bundle.format).toBe('anchorline-proof/2');
      expect(verifyBundle(bundle).checks.filter((c) => !c.ok)).toEqual([]);
    }
    const proof = await consistencyProof(logStore.nodeStore(db.pool), 5, 9);
    const document = {
      format: 'anchorline-consistency/1',
      logKey: checkpoints[1]!.logKey,
      old: await logStore.checkpointNote(db.pool, checkpoints[0]!),
      new: await logStore.checkpointNote(db.pool, checkpoints[1]!),
      proof: proof.map((h) => Buffer.from(h).toString('base64')),
    };
    expect(verifyConsistencyDocument(document).ok).toBe(true);

    // The bundle saved under the old rules still verifies by them.
    expect(verifyBundle(saved).ok).toBe(true);
  });

  it('refuses to append when the old numbering has a gap, rather than write a log that is not the leaves', async () => {
    await appendLeaves(3);
    await closeBatch();
    await db.pool.query('UPDATE ledger_leaf SET leaf_index = leaf_index + 1 WHERE leaf_index = 2');
    const worker = new AnchorWorker({ pool: db.pool, log: silentLogger(), signingKey, closeAfterMs: 60_000, maxLeaves: 100 });
    await expect(worker.closeAll()).rejects.toThrow(/gap at leaf 2/);
    expect(await logStore.latestCheckpoint(db.pool)).toBeUndefined();
  });
});

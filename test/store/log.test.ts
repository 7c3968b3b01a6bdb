/**
 * The log in PostgreSQL (store/log.ts) against a real database: the nodes it stores are the tree's, a node is never
 * rewritten, two appenders never interleave, tiles and entries read back what was appended, and the checkpoint a
 * proof is made against prefers one cosigned by enough witnesses.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateSigningKey, leafBytes, provenanceLeafHash, type LeafPreimage } from '../../anchor/index.ts';
import { Frontier, inclusionProof, NodeConflictError, readFrontier, treeRoot } from '../../anchor/log/index.ts';
import { silentLogger } from '../../config/logger.ts';
import { log as logStore } from '../../store/index.ts';
import { AnchorWorker } from '../../workers/anchor.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { appendTestLeaves } from '../support/leaves.ts';

let db: TestDatabase;
const signingKey = generateSigningKey().privateKey;
const preimages: LeafPreimage[] = [];

beforeEach(async () => {
  db = await createTestDatabase('logstore');
  preimages.length = 0;
});
afterEach(async () => {
  await db.drop();
});

async function appendLeaves(count: number): Promise<void> {
  preimages.push(...(await appendTestLeaves(db.pool, count)));
}

function worker(maxLeaves = 10_000): AnchorWorker {
  return new AnchorWorker({ pool: db.pool, log: silentLogger(), signingKey, closeAfterMs: 60_000, maxLeaves });
}

describe('the log in PostgreSQL', () => {
  it('stores the nodes of the tree the leaves make, at every checkpoint', async () => {
    for (const count of [1, 2, 5, 256, 300]) {
      await appendLeaves(count);
      await worker(97).closeAll();
    }
    const size = preimages.length;
    const expected = Frontier.empty().appendLeafHashes(preimages.map(provenanceLeafHash));
    const store = logStore.nodeStore(db.pool);
    expect(Buffer.from(await treeRoot(store, size)).toString('hex')).toBe(Buffer.from(expected.root()).toString('hex'));
    expect((await readFrontier(store, size)).root()).toEqual(expected.root());
    // Every checkpoint's root is the tree's at its size.
    for (const checkpoint of await logStore.checkpointsFrom(db.pool, 0, 100)) {
      const prefix = Frontier.empty().appendLeafHashes(preimages.slice(0, checkpoint.treeSize).map(provenanceLeafHash));
      expect(Buffer.from(checkpoint.rootHash).toString('hex')).toBe(Buffer.from(prefix.root()).toString('hex'));
    }
    // Tiles and entry bundles read back what was appended.
    const tile = await logStore.readTile(db.pool, 0, 1, size - 256);
    expect(tile.length).toBe((size - 256) * 32);
    expect(Buffer.from(tile.subarray(0, 32)).toString('hex')).toBe(Buffer.from(provenanceLeafHash(preimages[256]!)).toString('hex'));
    const entries = await logStore.readEntries(db.pool, 0, 3);
    expect(entries.map((e) => Buffer.from(e).toString())).toEqual(preimages.slice(0, 3).map((p) => Buffer.from(leafBytes(p)).toString()));
    expect((await logStore.readTile(db.pool, 1, 0, 2)).length).toBe(64);
    // A proof from the stored nodes has the length RFC 9162 gives.
    expect((await inclusionProof(store, 0, size)).length).toBe(Math.ceil(Math.log2(size)));
  });

  it('refuses to rewrite a node', async () => {
    await appendLeaves(4);
    await worker().closeAll();
    const store = logStore.nodeStore(db.pool);
    await expect(store.writeNodes([{ id: { level: 1, index: 0 }, hash: new Uint8Array(32) }])).rejects.toMatchObject({ code: '23505' });
    expect(NodeConflictError).toBeDefined();
  });

  it('lets one appender at a time number and append leaves, whatever the concurrency', async () => {
    await appendLeaves(50);
    const results = await Promise.all([worker(7).closeAll(), worker(7).closeAll(), worker(7).closeAll()]);
    // Whoever got the lock appended; the others found it taken or nothing waiting. All 50 leaves are in, once.
    expect(results.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    await worker(7).closeAll();
    const latest = await logStore.latestCheckpoint(db.pool);
    expect(latest?.treeSize).toBe(50);
    const indices = await db.pool.query<{ n: string; distinct: string; max: string }>('SELECT count(*) AS n, count(DISTINCT leaf_index) AS distinct, max(leaf_index) AS max FROM ledger_leaf');
    expect(indices.rows[0]).toEqual({ n: 50, distinct: 50, max: 49 });
  });

  it('makes proofs against the newest checkpoint with enough cosignatures when one holds the leaf', async () => {
    await appendLeaves(3);
    await worker().closeAll();
    await appendLeaves(3);
    await worker().closeAll();
    const [first, second] = await logStore.checkpointsFrom(db.pool, 0, 10);
    await logStore.addCosignature(db.pool, first!.treeSize, 'w1+00000001', '— w1 AAAA\n', 1);
    expect((await logStore.checkpointForProof(db.pool, 0, 1))?.treeSize).toBe(first!.treeSize);
    // Leaf 4 is not in the cosigned checkpoint: the newest one, uncosigned, is used.
    expect((await logStore.checkpointForProof(db.pool, 4, 1))?.treeSize).toBe(second!.treeSize);
    // Nobody has two cosignatures: the newest checkpoint.
    expect((await logStore.checkpointForProof(db.pool, 0, 2))?.treeSize).toBe(second!.treeSize);
    expect((await logStore.checkpointForProof(db.pool, 0, 0))?.treeSize).toBe(second!.treeSize);
    // A second cosignature from the same witness for the same checkpoint changes nothing.
    expect(await logStore.addCosignature(db.pool, first!.treeSize, 'w1+00000001', '— w1 BBBB\n', 2)).toBe(false);
    expect(await logStore.checkpointNote(db.pool, first!)).toContain('— w1 AAAA\n');
  });
});

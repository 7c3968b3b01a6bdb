/**
 * Provenance leaves written straight into ledger_leaf, as the ingest transaction writes them, for tests of the log,
 * its store, the chain driver and migrations that need leaves without mapping messages.
 */
import type pg from 'pg';
import { newSalt, provenanceLeafHash, type LeafPreimage } from '../../anchor/index.ts';
import { ledger, withTransaction } from '../../store/index.ts';

let counter = 0;

/** Appends `count` first versions of `resourceType` with fresh ids (`<prefix>-<n>`), in one transaction; returns their preimages. */
export async function appendTestLeaves(pool: pg.Pool, count: number, resourceType = 'Observation', prefix = 'o'): Promise<LeafPreimage[]> {
  const preimages = Array.from({ length: count }, (): LeafPreimage => {
    counter += 1;
    return {
      v: 1,
      resourceType,
      id: `${prefix}-${counter}`,
      versionId: '1',
      resourceSha256: 'a'.repeat(64),
      rawSha256: 'b'.repeat(64),
      mappingSha256: 'c'.repeat(64),
      terminologyVersion: 'none',
      salt: newSalt(),
    };
  });
  await withTransaction(pool, (client) =>
    ledger.appendLeaves(
      client,
      preimages.map((preimage) => ({ resourceType, resourceId: preimage.id, versionId: 1, preimage: { ...preimage }, leafHash: provenanceLeafHash(preimage) })),
    ),
  );
  return preimages;
}

/**
 * GET /proofs/{type}/{id}/_history/{vid}: the self-contained proof bundle (anchor/bundle.ts) for one resource
 * version: its provenance leaf, the RFC 9162 audit path to its batch root, the signed batch header, and the headers
 * of every later batch, so that an auditor can check the record offline with `anchorline verify`.
 */
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { bytesToHex, MerkleTree, type BatchHeader, type LeafPreimage, type ProofBundle, type SignedHeader } from '../anchor/index.ts';
import { AnchorlineError } from '../errors/index.ts';
import { ledger } from '../store/index.ts';

/** Later headers included in one bundle at most; a verifier that needs more asks again later for a fresher bundle. */
const MAX_CHAIN_HEADERS = 10_000;

function signed(batch: ledger.StoredBatch): SignedHeader {
  return { header: batch.header as unknown as BatchHeader, headerHash: batch.headerHash, signature: batch.signature };
}

export async function buildProofBundle(pool: pg.Pool, resourceType: string, id: string, versionId: number): Promise<ProofBundle> {
  const leaf = await ledger.findLeaf(pool, resourceType, id, versionId);
  if (!leaf) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no provenance leaf for ${resourceType}/${id}/_history/${versionId}`);
  if (leaf.batchNumber === null || leaf.leafIndex === null) {
    throw new AnchorlineError('ANCHORLINE_ERR_PROOF_PENDING', 'this version is not in a closed batch yet; ask again after the next batch closes');
  }
  const batches = await ledger.batchesFrom(pool, Number(leaf.batchNumber), MAX_CHAIN_HEADERS + 1);
  const batch = batches[0];
  if (!batch) throw new AnchorlineError('ANCHORLINE_ERR_INTERNAL', 'a batched leaf has no batch header');
  const header = batch.header as unknown as BatchHeader;
  const tree = MerkleTree.fromLeafHashes(await ledger.batchLeafHashes(pool, Number(leaf.batchNumber)));
  const position = Number(leaf.leafIndex) - header.firstLeafIndex;
  return {
    format: 'anchorline-proof/1',
    leaf: { preimage: leaf.preimage as unknown as LeafPreimage, leafIndex: Number(leaf.leafIndex), leafHash: bytesToHex(new Uint8Array(leaf.leafHash)) },
    auditPath: tree.inclusionProof(position).map(bytesToHex),
    batch: signed(batch),
    publicKey: batch.publicKey,
    headerChain: batches.slice(1).map(signed),
    anchor: { driver: 'local' },
  };
}

export function registerProofRoutes(app: FastifyInstance, pool: pg.Pool): void {
  app.get<{ Params: { type: string; id: string; vid: string } }>('/proofs/:type/:id/_history/:vid', { config: { scope: 'read' } }, async (request, reply) => {
    const { type, id, vid } = request.params;
    const versionId = Number(vid);
    if (!Number.isInteger(versionId) || versionId < 1) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'version id must be a positive integer');
    return reply.header('content-type', 'application/json; charset=utf-8').send(await buildProofBundle(pool, type, id, versionId));
  });
}

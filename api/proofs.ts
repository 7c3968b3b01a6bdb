/**
 * GET /proofs/{type}/{id}/_history/{vid}: the self-contained proof bundle (anchor/bundle.ts) for one resource
 * version: its provenance leaf, the RFC 9162 audit path to its batch root, the signed batch header, and the headers
 * of every later batch, so that an auditor can check the record offline with `anchorline verify`.
 */
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { bytesToHex, MerkleTree, type BatchHeader, type LeafPreimage, type ProofAnchor, type ProofBundle, type SignedHeader } from '../anchor/index.ts';
import { AnchorlineError } from '../errors/index.ts';
import { auditTrail, chainAnchors, inbox, ledger, resources, withTransaction } from '../store/index.ts';
import { accessOf, auditActor } from './fhir.ts';
import { parsePositiveId } from './params.ts';

/** Later headers included in one bundle at most; a verifier that needs more asks again later for a fresher bundle. */
const MAX_CHAIN_HEADERS = 10_000;

function signed(batch: ledger.StoredBatch): SignedHeader {
  return { header: batch.header as unknown as BatchHeader, headerHash: batch.headerHash, signature: batch.signature };
}

/**
 * The bundle of one version. Its anchor is the confirmed chain anchor covering the batch (the first at or after it)
 * when there is one; otherwise, with the 'evm' driver, the bundle is not ready (PROOF_PENDING) until the chain
 * confirms, and with the 'local' driver it says that nothing is anchored outside the engine.
 */
export async function buildProofBundle(pool: pg.Pool, resourceType: string, id: string, versionId: number, anchorDriver: 'local' | 'evm' = 'local'): Promise<ProofBundle> {
  const leaf = await ledger.findLeaf(pool, resourceType, id, versionId);
  if (!leaf) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no provenance leaf for ${resourceType}/${id}/_history/${versionId}`);
  if (leaf.batchNumber === null || leaf.leafIndex === null) {
    throw new AnchorlineError('ANCHORLINE_ERR_PROOF_PENDING', 'this version is not in a closed batch yet; ask again after the next batch closes');
  }
  const anchor = await anchorFor(pool, Number(leaf.batchNumber), anchorDriver);
  const batches = await ledger.batchesFrom(pool, Number(leaf.batchNumber), Math.max(MAX_CHAIN_HEADERS, (anchor.driver === 'evm' ? anchor.batchNumber - Number(leaf.batchNumber) : 0)) + 1);
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
    anchor,
  };
}

async function anchorFor(pool: pg.Pool, batchNumber: number, anchorDriver: 'local' | 'evm'): Promise<ProofAnchor> {
  const covering = await chainAnchors.coveringAnchor(pool, batchNumber);
  if (covering) {
    return {
      driver: 'evm',
      chainId: covering.chainId,
      contract: covering.contract,
      txHash: covering.txHash,
      blockNumber: covering.blockNumber!,
      blockHash: covering.blockHash!,
      batchNumber: covering.batchNumber,
    };
  }
  if (anchorDriver === 'evm') {
    throw new AnchorlineError('ANCHORLINE_ERR_PROOF_PENDING', 'the batch holding this version is closed but not yet confirmed on chain; ask again shortly');
  }
  return { driver: 'local' };
}

const VERSION_PARAMS = {
  type: 'object',
  properties: {
    type: { type: 'string', description: 'FHIR resource type, e.g. Patient' },
    id: { type: 'string', description: 'Resource id' },
    vid: { type: 'string', description: 'Version id (a positive integer)' },
  },
  required: ['type', 'id', 'vid'],
};

const PROOF_SCHEMA = {
  summary: 'Proof bundle of one resource version',
  description:
    'The self-contained proof (format anchorline-proof/1) that this version is unaltered: its provenance leaf, the RFC 9162 audit path to its batch root, ' +
    'the signed batch header, every later header, and the chain anchor when there is one. Check it offline with `anchorline verify`. ' +
    '409 ANCHORLINE_ERR_PROOF_PENDING until the batch holding the version closes (and, with the evm driver, is confirmed on chain).',
  tags: ['proofs'],
  params: VERSION_PARAMS,
};

const SOURCE_SCHEMA = {
  summary: 'Raw inbound message of one resource version',
  description: "The message the version was mapped from, byte for byte (application/octet-stream), for `anchorline verify --raw` against the leaf's rawSha256.",
  tags: ['proofs'],
  params: VERSION_PARAMS,
};

export function registerProofRoutes(app: FastifyInstance, pool: pg.Pool, anchorDriver: 'local' | 'evm'): void {
  app.get<{ Params: { type: string; id: string; vid: string } }>('/proofs/:type/:id/_history/:vid', { schema: PROOF_SCHEMA, config: { scope: 'read' } }, async (request, reply) => {
    const { type, id, vid } = request.params;
    const versionId = parsePositiveId(vid);
    if (versionId === undefined) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'version id must be a positive integer in decimal digits');
    // A bundle holds hashes, not the record; still, it is only for those who may read the record, or audit it.
    const access = accessOf(request);
    if (!access.can(type, 'r') && !access.meets('audit')) throw new AnchorlineError('ANCHORLINE_ERR_FORBIDDEN', `reading proofs of ${type} needs system/${type}.r or the audit scope`);
    return reply.header('content-type', 'application/json; charset=utf-8').send(await buildProofBundle(pool, type, id, versionId, anchorDriver));
  });

  // The raw inbound message a version came from, byte for byte, for `anchorline verify --raw` (the leaf's
  // rawSha256). Admin scope: a raw message may carry more than the resource made from it.
  app.get<{ Params: { type: string; id: string; vid: string } }>('/proofs/:type/:id/_history/:vid/source', { schema: SOURCE_SCHEMA, config: { scope: 'admin' } }, async (request, reply) => {
    const { type, id, vid } = request.params;
    const versionId = parsePositiveId(vid);
    if (versionId === undefined) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'version id must be a positive integer in decimal digits');
    const message = await withTransaction(pool, async (client) => {
      const messageId = await resources.sourceMessageId(client, type, id, versionId);
      const message = messageId === undefined ? undefined : await inbox.getMessage(client, messageId);
      if (!message) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no source message for ${type}/${id}/_history/${versionId}`);
      const version = await resources.readVersion(client, type, id, versionId);
      await auditTrail.recordRead(client, {
        interaction: 'read',
        actor: auditActor(request),
        returned: [{ resourceType: type, id, versionId }],
        patients: version ? auditTrail.patientsOf(version.content) : [],
        description: `raw inbound message ${message.id} of ${type}/${id}/_history/${versionId}`,
      });
      return message;
    });
    return reply.header('content-type', 'application/octet-stream').header('x-anchorline-message-id', String(message.id)).send(message.raw);
  });
}

/**
 * GET /proofs/{type}/{id}/_history/{vid}: the self-contained proof bundle (anchor/log-bundle.ts, format
 * anchorline-proof/2) of one resource version: its provenance leaf, the RFC 9162 inclusion proof to a signed
 * checkpoint of the one log, that checkpoint with its witnesses' cosignatures, and the signed chain anchor claim
 * when the evm driver anchors. Its size grows with log2 of the log, never with the record's age.
 */
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { bytesToBase64, type LeafPreimage, type LogProofAnchor, type LogProofBundle } from '../anchor/index.ts';
import { inclusionProof } from '../anchor/log/index.ts';
import { AnchorlineError } from '../errors/index.ts';
import { auditTrail, inbox, ledger, log as logStore, resources, withTransaction } from '../store/index.ts';
import { accessOf, auditActor } from './fhir.ts';
import { filterThrough, requestContext, type ConsentGate } from './consent-gate.ts';
import { parsePositiveId } from './params.ts';

export interface ProofOptions {
  anchorDriver: 'local' | 'evm';
  /** Consent enforcement for people (api/consent-gate.ts); absent: people get no proofs. */
  gate?: ConsentGate;
  /** Cosignatures a checkpoint needs to be preferred for bundles (0: the newest checkpoint). */
  witnessQuorum: number;
}

/**
 * The bundle of one version, against the checkpoint of tree size `atSize` when given, else: with the evm driver the
 * newest checkpoint whose chain anchor is confirmed (PROOF_PENDING until there is one covering the version); with
 * the local driver the newest checkpoint cosigned by witnessQuorum witnesses, else the newest.
 */
export async function buildProofBundle(pool: pg.Pool, resourceType: string, id: string, versionId: number, options: ProofOptions, atSize?: number): Promise<LogProofBundle> {
  const leaf = await ledger.findLeaf(pool, resourceType, id, versionId);
  if (!leaf) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no provenance leaf for ${resourceType}/${id}/_history/${versionId}`);
  // An erasure keeps the leaf hash in the log but not the preimage (store/erasure.ts): there is nothing to prove.
  if (leaf.erased) throw new AnchorlineError('ANCHORLINE_ERR_ERASED', `${resourceType}/${id}/_history/${versionId} was erased; its leaf stays in the log, its content and preimage do not`);
  const pending = (): AnchorlineError => new AnchorlineError('ANCHORLINE_ERR_PROOF_PENDING', 'this version is not in a signed checkpoint yet; ask again after the next checkpoint');
  if (leaf.leafIndex === null) throw pending();
  const index = Number(leaf.leafIndex);
  let checkpoint: logStore.StoredCheckpoint | undefined;
  let anchor: LogProofAnchor = { driver: 'local' };
  if (atSize !== undefined) {
    checkpoint = await logStore.checkpointOfSize(pool, atSize);
    if (!checkpoint) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `no checkpoint of tree size ${atSize}`);
    if (checkpoint.treeSize <= index) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', `the checkpoint of tree size ${atSize} does not hold leaf ${index} yet`);
    const claim = options.anchorDriver === 'evm' ? await logStore.anchorClaimOf(pool, checkpoint.number) : undefined;
    if (claim !== undefined) anchor = { driver: 'evm', claim };
  } else if (options.anchorDriver === 'evm') {
    const anchored = await logStore.anchoredCheckpointFor(pool, index);
    if (!anchored) throw new AnchorlineError('ANCHORLINE_ERR_PROOF_PENDING', 'no checkpoint holding this version is confirmed on chain yet; ask again shortly');
    checkpoint = anchored.checkpoint;
    anchor = { driver: 'evm', claim: anchored.claim };
  } else {
    checkpoint = await logStore.checkpointForProof(pool, index, options.witnessQuorum);
  }
  if (!checkpoint) throw pending();
  const proof = await inclusionProof(logStore.nodeStore(pool), index, checkpoint.treeSize);
  return {
    format: 'anchorline-proof/2',
    leaf: { preimage: leaf.preimage as unknown as LeafPreimage, index },
    inclusionProof: proof.map(bytesToBase64),
    checkpoint: await logStore.checkpointNote(pool, checkpoint),
    logKey: checkpoint.logKey,
    anchor,
  };
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
    'The self-contained proof (format anchorline-proof/2, docs/proofs.md) that this version is unaltered: its provenance leaf, the RFC 9162 inclusion proof ' +
    'in the one log, the signed checkpoint (C2SP tlog-checkpoint) with witness cosignatures, and the signed chain anchor claim with the evm driver. ' +
    'Check it offline with `anchorline verify`. `?checkpoint=<tree size>` asks for the proof against that checkpoint. ' +
    '409 ANCHORLINE_ERR_PROOF_PENDING until a checkpoint holds the version (and, with the evm driver, one is confirmed on chain).',
  tags: ['proofs'],
  params: VERSION_PARAMS,
  querystring: { type: 'object', properties: { checkpoint: { type: 'string', description: 'Tree size of the checkpoint to prove against' } } },
};

const SOURCE_SCHEMA = {
  summary: 'Raw inbound message of one resource version',
  description: "The message the version was mapped from, byte for byte (application/octet-stream), for `anchorline verify --raw` against the leaf's rawSha256.",
  tags: ['proofs'],
  params: VERSION_PARAMS,
};

export function registerProofRoutes(app: FastifyInstance, pool: pg.Pool, options: ProofOptions): void {
  app.get<{ Params: { type: string; id: string; vid: string }; Querystring: { checkpoint?: string } }>('/proofs/:type/:id/_history/:vid', { schema: PROOF_SCHEMA, config: { scope: 'read' } }, async (request, reply) => {
    const { type, id, vid } = request.params;
    const atSize = request.query.checkpoint === undefined ? undefined : parsePositiveId(request.query.checkpoint);
    if (request.query.checkpoint !== undefined && atSize === undefined) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'checkpoint must be a tree size: a positive integer in decimal digits');
    const versionId = parsePositiveId(vid);
    if (versionId === undefined) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'version id must be a positive integer in decimal digits');
    // A bundle holds hashes, not the record; still, it is only for those who may read the record, or audit it.
    const access = accessOf(request);
    if (!access.can(type, 'r') && !access.meets('audit')) throw new AnchorlineError('ANCHORLINE_ERR_FORBIDDEN', `reading proofs of ${type} needs system/${type}.r or the audit scope`);
    const context = requestContext(options.gate, request, access);
    if (context) {
      // A person gets the proof of a version they may read, consent included; any other reads as absent.
      const version = await resources.readVersion(pool, type, id, versionId);
      if (!version || (await filterThrough(options.gate, context, [version])).allowed.length === 0) {
        throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `${type}/${id}/_history/${versionId} does not exist`);
      }
    }
    return reply.header('content-type', 'application/json; charset=utf-8').send(await buildProofBundle(pool, type, id, versionId, options, atSize));
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

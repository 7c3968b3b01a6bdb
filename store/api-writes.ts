/**
 * A resource written through the API rather than mapped from a message (a Consent, a research project's
 * ResearchStudy or Group), stored like every record in the caller's transaction: the new version with its history and
 * search index, the request body kept as a finished inbox message (protocol fhir-rest) that the version's leaf names
 * as its source, the leaf, and the AuditEvents the caller describes, each with a leaf of its own. The ledger audit
 * re-hashes the body and the resource like those of any mapped message.
 *
 * The body is sealed as an inbound message is, under a key of its own; when the resource is about one patient (a
 * Consent: Consent.patient) that key is moved under the patient's key in the same transaction, as the ingest worker
 * moves a mapped message's, so that erasing the patient leaves the body unreadable too. A body about no one patient
 * (a research project's ResearchStudy, or its Group, which lists members by id only) stays under the master key.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { newSalt, provenanceLeafHash, resourceSha256, type LeafPreimage } from '../anchor/index.ts';
import { AnchorlineError } from '../errors/index.ts';
import { auditVersions, type AuditActor } from './audit-trail.ts';
import { moveMessageKeys, recordApiWrite } from './inbox.ts';
import { sealingPatientOf } from './keys.ts';
import { appendLeaves } from './ledger.ts';
import { recordMappingConfig } from './mapping-configs.ts';
import { lockCurrent, stampVersion, writeVersions, type StoredResource } from './resources.ts';

/** What the write of a resource through the FHIR API records as its mapping: the body as sent, stamped by the store. */
export const REST_WRITE_MAPPING = {
  kind: 'anchorline/fhir-rest-write',
  version: 1,
  rule: 'the request body, parsed as JSON, is the resource; the store sets its id (create) and meta.versionId and meta.lastUpdated',
} as const;

export interface ApiWrite {
  resourceType: string;
  /** The validated resource, with its id (chosen by the route for a create, from the URL for an update). */
  content: Record<string, unknown>;
  /** 'create' (POST) refuses an id that exists; 'update' (PUT) creates or updates. */
  interaction: 'create' | 'update';
  /** If-Match: the version the writer expects to replace; a mismatch fails with 412. */
  expectedVersion?: number;
  /** The request body, stored as the version's source. */
  raw: Buffer;
  actor: AuditActor;
  /** Checks the version it replaces (undefined: none, the write creates); throws to refuse. */
  check?: (previous: StoredResource | undefined) => void;
  /** The AuditEvents that record the write (no id or meta yet), given what was written. */
  auditEvents: (written: { stored: StoredResource; interaction: 'create' | 'update'; messageId: number }) => Array<Record<string, unknown>>;
}

export interface ApiWritten {
  stored: StoredResource;
  created: boolean;
  /** The inbox row holding the request body. */
  messageId: number;
  auditEventIds: string[];
}

export async function writeApiResource(client: pg.PoolClient, write: ApiWrite, now: Date = new Date()): Promise<ApiWritten> {
  const type = write.resourceType;
  const id = write.content.id as string;
  const key = `${type}/${id}`;
  const current = await lockCurrent(client, [{ resourceType: type, id }]);
  const previous = current.get(key);
  if (write.interaction === 'create' && previous !== undefined) {
    throw new AnchorlineError('ANCHORLINE_ERR_VERSION_CONFLICT', `${key} exists already; update it with PUT`);
  }
  if (write.expectedVersion !== undefined && previous?.versionId !== write.expectedVersion) {
    throw new AnchorlineError('ANCHORLINE_ERR_VERSION_CONFLICT', `If-Match names version ${write.expectedVersion}; the current version is ${previous?.versionId ?? 'none'}`);
  }
  write.check?.(previous);
  const stored = stampVersion(previous, { ...write.content, resourceType: type, id }, now);
  const rawSha256 = createHash('sha256').update(write.raw).digest();
  const mappingSha256 = await recordMappingConfig(client, REST_WRITE_MAPPING);
  const actor = write.actor;
  const message = await recordApiWrite(client, {
    source: `fhir:${actor.kind}/${actor.id}${actor.address ? ` ${actor.address}` : ''}`,
    sender: `fhir-rest:${actor.kind}/${actor.id}`,
    controlId: `${key}/_history/${stored.versionId}`,
    messageType: `${type}^${write.interaction}`,
    raw: write.raw,
    rawSha256,
    mappingSha256,
  });
  const messageId = message.id;
  const rawHex = rawSha256.toString('hex');
  const interaction = previous === undefined ? 'create' : 'update';
  const audit = auditVersions(write.auditEvents({ stored, interaction, messageId }).map((content) => ({ content, recorded: now, sourceMessageId: messageId, rawSha256: rawHex, mappingSha256 })));
  const patientKeys = await writeVersions(client, [{ stored, sourceMessageId: messageId, mappingSha256 }, ...audit.versions], current);
  // The key writeVersions sealed the version under (it made it if the patient had none): the body follows it.
  const patient = sealingPatientOf(stored.content);
  const patientKey = patient === undefined ? undefined : patientKeys.get(patient);
  if (message.key !== undefined && patientKey !== undefined) await moveMessageKeys(client, [{ id: messageId, key: message.key, patientKey }]);
  const preimage: LeafPreimage = {
    v: 1,
    resourceType: type,
    id,
    versionId: String(stored.versionId),
    resourceSha256: resourceSha256(stored.content),
    rawSha256: rawHex,
    mappingSha256,
    terminologyVersion: 'none',
    salt: newSalt(),
  };
  await appendLeaves(client, [{ resourceType: type, resourceId: id, versionId: stored.versionId, preimage: { ...preimage }, leafHash: provenanceLeafHash(preimage) }, ...audit.leaves]);
  return { stored, created: previous === undefined, messageId, auditEventIds: audit.versions.map((v) => v.stored.id) };
}

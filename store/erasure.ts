/**
 * Erasure of a patient's records by crypto-shredding (right to erasure: GDPR art. 17, PIPA art. 36).
 *
 * Contract:
 * - erasePatient destroys every key of the patient (patient_key: wrapped_dek emptied, destroyed_at set), in one
 *   transaction with the cleanup below and the AuditEvent that records it; all of it commits or none.
 * - What was sealed under those keys stays where it is and can no longer be opened, here or in any backup that does
 *   not also hold a master key that wrapped them (README, Encryption at rest): resource versions, document Bundles,
 *   the raw messages whose keys the worker moved under the patient's key, and the DICOM instance files sealed under
 *   those messages' keys (store/instance-blobs.ts). Given the blob store, erasePatient also removes those files once
 *   the transaction has committed (a file it cannot remove stays, as unreadable as before); instances stored plain
 *   before they were sealed at intake stay on disk, and every read of them answers ANCHORLINE_ERR_ERASED.
 * - What would still link, in plaintext, is removed: the erased resources' search-index and reference rows, the
 *   mapping issues and error details of their messages (they may quote the message), and the preimages of their
 *   leaves (below). Their current rows read as deleted.
 * - The ledger is not rewritten: every leaf hash stays, so the log, its checkpoints, its chain anchors and every
 *   other record's proof verify as before. A proof of an erased version answers ANCHORLINE_ERR_ERASED; the ledger
 *   audit counts erased versions and messages, apart from mismatches.
 * - Running it again for the same patient erases what was written since (a new key version) and records another
 *   AuditEvent; with nothing left to erase it answers ANCHORLINE_ERR_NOT_FOUND.
 *
 * Why an erased leaf loses its preimage: resourceSha256 is the unsalted SHA-256 of the canonical resource, and
 * rawSha256 that of the raw message. Kept, either would confirm a guess of the erased record (type, id, version
 * and lastUpdated are known; names, birth dates and codes come from small sets), so both are personal data that
 * outlives the key. With the salt kept beside them, the leaf hash itself would confirm such a guess as well. So the
 * whole preimage goes and only the leaf hash stays: without the salt it commits to nothing anyone can test, and it
 * is all the log's tiles and the other records' inclusion proofs need.
 */
import type pg from 'pg';
import { AnchorlineError } from '../errors/index.ts';
import type { BlobStore } from './blobs.ts';
import { AUDIT_EVENT, NO_SOURCE_SHA256, recordAuditEvents, type AuditActor } from './audit-trail.ts';
import { keyringOf } from './keys.ts';
import { forgetPatient } from './research.ts';
import { PATIENT_REFERENCE } from './compartment.ts';

export interface ErasureRequest {
  /** `Patient/<id>`. */
  patient: string;
  actor: AuditActor;
  /** Why, in words (a request reference); recorded in the AuditEvent. Never patient data. */
  reason?: string;
}

export interface ErasureReport {
  patient: string;
  /** The AuditEvent recording the erasure. */
  auditEvent: string;
  /** Patient keys destroyed. */
  keys: number;
  /** Resource versions sealed under them (now unreadable). */
  versions: number;
  /** Resources whose current version was erased (now read as deleted). */
  resources: number;
  /** Raw messages whose keys were under the patient's keys (now unreadable). */
  messages: number;
  /** DICOM instance files sealed under those messages' keys (now unreadable, and removed when the blob store was given). */
  blobs: number;
  /** De-identified rows of research projects removed. */
  researchRows: number;
}

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const coding = (system: string, code: string, display: string): Record<string, string> => ({ system, code, display });

/**
 * The AuditEvent of an erasure: DICOM 110110 Patient Record, action D (delete), subtype `erasure`
 * (urn:anchorline:erasure), purpose of use PATRQT (at the patient's request), the patient as entity. Counts only.
 */
function erasureAuditEvent(request: ErasureRequest, counts: Omit<ErasureReport, 'auditEvent' | 'patient'>, recorded: Date): Record<string, unknown> {
  return {
    resourceType: AUDIT_EVENT,
    type: coding(DCM, '110110', 'Patient Record'),
    subtype: [coding('urn:anchorline:erasure', 'erasure', 'Erasure by destroying the patient\'s keys (crypto-shredding)')],
    action: 'D',
    recorded: recorded.toISOString(),
    outcome: '0',
    outcomeDesc: `erased ${counts.versions} resource versions, ${counts.messages} raw messages and ${counts.blobs} DICOM instance files; ${counts.keys} patient keys destroyed; ${counts.researchRows} research rows removed`,
    purposeOfEvent: [{ coding: [coding('http://terminology.hl7.org/CodeSystem/v3-ActReason', 'PATRQT', 'patient requested')] }],
    agent: [
      {
        type: { coding: [coding(DCM, '110153', 'Source Role ID')] },
        who: { identifier: { system: `urn:anchorline:${request.actor.kind}`, value: request.actor.id }, display: request.actor.name },
        altId: `${request.actor.kind}/${request.actor.id}`,
        requestor: true,
      },
      { type: { coding: [coding(DCM, '110152', 'Destination Role ID')] }, who: { display: 'anchorline' }, requestor: false },
    ],
    source: { site: 'anchorline', observer: { display: 'anchorline' }, type: [coding('http://terminology.hl7.org/CodeSystem/security-source-type', '4', 'Application Server')] },
    entity: [
      {
        what: { reference: request.patient },
        type: coding('http://terminology.hl7.org/CodeSystem/audit-entity-type', '1', 'Person'),
        role: coding('http://terminology.hl7.org/CodeSystem/object-role', '1', 'Patient'),
        ...(request.reason ? { description: request.reason } : {}),
      },
    ],
  };
}

/**
 * Erases a patient's records (see the contract above). Retried once on a deadlock with a concurrent writer.
 * `blobs`: the blob store, to remove the erased messages' sealed instance files from.
 */
export async function erasePatient(pool: pg.Pool, request: ErasureRequest, options: { blobs?: BlobStore } = {}): Promise<ErasureReport> {
  if (!PATIENT_REFERENCE.test(request.patient)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'the patient to erase is named as Patient/<id>');
  for (let attempt = 1; ; attempt++) {
    try {
      return await eraseOnce(pool, request, options.blobs);
    } catch (error) {
      // A writer that locked one of the patient's current rows before asking for their key, while this locked the
      // key first: PostgreSQL ends one of the two. Either may simply run again.
      if ((error as { code?: string }).code !== '40P01' || attempt >= 3) throw error;
    }
  }
}

async function eraseOnce(pool: pg.Pool, request: ErasureRequest, blobs: BlobStore | undefined): Promise<ErasureReport> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // The key rows are locked first: a writer creating the patient's next key version waits until this commits.
    const keyRows = await client.query<{ id: number }>('SELECT id FROM patient_key WHERE patient = $1 AND destroyed_at IS NULL ORDER BY id FOR UPDATE', [request.patient]);
    const keyIds = keyRows.rows.map((row) => Number(row.id));
    if (keyIds.length === 0) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `${request.patient} has no live key: nothing of theirs is sealed, or it was erased already`);
    const counts = (
      await client.query<{ versions: number; resources: number; messages: number; blobs: Buffer[] | null }>(
        `WITH erased AS (SELECT resource_type, id, version_id FROM fhir_resource_history WHERE key_id = ANY($1::bigint[])),
              destroyed AS (UPDATE patient_key SET wrapped_dek = NULL, kek_id = NULL, destroyed_at = now() WHERE id = ANY($1::bigint[])),
              current AS (
                UPDATE fhir_current c SET deleted = true FROM erased e
                 WHERE c.resource_type = e.resource_type AND c.id = e.id AND c.version_id = e.version_id
                RETURNING c.resource_type, c.id),
              tokens AS (DELETE FROM fhir_search_token s USING (SELECT DISTINCT resource_type, id FROM erased) e WHERE s.resource_type = e.resource_type AND s.id = e.id),
              strings AS (DELETE FROM fhir_search_string s USING (SELECT DISTINCT resource_type, id FROM erased) e WHERE s.resource_type = e.resource_type AND s.id = e.id),
              refs AS (DELETE FROM fhir_reference f USING (SELECT DISTINCT resource_type, id FROM erased) e
                        WHERE (f.resource_type = e.resource_type AND f.id = e.id) OR f.target = e.resource_type || '/' || e.id),
              leaves AS (UPDATE ledger_leaf l SET preimage = NULL, erased_at = now() FROM erased e
                          WHERE l.resource_type = e.resource_type AND l.resource_id = e.id AND l.version_id = e.version_id AND l.erased_at IS NULL),
              messages AS (UPDATE inbox_message SET mapping_issues = NULL, error_detail = NULL WHERE raw_key_id = ANY($1::bigint[]) RETURNING id, blob_sealed_sha256)
         SELECT (SELECT count(*)::int FROM erased) AS versions, (SELECT count(*)::int FROM current) AS resources, (SELECT count(*)::int FROM messages) AS messages,
                (SELECT array_agg(blob_sealed_sha256) FROM messages WHERE blob_sealed_sha256 IS NOT NULL) AS blobs`,
        [keyIds],
      )
    ).rows[0]!;
    // The patient's de-identified copies in research projects are pseudonymous, so they go too.
    const researchRows = await forgetPatient(client, request.patient);
    const recorded = new Date();
    const sealedBlobs = counts.blobs ?? [];
    const report = { keys: keyIds.length, versions: counts.versions, resources: counts.resources, messages: counts.messages, blobs: sealedBlobs.length, researchRows };
    const [auditEventId] = await recordAuditEvents(client, [{ content: erasureAuditEvent(request, report, recorded), recorded, sourceMessageId: null, rawSha256: NO_SOURCE_SHA256, mappingSha256: NO_SOURCE_SHA256 }]);
    await client.query('INSERT INTO patient_erasure (patient, audit_event_id, versions, messages) VALUES ($1, $2, $3, $4)', [request.patient, auditEventId, report.versions, report.messages]);
    await client.query('COMMIT');
    keyringOf(pool)?.forget(keyIds);
    // Only after the commit: removed before it, a file would be lost if the erasure then rolled back. Each sealed
    // file is named by one message's row only (store/blobs.ts), so no other record needs it.
    if (blobs !== undefined) for (const name of sealedBlobs) await blobs.delete(name.toString('hex')).catch(() => false);
    return { patient: request.patient, auditEvent: `AuditEvent/${auditEventId!}`, ...report };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Erasure of a patient's records by crypto-shredding (right to erasure: GDPR art. 17, PIPA art. 36).
 *
 * Contract:
 * - erasePatient destroys every key of the patient (patient_key: wrapped_dek emptied, destroyed_at set), in one
 *   transaction with the cleanup below and the AuditEvent that records it; all of it commits or none.
 * - What was sealed under those keys stays where it is and can no longer be opened, here or in any backup that does
 *   not also hold a master key that wrapped them (README, Encryption at rest): resource versions, document Bundles,
 *   the raw messages whose keys the worker moved under the patient's key, the request bodies of the patient's
 *   Consents (store/api-writes.ts), and the DICOM instance files sealed under those messages' keys
 *   (store/instance-blobs.ts).
 * - Before the keys are destroyed, in the same transaction, the messages whose keys are still under the master key
 *   (refused at intake, failed mapping, dead letters, mapped to nothing new, not mapped yet, FHIR REST bodies from
 *   before their keys followed the patient) are scanned for the patient (attributeMessages below): each is opened
 *   with the master key, the patient identifiers it carries are read (the caller's MessagePatientReader; a REST body
 *   by the patient it names) and compared with those of the patient's Patient versions (store/message-patients.ts),
 *   and the key of each that names the patient is moved under the patient's key, so the destruction covers it and
 *   its DICOM instance file. The scan reads in batches (scanBatchRows rows, at most scanBatchBytes of raw bytes a
 *   query) so memory does not grow with the inbox; it costs one unwrap and one parse per message still under the
 *   master key, which an erasure, being rare, can pay. A message that does not parse in its protocol names no one
 *   and stays as it is (counted as unattributable). A message a worker is mapping at that moment is moved once the
 *   worker commits, unless the worker moved it under a patient's key itself.
 * - Given the blob store, erasePatient also removes the erased messages' instance files once the transaction has
 *   committed: the sealed ones, and those stored plain before files were sealed at intake unless a message that is
 *   not erased names the same bytes (a file it cannot remove stays, unreadable if sealed; every read of an erased
 *   message's instance answers ANCHORLINE_ERR_ERASED).
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
import { blindIndexOf } from './blind-index.ts';
import { byteGroups } from './db.ts';
import type { BlobStore } from './blobs.ts';
import { AUDIT_EVENT, NO_SOURCE_SHA256, recordAuditEvents, type AuditActor } from './audit-trail.ts';
import { FHIR_REST_PROTOCOL, moveMessageKeys } from './inbox.ts';
import { keyringOf, open, openVersionRows, rawAad, sealingPatientOf, type PatientKey, type VersionRow } from './keys.ts';
import { namesPatient, patientIdentifiers, type MessagePatientReader } from './message-patients.ts';
import { forgetPatient } from './research.ts';
import { PATIENT_REFERENCE } from './compartment.ts';
import { ENGINE_AGENT_NAME } from './search-index.ts';

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
  /** Raw messages whose keys were under the patient's keys (now unreadable), attributedMessages included. */
  messages: number;
  /**
   * Messages still under the master key that the erasure's scan read: FHIR REST bodies, and HL7 v2, C-CDA and DICOM
   * messages when it was given a MessagePatientReader and the patient's Patient has identifiers to compare.
   */
  scannedMessages: number;
  /** Of those, the messages that named the patient: their keys were moved under the patient's before it was destroyed. */
  attributedMessages: number;
  /**
   * Messages the scan read that name no patient it could compare (not parseable in their protocol, without patient
   * identifiers, or not opening under their key): attributable to no one, left as they were.
   */
  unattributableMessages: number;
  /**
   * DICOM instance files of those messages: sealed under their keys (now unreadable), or stored plain before files
   * were sealed and named by no other message; removed when the blob store was given.
   */
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
    outcomeDesc:
      `erased ${counts.versions} resource versions, ${counts.messages} raw messages and ${counts.blobs} DICOM instance files; ${counts.keys} patient keys destroyed; ` +
      `${counts.researchRows} research rows removed; ${counts.attributedMessages} of the raw messages found by their content among ${counts.scannedMessages} ` +
      `messages still under the master key (${counts.unattributableMessages} naming no one)`,
    purposeOfEvent: [{ coding: [coding('http://terminology.hl7.org/CodeSystem/v3-ActReason', 'PATRQT', 'patient requested')] }],
    agent: [
      {
        type: { coding: [coding(DCM, '110153', 'Source Role ID')] },
        who: { identifier: { system: `urn:anchorline:${request.actor.kind}`, value: request.actor.id }, display: request.actor.name },
        altId: `${request.actor.kind}/${request.actor.id}`,
        requestor: true,
      },
      { type: { coding: [coding(DCM, '110152', 'Destination Role ID')] }, who: { display: ENGINE_AGENT_NAME }, requestor: false },
    ],
    source: { site: ENGINE_AGENT_NAME, observer: { display: ENGINE_AGENT_NAME }, type: [coding('http://terminology.hl7.org/CodeSystem/security-source-type', '4', 'Application Server')] },
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

export interface ErasureOptions {
  /** The blob store, to remove the erased messages' sealed instance files from. Absent: the files stay (unreadable). */
  blobs?: BlobStore;
  /**
   * Reads the patient identifiers of HL7 v2, C-CDA and DICOM messages (workers/message-patients.ts), for the scan of
   * the messages still under the master key. Absent: the scan reads only FHIR REST bodies.
   */
  messagePatients?: MessagePatientReader;
  /** Messages the scan reads per batch at most. Default 500. */
  scanBatchRows?: number;
  /** Raw bytes the scan reads per query at most, in bytes (a larger message is read alone). Default 16 MiB. */
  scanBatchBytes?: number;
}

/** Erases a patient's records (see the contract above). Retried once on a deadlock with a concurrent writer. */
export async function erasePatient(pool: pg.Pool, request: ErasureRequest, options: ErasureOptions = {}): Promise<ErasureReport> {
  if (!PATIENT_REFERENCE.test(request.patient)) throw new AnchorlineError('ANCHORLINE_ERR_INVALID_REQUEST', 'the patient to erase is named as Patient/<id>');
  for (let attempt = 1; ; attempt++) {
    try {
      return await eraseOnce(pool, request, options);
    } catch (error) {
      // A writer that locked one of the patient's current rows before asking for their key, while this locked the
      // key first: PostgreSQL ends one of the two. Either may simply run again.
      if ((error as { code?: string }).code !== '40P01' || attempt >= 3) throw error;
    }
  }
}

async function eraseOnce(pool: pg.Pool, request: ErasureRequest, options: ErasureOptions): Promise<ErasureReport> {
  const { blobs } = options;
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // The key rows are locked first: a writer creating the patient's next key version waits until this commits.
    const keyRows = await client.query<{ id: string; wrapped_dek: Buffer; kek_id: string }>('SELECT id, wrapped_dek, kek_id FROM patient_key WHERE patient = $1 AND destroyed_at IS NULL ORDER BY id FOR UPDATE', [request.patient]);
    const keyIds = keyRows.rows.map((row) => Number(row.id));
    if (keyIds.length === 0) throw new AnchorlineError('ANCHORLINE_ERR_NOT_FOUND', `${request.patient} has no live key: nothing of theirs is sealed, or it was erased already`);
    // Messages still under the master key that name the patient go under the newest of the keys about to be destroyed.
    const newest = keyRows.rows.at(-1)!;
    const keyring = keyringOf(client);
    const scan = keyring === undefined
      ? { scanned: 0, attributed: 0, unattributable: 0 }
      : await attributeMessages(client, request.patient, { keyId: Number(newest.id), dek: await keyring.dekOf(Number(newest.id), newest.wrapped_dek, newest.kek_id) }, options);
    const counts = (
      await client.query<{ versions: number; resources: number; messages: number; blobs: Buffer[] | null; plain_blobs: Buffer[] | null }>(
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
              messages AS (UPDATE inbox_message SET mapping_issues = NULL, error_detail = NULL WHERE raw_key_id = ANY($1::bigint[]) RETURNING id, blob_sha256, blob_sealed_sha256)
         SELECT (SELECT count(*)::int FROM erased) AS versions, (SELECT count(*)::int FROM current) AS resources, (SELECT count(*)::int FROM messages) AS messages,
                (SELECT array_agg(blob_sealed_sha256) FROM messages WHERE blob_sealed_sha256 IS NOT NULL) AS blobs,
                -- A plain file (stored before files were sealed) is named by its content: another message that is not
                -- erased may name the same bytes (a resend from another AE title), and then the file stays.
                (SELECT array_agg(DISTINCT m.blob_sha256) FROM messages m
                  WHERE m.blob_sealed_sha256 IS NULL AND m.blob_sha256 IS NOT NULL
                    AND NOT EXISTS (SELECT 1 FROM inbox_message o WHERE o.blob_sha256 = m.blob_sha256 AND NOT COALESCE(o.raw_key_id = ANY($1::bigint[]), false))) AS plain_blobs`,
        [keyIds],
      )
    ).rows[0]!;
    await keyErasedDigests(client);
    // The patient's de-identified copies in research projects are pseudonymous, so they go too.
    const researchRows = await forgetPatient(client, request.patient);
    const recorded = new Date();
    const sealedBlobs = [...(counts.blobs ?? []), ...(counts.plain_blobs ?? [])];
    const report = {
      keys: keyIds.length,
      versions: counts.versions,
      resources: counts.resources,
      messages: counts.messages,
      scannedMessages: scan.scanned,
      attributedMessages: scan.attributed,
      unattributableMessages: scan.unattributable,
      blobs: sealedBlobs.length,
      researchRows,
    };
    const [auditEventId] = await recordAuditEvents(client, [{ content: erasureAuditEvent(request, report, recorded), recorded, sourceMessageId: null, rawSha256: NO_SOURCE_SHA256, mappingSha256: NO_SOURCE_SHA256 }]);
    await client.query('INSERT INTO patient_erasure (patient, audit_event_id, versions, messages) VALUES ($1, $2, $3, $4)', [request.patient, auditEventId, report.versions, report.messages]);
    await client.query('COMMIT');
    keyringOf(pool)?.forget(keyIds);
    // Only after the commit: removed before it, a file would be lost if the erasure then rolled back. Each sealed
    // file is named by one message's row only (store/blobs.ts), and a plain one only by erased rows (above), so no
    // other record needs it.
    if (blobs !== undefined) for (const name of sealedBlobs) await blobs.delete(name.toString('hex')).catch(() => false);
    return { patient: request.patient, auditEvent: `AuditEvent/${auditEventId!}`, ...report };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** Protocols whose bytes the scan can read for patient identifiers with a MessagePatientReader. */
const READABLE_PROTOCOL = "(m.protocol LIKE 'hl7v2%' OR m.protocol IN ('cda', 'dicom'))";

/**
 * The erasure's scan (see the contract above): moves under `target` the keys of the messages still under the master
 * key that name `patient`. Runs in the erasure's transaction, after its key rows are locked and before they are
 * destroyed. Returns what it read, moved and could not read.
 */
async function attributeMessages(client: pg.PoolClient, patient: string, target: PatientKey, options: ErasureOptions): Promise<{ scanned: number; attributed: number; unattributable: number }> {
  const keyring = keyringOf(client)!;
  const batchRows = options.scanBatchRows ?? 500;
  const batchBytes = options.scanBatchBytes ?? 16 * 1024 * 1024;
  // The patient's identifiers, from every version of their Patient resource (an identifier since replaced still
  // names them in an older message), read while their keys still open.
  const versions = await client.query<VersionRow>(
    `SELECT h.resource_type, h.id, h.version_id, h.content, h.sealed, h.key_id, k.wrapped_dek AS key_wrapped, k.kek_id AS key_kek
       FROM fhir_resource_history h LEFT JOIN patient_key k ON k.id = h.key_id
      WHERE h.resource_type = 'Patient' AND h.id = $1`,
    [patient.slice('Patient/'.length)],
  );
  await openVersionRows(client, versions.rows, { lossless: false });
  const identifiers = versions.rows.flatMap((row) => (row.erased ? [] : patientIdentifiers(row.content as Record<string, unknown>)));
  // Without identifiers to compare, or a reader of inbound messages, only REST bodies (which name the patient by
  // reference) can be attributed.
  const readsMessages = options.messagePatients !== undefined && identifiers.length > 0;
  const counts = { scanned: 0, attributed: 0, unattributable: 0 };
  let after = 0;
  for (;;) {
    const page = await client.query<{ id: string; bytes: number }>(
      `SELECT m.id, octet_length(m.raw) AS bytes FROM inbox_message m
        WHERE m.raw_kek IS NOT NULL AND m.id > $1 AND (m.protocol = $2 OR ($3 AND ${READABLE_PROTOCOL}))
        ORDER BY m.id LIMIT $4`,
      [after, FHIR_REST_PROTOCOL, readsMessages, batchRows],
    );
    if (page.rows.length === 0) return counts;
    after = Number(page.rows.at(-1)!.id);
    for (const group of byteGroups(page.rows, (row) => Number(row.bytes), batchBytes)) {
      const rows = await client.query<{ id: string; protocol: string; message_type: string | null; raw: Buffer; raw_sha256: Buffer; raw_key: Buffer; raw_kek: string; charset: string | null; sender: string; source: string }>(
        `SELECT m.id, m.protocol, m.message_type, m.raw, m.raw_sha256, m.raw_key, m.raw_kek, m.charset, m.sender, m.source
           FROM inbox_message m WHERE m.id = ANY($1::bigint[]) AND m.raw_kek IS NOT NULL ORDER BY m.id`,
        [group.map((row) => row.id)],
      );
      const moves: Array<{ id: number; key: Buffer; patientKey: PatientKey }> = [];
      for (const row of rows.rows) {
        counts.scanned += 1;
        let key: Buffer;
        let raw: Buffer;
        try {
          key = await keyring.kms.unwrap(row.raw_key, row.raw_kek);
          raw = open(key, row.raw, rawAad(row.raw_sha256));
        } catch {
          // Tampered, or under a master key this process does not hold: the audit reports it; nothing to read here.
          counts.unattributable += 1;
          continue;
        }
        const names = row.protocol === FHIR_REST_PROTOCOL
          ? restBodyNames(raw, row.message_type, patient)
          : namesIn(options.messagePatients!.read({ protocol: row.protocol, raw, charset: row.charset, sender: row.sender, source: row.source }), identifiers);
        if (names === undefined) counts.unattributable += 1;
        else if (names) moves.push({ id: Number(row.id), key, patientKey: target });
      }
      counts.attributed += await moveMessageKeys(client, moves);
    }
    if (page.rows.length < batchRows) return counts;
  }
}

/** Whether a message's patients include the erased one; undefined when the reader could not read it. */
function namesIn(found: ReturnType<MessagePatientReader['read']>, identifiers: ReturnType<typeof patientIdentifiers>): boolean | undefined {
  if (found === undefined) return undefined;
  return namesPatient(found.own, identifiers) || namesPatient(found.others, identifiers);
}

/**
 * Whether a FHIR REST request body is about `patient` (a Consent's patient); undefined when it is not JSON. A body
 * without resourceType takes it from the row's message type (`Consent^create`), as the route did.
 */
function restBodyNames(raw: Buffer, messageType: string | null, patient: string): boolean | undefined {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined;
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const content = body as Record<string, unknown>;
  const resourceType = typeof content.resourceType === 'string' ? content.resourceType : messageType?.split('^')[0];
  return sealingPatientOf({ ...content, resourceType }) === patient;
}

/**
 * Replaces the hashes of every message whose key is destroyed (this erasure's, and any an erasure left plain before
 * digests were keyed) by keyed digests of them (BlindIndex.erasedDigest): a plain SHA-256 of erased bytes would
 * confirm a guess of them, and the digest still recognises a resend. In the erasure's transaction, so that the keys
 * and the hashes go together.
 */
async function keyErasedDigests(client: pg.PoolClient): Promise<void> {
  const index = await blindIndexOf(client);
  for (;;) {
    const rows = (
      await client.query<{ id: string; raw_sha256: Buffer; blob_sha256: Buffer | null }>(
        `SELECT m.id, m.raw_sha256, m.blob_sha256 FROM inbox_message m
          WHERE m.raw_key_id IN (SELECT id FROM patient_key WHERE destroyed_at IS NOT NULL) AND NOT m.digests_keyed
          ORDER BY m.id LIMIT 5000`,
      )
    ).rows;
    if (rows.length === 0) return;
    await client.query(
      `UPDATE inbox_message m SET raw_sha256 = d.raw, blob_sha256 = d.blob, digests_keyed = true
         FROM unnest($1::bigint[], $2::bytea[], $3::bytea[]) AS d(id, raw, blob) WHERE m.id = d.id`,
      [rows.map((row) => row.id), rows.map((row) => index.erasedDigest(row.raw_sha256)), rows.map((row) => (row.blob_sha256 === null ? null : index.erasedDigest(row.blob_sha256)))],
    );
  }
}

/**
 * Which stored patient a raw message is about, when its mapping never said: the patient identifiers the message
 * carries, compared with those of stored Patients. Used where a message's key is still under the master key because
 * no version of a patient was written from it (it failed mapping, was refused at intake, or mapped to nothing new),
 * so that its key can be moved under that patient's key (store/keys.ts) and an erasure of the patient reaches it:
 * by the ingest worker when it fails or finishes such a message (workers/ingest.ts), and by the erasure's scan of
 * the messages still under the master key (store/erasure.ts).
 *
 * Reading identifiers out of a message takes its grammar (formats/), which the store does not import: the caller
 * hands in a MessagePatientReader (workers/message-patients.ts). What the store does is the comparison, which reads
 * only FHIR Patients:
 * - An identifier a message carries matches a Patient's identifier when the values are equal and the Patient's
 *   identifier is one the mappers could have made from the message's authority: its system is one of the systems
 *   that authority maps to (urn:oid:, urn:uuid:, a URI, urn:anchorline:authority:<name>, or the mapping config's
 *   identifierSystems entry for it), or its assigner names that authority (the HL7 v2 mappers set assigner.display
 *   to CX-4's namespace or universal id, else MSH-4's). An identifier that names no authority at all matches
 *   nothing: a bare number is some patient's at every hospital.
 * - Through the search index, a message's own patient is looked up among current Patients by identifier value
 *   (the blind index's value-only hash, store/blind-index.ts), and the Patients found are confirmed by the rule
 *   above after they are opened. A message whose identifiers name more than one stored Patient is attributed to
 *   none: a guess would put one patient's message under another's key.
 */
import type { Queryable } from './db.ts';
import { blindIndexOf } from './blind-index.ts';
import { readCurrent } from './resources.ts';

/** One patient identifier as a message carries it, with what the mappers could have stored it as. */
export interface MessagePatientIdentifier {
  value: string;
  /** Identifier.system values the mappers could have made of its authority (exact strings). */
  systems: readonly string[];
  /** Names of its assigning authority (namespace, universal id) that a stored identifier's assigner.display may hold. */
  authorities: readonly string[];
}

/** The patients a message names: its own (the first PID, the recordTarget, the instance's patient), and others. */
export interface MessagePatients {
  own: MessagePatientIdentifier[];
  /** Other patients the message names (later PID segments, MRG-1 prior identifiers): an erasure of them reaches it too. */
  others: MessagePatientIdentifier[];
}

/** A stored message's bytes and what the inbox row says of them. */
export interface MessageBytes {
  protocol: string;
  raw: Buffer;
  /** The charset the intake decoded it with (null when it was refused before). */
  charset: string | null;
  /** The row's sender column (MSH-3|MSH-4, a C-CDA sender key, a DICOM calling AE title). */
  sender: string;
  /** The row's origin label (listener, peer, bound source). */
  source: string;
}

/**
 * Reads the patient identifiers out of a stored message, by its protocol. Undefined when the message cannot be read
 * at all (not parseable in its protocol, an unknown protocol): it then cannot be attributed to anyone. Never throws
 * and never logs what it reads.
 */
export interface MessagePatientReader {
  read(message: MessageBytes): MessagePatients | undefined;
}

interface StoredIdentifier {
  system?: unknown;
  value?: unknown;
  assigner?: { display?: unknown } | null;
}

/** The identifiers of a Patient resource, as (system, value, assigner display). */
export function patientIdentifiers(content: Record<string, unknown>): Array<{ system: string | undefined; value: string; assigner: string | undefined }> {
  if (!Array.isArray(content.identifier)) return [];
  const found: Array<{ system: string | undefined; value: string; assigner: string | undefined }> = [];
  for (const each of content.identifier as Array<StoredIdentifier | null>) {
    if (each === null || typeof each !== 'object' || typeof each.value !== 'string' || each.value === '') continue;
    const display = each.assigner?.display;
    found.push({ system: typeof each.system === 'string' ? each.system : undefined, value: each.value, assigner: typeof display === 'string' ? display : undefined });
  }
  return found;
}

/** Whether one of `identifiers` names the patient whose stored identifiers are `stored` (the rule above). */
export function namesPatient(identifiers: readonly MessagePatientIdentifier[], stored: ReturnType<typeof patientIdentifiers>): boolean {
  for (const identifier of identifiers) {
    for (const candidate of stored) {
      if (candidate.value !== identifier.value) continue;
      if (candidate.system !== undefined && identifier.systems.includes(candidate.system)) return true;
      if (candidate.assigner !== undefined && identifier.authorities.includes(candidate.assigner)) return true;
    }
  }
  return false;
}

/** Current Patients looked at per lookup at most: more candidates for a few identifier values is no one patient. */
const MAX_CANDIDATES = 20;

/**
 * The one current Patient (`Patient/<id>`, not deleted or erased) that `identifiers` name, found through the search
 * index and confirmed on the opened resource; undefined when none does, or more than one does.
 */
export async function knownPatientOf(db: Queryable, identifiers: readonly MessagePatientIdentifier[]): Promise<string | undefined> {
  const attributable = identifiers.filter((identifier) => identifier.systems.length > 0 || identifier.authorities.length > 0);
  if (attributable.length === 0) return undefined;
  const blind = await blindIndexOf(db);
  const hashes = [...new Set(attributable.map((identifier) => blind.codeHash('identifier', identifier.value)))];
  const candidates = await db.query<{ id: string }>(
    `SELECT DISTINCT t.id FROM fhir_search_token t JOIN fhir_current c ON c.resource_type = t.resource_type AND c.id = t.id
      WHERE t.resource_type = 'Patient' AND t.param = 'identifier' AND t.code_hash = ANY($1::bigint[]) AND NOT c.deleted
      ORDER BY t.id LIMIT ${MAX_CANDIDATES + 1}`,
    [hashes],
  );
  if (candidates.rows.length > MAX_CANDIDATES) return undefined;
  const named: string[] = [];
  for (const { id } of candidates.rows) {
    const patient = await readCurrent(db, 'Patient', id);
    if (patient === undefined || patient.deleted || patient.erased) continue;
    if (namesPatient(attributable, patientIdentifiers(patient.content))) named.push(`Patient/${id}`);
  }
  return named.length === 1 ? named[0] : undefined;
}

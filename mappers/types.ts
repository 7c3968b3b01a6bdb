/**
 * The contract between the mappers and the store: a mapper turns one parsed message into resource drafts, and the
 * store merges each draft into what it holds (mergeDraft) under its own transaction.
 */

import type { FieldSources } from './hl7v2/field-sources.ts';
import type { MappingIssue } from './issues.ts';
import type { ZSegmentRules } from './hl7v2/z-segment-rules.ts';

/**
 * One resource as a message describes it, with HL7 update semantics per top-level element:
 * - absent (undefined): the message did not send it; keep what the stored resource has;
 * - null: the message sent the HL7 explicit null `""`; remove the element;
 * - an element merge operation (`{ "$merge": ... }`, mappers/merge.ts): combine with the stored element by that
 *   element's rule, for elements that hold history (Encounter.location) or are fed by separate fields;
 * - any other value: replace the element.
 * `resourceType` and `id` are always present; the id is deterministic (mappers/ids.ts) so that the same patient or
 * visit maps to the same resource across messages and retries.
 */
export interface ResourceDraft {
  resourceType: string;
  id: string;
  [element: string]: unknown;
}

/**
 * A patient merge (ADT A40 and kin): every reference to Patient `sourceId` is re-pointed to `targetId`, the source is
 * marked inactive and linked `replaced-by` the target, and the target `replaces` the source. Applied by the ingest
 * job inside the message's transaction, after the drafts.
 */
export interface PatientMerge {
  sourceId: string;
  targetId: string;
}

export interface MappingResult {
  /** In dependency order: a draft only references drafts before it (Patient before the Encounter that points at it). */
  drafts: ResourceDraft[];
  /** Patient merges the message asks for, in message order. Absent or empty for most messages. */
  merges?: PatientMerge[];
  /**
   * When the event the message reports happened (EVN-2 recorded date/time, else MSH-7), as a FHIR instant; used to
   * keep an older message from overwriting what a newer one wrote. Absent when the message gives no time.
   */
  eventTime?: string;
  /** What could not be mapped as sent, field by field (mappers/issues.ts). Absent when everything mapped. */
  issues?: MappingIssue[];
  /** The FHIR document the drafts make (a C-CDA document), stored after them as a document Bundle. Absent for messages. */
  document?: DocumentPlan;
}

/**
 * A FHIR document to store as a Bundle once its resources are written (workers/document-bundle.ts): its entries are
 * the versions stored, so they are known only then.
 */
export interface DocumentPlan {
  /** The document's resources as `Type/id`, the Composition first, in the order the document gives them. */
  entries: string[];
  /** The FHIR base URL the entries' fullUrls are made from (`http://host:port/fhir`, no trailing slash). */
  fullUrlBase: string;
}

export interface Hl7MappingOptions {
  /**
   * IANA time zone applied to HL7 times sent without a UTC offset, because FHIR requires an offset on every time.
   * Offsets are computed per instant, so daylight saving time is honoured. Default 'Asia/Seoul'.
   */
  timeZone: string;
  /**
   * Assigning authority namespace (CX-4.1 / HD-1) -> identifier system URI. Authorities not listed here and without
   * an ISO OID get `urn:anchorline:authority:<namespace>`. Default {} (none).
   */
  identifierSystems: Record<string, string>;
  /**
   * Base URI for code systems that are local to the sender (user-defined HL7 tables, CE-3 names we do not know);
   * a coding system named N becomes `<base>/<N>`. Default 'urn:anchorline:local'.
   */
  localCodeSystemBase: string;
  /**
   * CE-3/CWE-3 coding system name -> code system URI, consulted before the names anchorline knows (LN, SCT, I10, ...)
   * and before `localCodeSystemBase`: a sender's own name for a published system (e.g. 'KCD7') maps to its URI.
   * Default {} (none).
   */
  codeSystems?: Record<string, string>;
  /**
   * Which HL7 fields feed the FHIR elements whose source a sender may change (mappers/hl7v2/field-sources.ts:
   * Patient.key, Patient.identifier, Encounter.identifier, ...). Mapping configs give it resolved, every element
   * present; an element left out reads its default source. Default: every element's default (PID-3 for the patient,
   * PV1-19 for the visit, ...).
   */
  fieldSources?: Partial<FieldSources>;
  /**
   * HL7 table name (HL70001, HL70004, ...) -> value as sent -> the value the mapper reads instead, for senders that
   * use their own codes in fields the mappers interpret (PID-8 '1' for M). Only the tables the mappers read
   * (mappers/hl7v2/value-maps.ts); values not listed are read as sent, and the sender's own coding in a
   * CodeableConcept keeps the code as sent. Default {} (none).
   */
  valueMaps?: Record<string, Record<string, string>>;
  /**
   * Z segment name (ZPI, ZV1) -> the rules that map its fields (mappers/hl7v2/z-segment-rules.ts: a field or component,
   * the Patient or Encounter extension or identifier, or the Observation it feeds, and the type it is read as), for
   * the segments a site defines for itself. Mapping configs give it resolved (each rule's type filled in). Default
   * {} (Z segments stay in the raw message, unmapped).
   */
  zSegments?: ZSegmentRules;
  /**
   * The assigning authority namespace of identifiers sent without one when MSH-4 and MSH-3 are empty too (mapping
   * config `defaultAuthority`). Default: none.
   */
  defaultAuthority?: string;
  /**
   * The source the message's credential or connection is bound to (set by the ingest job from the inbox row), the
   * last authority identifiers without one can take. Not part of a config.
   */
  boundSource?: string;
  /**
   * Lowercase hex SHA-256 of the message's bytes as received (set by the ingest job from the inbox row): the
   * Provenance names the exact message it records. Not part of a config.
   */
  rawSha256?: string;
  /**
   * Issue codes (mappers/issues.ts) that fail a message of this source instead of being recorded (mapping config
   * `fatalIssues`). Default: none.
   */
  fatalIssues?: readonly string[];
}

export const defaultHl7MappingOptions: Hl7MappingOptions = Object.freeze({
  timeZone: 'Asia/Seoul',
  identifierSystems: Object.freeze({}) as Record<string, string>,
  localCodeSystemBase: 'urn:anchorline:local',
  codeSystems: Object.freeze({}) as Record<string, string>,
  valueMaps: Object.freeze({}) as Record<string, Record<string, string>>,
});

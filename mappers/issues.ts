/**
 * Mapping issues: what a mapper could not map as sent, recorded with the message instead of losing it. A field that
 * cannot be read as it stands costs that field (or, failing that, that one resource), never the rest of the message;
 * the issue says where (`PID-8`, `OBX[3]-2`), what (a stable code) and what was sent, so integration staff can find
 * what did not map and why, field by field.
 *
 * Only what makes a record unsafe still fails a message: no way at all to identify the patient, or a structure that
 * cannot be parsed. A source's mapping config may make chosen issue codes fatal (`fatalIssues`), for senders that
 * want strictness.
 *
 * The value as sent is patient data: it is stored with the message (where the raw message already is) and shown to
 * admins, never logged.
 */
import { isAnchorlineError, type AnchorlineError } from '../errors/index.ts';

export type MappingIssueSeverity = 'error' | 'warning' | 'information';

/**
 * The issue codes, each with what it means and what the mapper did instead. Stable: configs name them in
 * `fatalIssues`, metrics count by them, and senders see them in ERR segments.
 */
export const MAPPING_ISSUE_CODES = {
  ANCHORLINE_ISSUE_INVALID_VALUE: 'A field value could not be interpreted (a date that is not a date, a code outside its table); the element was left out, or set to its unknown value with the value as sent kept',
  ANCHORLINE_ISSUE_MISSING_FIELD: 'A field the element needs is empty; the element was left out',
  ANCHORLINE_ISSUE_RESOURCE_NOT_MAPPED: 'A resource the message describes could not be built (its identifying fields are missing or unreadable); the rest of the message was mapped',
  ANCHORLINE_ISSUE_INVALID_RESOURCE: 'A mapped resource was not valid FHIR R4 and was not stored; the rest of the message was',
  ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE: 'A coded value is not in its HL7 table; the sender\'s code was kept as a coding in the sender\'s code system and the FHIR element took the value FHIR gives unknown codes',
  ANCHORLINE_ISSUE_AUTHORITY_FALLBACK: 'An identifier had no assigning authority (CX-4, or a DICOM Issuer of Patient ID sent by no AE title); the authority was taken from MSH-4, MSH-3, the source\'s configured default or the bound source',
  ANCHORLINE_ISSUE_IDENTIFIER_FALLBACK: 'The patient identifier list (PID-3) was empty; the patient was identified by PID-2 or PID-4 instead',
  ANCHORLINE_ISSUE_PATIENT_UNIDENTIFIED: 'The PID carried no identifier at all (PID-3, PID-2 and PID-4 empty), or the message had no PID, or a DICOM instance had an empty Patient ID (0010,0020); the patient was kept as a patient of that message (or of that study) alone, never matched to another',
  ANCHORLINE_ISSUE_ID_REUSED_ACROSS_PATIENTS: 'An id the sender gave a resource (an entry id, an order or visit number) names a resource of another patient; this message\'s resource was kept apart under an id of its own, and the other patient\'s record was left as it was',
  ANCHORLINE_ISSUE_DUPLICATE_KEY: 'Two segments named the same resource (the same set id or order number); the later one was kept apart under its position',
  ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED: 'A segment that carries data has no mapping for this message type; it is kept in the raw message',
  ANCHORLINE_ISSUE_REPEATED_VALUE: 'A one-value field was sent with several values of one type (OBX-5 answering "select all that apply"); each value became a component of the resource',
  ANCHORLINE_ISSUE_TEXT_CONTINUED: 'A text result was sent one line per OBX, each repeating the set id, code and sub-id; the lines became one Observation\'s value',
  ANCHORLINE_ISSUE_LINE_BREAK_IN_SEGMENT: 'A segment was sent across several lines (a line break inside a field, not escaped as \\.br\\); the break was kept as part of the value',
  ANCHORLINE_ISSUE_CHARSET_FALLBACK: 'MSH-18 named no character set, or ASCII, while the bytes were UTF-8; the message was read as UTF-8',
  ANCHORLINE_ISSUE_UNKNOWN_MESSAGE_TYPE: 'The message type is not one the mapping table lists; the segments it carries were mapped by their own meaning',
  // C-CDA documents (mappers/cda/mapping-issues.ts): what a document's conversion leaves out, located by XPath.
  ANCHORLINE_ISSUE_SECTION_NOT_MAPPED: 'A document section (or a body without sections) could not be converted, or is of a kind nothing here converts; its narrative is kept in the Composition and the document itself is stored whole',
  ANCHORLINE_ISSUE_ENTRY_NOT_MAPPED: 'Some entries of a document section were not converted; the rest of the section was, and the document itself is stored whole',
  ANCHORLINE_ISSUE_VALUE_NOT_MAPPED: 'A value of a type the conversion has no FHIR element for (an observation value of type ED) was left out of its resource',
} as const satisfies Record<string, string>;

export type MappingIssueCode = keyof typeof MAPPING_ISSUE_CODES;

export interface MappingIssue {
  severity: MappingIssueSeverity;
  code: MappingIssueCode;
  /** Where, in the message's own terms: `PID-8`, `OBX[3]-2` (the third OBX), `PV1`. */
  location: string;
  /** What happened, without patient data (the value is in `value`). */
  detail: string;
  /** The value as sent, when there is one (components joined by `^`, subcomponents by `&`). */
  value?: string;
}

/** The issue of a message whose MSH-18 was read past (formats/hl7v2/charset.ts: declaredCharsetIgnored). */
export const CHARSET_FALLBACK_ISSUE: Readonly<MappingIssue> = Object.freeze({
  severity: 'warning',
  code: 'ANCHORLINE_ISSUE_CHARSET_FALLBACK',
  location: 'MSH-18',
  detail: 'MSH-18 names no character set this engine reads, or ASCII, and the bytes are UTF-8: read as UTF-8',
});

/** Codes of errors a mapper raises for one field's content; any other error is not the field's to absorb. */
const FIELD_ERROR_CODES: ReadonlyMap<string, MappingIssueCode> = new Map([
  ['ANCHORLINE_ERR_MAPPING_INVALID_VALUE', 'ANCHORLINE_ISSUE_INVALID_VALUE'],
  ['ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'ANCHORLINE_ISSUE_MISSING_FIELD'],
]);

/** The issue code a field-level mapping error becomes; undefined for errors that are not about one field. */
export function issueCodeOf(error: unknown): MappingIssueCode | undefined {
  return isAnchorlineError(error) ? FIELD_ERROR_CODES.get(error.code) : undefined;
}

/** The issues of one message, in the order they were found; the same issue at the same place is recorded once. */
export class MappingIssues {
  readonly list: MappingIssue[] = [];
  readonly #seen = new Set<string>();

  add(issue: MappingIssue): void {
    if (this.#rewrite !== undefined) issue = { ...issue, location: this.#rewrite(issue.location) };
    const key = `${issue.code}\u0000${issue.location}\u0000${issue.value ?? ''}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.list.push(issue);
  }

  #rewrite: ((location: string) => string) | undefined;

  /**
   * Runs `map` with the locations of the issues it records rewritten: a mapper that knows which of several segments
   * it is reading (the third OBX) makes `OBX-5` into `OBX[3]-5`, so two OBX with the same problem are two issues.
   */
  within<T>(rewrite: (location: string) => string, map: () => T): T {
    const previous = this.#rewrite;
    this.#rewrite = previous === undefined ? rewrite : (location) => rewrite(previous(location));
    try {
      return map();
    } finally {
      this.#rewrite = previous;
    }
  }

  /** Records a field-level mapping error as an issue. */
  addError(error: AnchorlineError, code: MappingIssueCode, value?: string, severity: MappingIssueSeverity = 'warning'): void {
    this.add({
      severity,
      code,
      location: error.location ?? '',
      detail: error.detail ?? error.spec.title,
      ...(value === undefined || value === '' ? {} : { value }),
    });
  }
}

/**
 * The issues of the message being mapped. Mapping is synchronous from start to end, so the collector can be a
 * dynamic scope (set by withIssues, read by the element helpers) rather than a parameter threaded through every
 * datatype conversion: the field helpers that absorb an error are called from a few hundred places.
 */
let active: MappingIssues | undefined;

/** Runs `map` with `issues` as the collector of field-level issues. */
export function withIssues<T>(issues: MappingIssues, map: () => T): T {
  const previous = active;
  active = issues;
  try {
    return map();
  } finally {
    active = previous;
  }
}

/** The collector of the message being mapped; undefined outside withIssues (strict callers: errors propagate). */
export function currentIssues(): MappingIssues | undefined {
  return active;
}

/**
 * Runs one field's conversion; a field-level error becomes an issue (with the value as sent) and the element is left
 * out (undefined). Outside withIssues, or for any other error, the error propagates.
 */
export function tolerate<T>(convert: () => T, valueAsSent: () => string | undefined): T | undefined {
  try {
    return convert();
  } catch (error) {
    const code = issueCodeOf(error);
    if (active === undefined || code === undefined) throw error;
    active.addError(error as AnchorlineError, code, valueAsSent());
    return undefined;
  }
}

/**
 * `fallback` in place of a value that `error` refuses (an unknown status read as `unknown`, a value kept as text),
 * with the error recorded as an issue of `code` and the value as sent. Outside withIssues, the error itself: strict
 * callers get what they always got.
 */
export function degrade<T>(error: AnchorlineError, code: MappingIssueCode, fallback: T, sent?: string): T {
  if (active === undefined) throw error;
  active.addError(error, code, sent);
  return fallback;
}

/** Adds an issue to the message being mapped; ignored outside withIssues. */
export function reportIssue(issue: MappingIssue): void {
  active?.add(issue);
}

/**
 * Builds one resource per item (an order of an order message, an administration, a segment); an item whose resource
 * cannot be built for a field-level reason (its key fields missing or unreadable) costs that resource, as an
 * `ANCHORLINE_ISSUE_RESOURCE_NOT_MAPPED` issue at `location(item, error)` (default: where the error says), and the
 * other items are still built. Outside withIssues, the first such error propagates, as every field-level error does.
 */
export function buildEach<T, R>(
  items: readonly T[],
  build: (item: T, index: number) => R | undefined,
  location?: (item: T, failure: AnchorlineError) => string,
): R[] {
  const built: R[] = [];
  items.forEach((item, index) => {
    try {
      const result = build(item, index);
      if (result !== undefined) built.push(result);
    } catch (error) {
      const code = issueCodeOf(error);
      if (active === undefined || code === undefined) throw error;
      const failure = error as AnchorlineError;
      active.add({
        severity: 'warning',
        code: 'ANCHORLINE_ISSUE_RESOURCE_NOT_MAPPED',
        location: location?.(item, failure) ?? failure.location ?? '',
        detail: failure.detail ?? failure.spec.title,
      });
    }
  });
  return built;
}

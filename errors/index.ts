/**
 * The one catalogue of anchorline errors.
 *
 * Every failure that crosses a boundary (an ACK, an HTTP response, a job outcome, a log line) carries one of these
 * codes. The catalogue maps each code once to everything a caller needs: the HTTP status, how an HL7 ACK reports it
 * (reject -> AR/CR, error -> AE/CE), the HL7 table 0357 condition code for the ERR segment, the FHIR
 * OperationOutcome issue type, and whether trying again can help. Permanent failures are never retried.
 */

/** How an HL7 acknowledgment reports the failure: `reject` -> AR (original) / CR (enhanced), `error` -> AE / CE. */
export type AckClass = 'reject' | 'error';

export interface ErrorSpec {
  readonly httpStatus: number;
  readonly ackClass: AckClass;
  /** HL7 v2 table 0357 message error condition code, used in ERR-3. */
  readonly hl7Condition: string;
  /** FHIR R4 IssueType (http://hl7.org/fhir/issue-type). */
  readonly fhirIssue: string;
  /** True when the same input may succeed later (a resource was unavailable); false for permanent failures. */
  readonly retryable: boolean;
  readonly title: string;
}

export const ERROR_CATALOGUE = {
  ANCHORLINE_ERR_FRAME_TOO_LARGE: spec(413, 'reject', '207', 'too-long', false, 'Message exceeds the configured maximum size'),
  ANCHORLINE_ERR_FRAME_MALFORMED: spec(400, 'reject', '100', 'structure', false, 'MLLP frame is malformed'),
  ANCHORLINE_ERR_FRAME_TIMEOUT: spec(408, 'error', '207', 'timeout', true, 'MLLP frame did not end within the frame time limit; the connection was closed'),
  ANCHORLINE_ERR_HL7_NO_MSH: spec(400, 'reject', '100', 'structure', false, 'Message does not start with an MSH segment'),
  ANCHORLINE_ERR_HL7_BAD_DELIMITERS: spec(400, 'reject', '100', 'structure', false, 'MSH-1/MSH-2 delimiters are invalid'),
  // No longer raised (a message without MSH-10 is keyed by its bytes); kept for the rows refused with it before.
  ANCHORLINE_ERR_HL7_MISSING_CONTROL_ID: spec(400, 'reject', '101', 'required', false, 'MSH-10 message control id is missing'),
  ANCHORLINE_ERR_HL7_MISSING_MESSAGE_TYPE: spec(400, 'reject', '101', 'required', false, 'MSH-9 message type is missing'),
  ANCHORLINE_ERR_HL7_UNSUPPORTED_MESSAGE_TYPE: spec(422, 'reject', '200', 'not-supported', false, 'Message type is not supported'),
  ANCHORLINE_ERR_HL7_NOT_DATA_MESSAGE: spec(422, 'reject', '200', 'not-supported', false, 'Queries and acknowledgments are not accepted as data'),
  ANCHORLINE_ERR_HL7_MALFORMED: spec(400, 'reject', '100', 'structure', false, 'Message structure is invalid'),
  ANCHORLINE_ERR_HL7_TOO_COMPLEX: spec(400, 'reject', '207', 'too-costly', false, 'Message has more segments, fields, repetitions, components, subcomponents or parsed values than the configured limits (hl7v2.*)'),
  ANCHORLINE_ERR_CHARSET_UNSUPPORTED: spec(400, 'reject', '102', 'not-supported', false, 'MSH-18 character set is not supported'),
  ANCHORLINE_ERR_CHARSET_MISMATCH: spec(400, 'reject', '102', 'invalid', false, 'Message bytes are not valid in the declared character set'),
  ANCHORLINE_ERR_DUPLICATE_CONTROL_ID: spec(409, 'reject', '205', 'duplicate', false, 'Control id already used by a different message from this sender'),
  ANCHORLINE_ERR_STORE_UNAVAILABLE: spec(503, 'error', '207', 'transient', true, 'Message store is unavailable; resend later'),
  ANCHORLINE_ERR_STORE_REFUSED_MESSAGE: spec(422, 'error', '207', 'value', false, 'The message store refused the row recording this message (a value it cannot hold); the message was not stored'),
  ANCHORLINE_ERR_ACK_TIMEOUT: spec(504, 'error', '207', 'timeout', true, 'Message is stored but processing did not finish in time; resend to get the final acknowledgment'),
  ANCHORLINE_ERR_SHUTTING_DOWN: spec(503, 'error', '207', 'transient', true, 'Engine is shutting down; resend later'),
  ANCHORLINE_ERR_MAPPING_FAILED: spec(422, 'error', '207', 'processing', false, 'Message could not be mapped to FHIR'),
  ANCHORLINE_ERR_MAPPING_MISSING_FIELD: spec(422, 'error', '101', 'required', false, 'A field the mapping requires is missing'),
  ANCHORLINE_ERR_MAPPING_INVALID_FHIR: spec(422, 'error', '207', 'invariant', false, 'The mapped resource is not valid FHIR R4; it was not stored'),
  ANCHORLINE_ERR_MAPPING_FATAL_ISSUE: spec(422, 'error', '207', 'business-rule', false, "A mapping issue the source's mapping config makes fatal"),
  ANCHORLINE_ERR_STORE_PATIENT_CHANGED: spec(409, 'error', '207', 'conflict', false, "A new version would move a resource to another patient's record; only a patient merge may"),
  ANCHORLINE_ERR_MAPPING_INVALID_VALUE: spec(422, 'error', '102', 'value', false, 'A field value could not be interpreted'),
  ANCHORLINE_ERR_UNAUTHORIZED: spec(401, 'reject', '207', 'login', false, 'Missing or invalid API key or access token'),
  ANCHORLINE_ERR_FORBIDDEN: spec(403, 'reject', '207', 'forbidden', false, 'Credential lacks the required scope'),
  ANCHORLINE_ERR_BREAK_GLASS_REASON: spec(400, 'reject', '207', 'required', false, 'Breaking the glass needs a reason'),
  ANCHORLINE_ERR_BREAK_GLASS_FORBIDDEN: spec(403, 'reject', '207', 'forbidden', false, 'No role of this user may break the glass'),
  ANCHORLINE_ERR_CONSENT_INVALID: spec(422, 'reject', '207', 'business-rule', false, 'The Consent is not valid FHIR R4, or not one the engine can enforce; it was not stored'),
  ANCHORLINE_ERR_CONSENT_WRITE_FORBIDDEN: spec(403, 'reject', '207', 'forbidden', false, 'This person may not write consents for this patient'),
  ANCHORLINE_ERR_VERSION_CONFLICT: spec(412, 'reject', '207', 'conflict', false, 'The resource is not at the version the request expects (If-Match), or exists already'),
  ANCHORLINE_ERR_SOURCE_NOT_AUTHORIZED: spec(403, 'reject', '207', 'security', false, 'Sender is claimed by another source than the connection or credential'),
  ANCHORLINE_ERR_OAUTH_INVALID_CLIENT: spec(401, 'reject', '207', 'login', false, 'OAuth client authentication failed'),
  ANCHORLINE_ERR_OAUTH_INVALID_GRANT: spec(400, 'reject', '207', 'invalid', false, 'OAuth grant is invalid'),
  ANCHORLINE_ERR_OAUTH_INVALID_SCOPE: spec(400, 'reject', '207', 'invalid', false, 'Requested scope is invalid or not allowed for this client'),
  ANCHORLINE_ERR_OAUTH_UNSUPPORTED_GRANT_TYPE: spec(400, 'reject', '207', 'not-supported', false, 'OAuth grant type is not supported'),
  ANCHORLINE_ERR_NOT_FOUND: spec(404, 'reject', '207', 'not-found', false, 'Resource not found'),
  ANCHORLINE_ERR_GONE: spec(410, 'reject', '207', 'deleted', false, 'Resource was deleted'),
  ANCHORLINE_ERR_ERASED: spec(410, 'reject', '207', 'deleted', false, "The record was erased: its patient's key was destroyed (crypto-shredding); its proof's leaf stays in the log, its content no longer exists"),
  ANCHORLINE_ERR_KEY_UNAVAILABLE: spec(500, 'error', '207', 'security', false, 'A sealed record could not be opened: no key for it, or it does not open under its key (encryption.masterKeyFile)'),
  ANCHORLINE_ERR_INVALID_REQUEST: spec(400, 'reject', '207', 'invalid', false, 'Request is invalid'),
  ANCHORLINE_ERR_UNSUPPORTED_MEDIA_TYPE: spec(415, 'reject', '207', 'not-supported', false, 'Content type is not supported'),
  ANCHORLINE_ERR_CONFIG_INVALID: spec(500, 'error', '207', 'invariant', false, 'Configuration is invalid'),
  ANCHORLINE_ERR_QUEUE_UNAVAILABLE: spec(503, 'error', '207', 'transient', true, 'Queue backend is unavailable'),
  ANCHORLINE_ERR_REDIS_EVICTION_POLICY: spec(500, 'error', '207', 'invariant', false, 'Redis maxmemory-policy must be noeviction'),
  ANCHORLINE_ERR_PROOF_PENDING: spec(409, 'error', '207', 'conflict', true, 'Version is not anchored in a closed batch yet'),
  ANCHORLINE_ERR_DICOM_MALFORMED: spec(400, 'reject', '100', 'structure', false, 'DICOM data is not a readable Part 10 instance'),
  ANCHORLINE_ERR_DICOM_TRUNCATED: spec(400, 'reject', '100', 'incomplete', false, 'DICOM data ends inside an element, or an element length runs past the end'),
  ANCHORLINE_ERR_DICOM_BAD_UID: spec(400, 'reject', '102', 'value', false, 'A DICOM UID is not digits and dots of at most 64 characters'),
  ANCHORLINE_ERR_DICOM_MISSING_ATTRIBUTE: spec(400, 'reject', '101', 'required', false, 'A DICOM attribute the engine requires is missing'),
  ANCHORLINE_ERR_DICOM_TOO_LARGE: spec(413, 'reject', '207', 'too-long', false, 'DICOM instance, or its inflated data set, exceeds the configured maximum size'),
  ANCHORLINE_ERR_DICOM_UNSUPPORTED: spec(422, 'reject', '200', 'not-supported', false, 'DICOM transfer syntax or character set is not supported'),
  ANCHORLINE_ERR_DICOM_INFLATE_BUDGET: spec(503, 'error', '207', 'too-costly', true, 'The deflated instances of one STOW-RS request together inflate past the request limit; send this instance in another request'),
  ANCHORLINE_ERR_BLOB_CORRUPT: spec(500, 'error', '207', 'exception', false, 'Stored blob does not hash to its name'),
  ANCHORLINE_ERR_CHAIN_UNAVAILABLE: spec(503, 'error', '207', 'transient', true, 'Chain node is unreachable or did not answer in time'),
  ANCHORLINE_ERR_CHAIN_SUBMITTER_NOT_ALLOWED: spec(503, 'error', '207', 'forbidden', true, 'Submitter address is not on the registry allow-list'),
  ANCHORLINE_ERR_CHAIN_MISCONFIGURED: spec(500, 'error', '207', 'invariant', true, 'Chain id or registry contract does not match the configuration'),
  ANCHORLINE_ERR_CHAIN_CONFLICT: spec(500, 'error', '207', 'conflict', false, 'Registry holds a different header hash for this batch, or a later batch'),
  ANCHORLINE_ERR_CHAIN_REVERTED: spec(500, 'error', '207', 'exception', true, 'Anchor transaction reverted'),
  ANCHORLINE_ERR_DICOM_STUDY_MISMATCH: spec(409, 'reject', '207', 'conflict', false, 'Instance belongs to another study than the one the request names'),
  ANCHORLINE_ERR_DICOM_ASSOCIATION_REJECTED: spec(403, 'reject', '207', 'forbidden', false, 'DICOM association rejected: called or calling AE title not accepted'),
  ANCHORLINE_ERR_DICOM_ASSOCIATION_LIMIT: spec(503, 'error', '207', 'transient', true, 'Too many DICOM associations at once; associate again later'),
  ANCHORLINE_ERR_DICOM_PROTOCOL: spec(400, 'reject', '207', 'structure', false, 'DICOM upper layer protocol violated; the association was aborted'),
  ANCHORLINE_ERR_MULTIPART_MALFORMED: spec(400, 'reject', '100', 'structure', false, 'multipart/related body is malformed'),
  ANCHORLINE_ERR_NOT_ACCEPTABLE: spec(406, 'reject', '207', 'not-supported', false, 'None of the media types the request accepts can be produced'),
  ANCHORLINE_ERR_CANONICAL_JSON: spec(422, 'error', '207', 'invalid', false, 'Value cannot be canonicalized as RFC 8785 JSON'),
  ANCHORLINE_ERR_CDA_TOO_LARGE: spec(413, 'reject', '207', 'too-long', false, 'C-CDA document exceeds the configured maximum size'),
  ANCHORLINE_ERR_CDA_DOCTYPE: spec(400, 'reject', '207', 'security', false, 'C-CDA document contains a DOCTYPE or other markup declaration, which is refused before parsing'),
  ANCHORLINE_ERR_CDA_TOO_DEEP: spec(400, 'reject', '207', 'too-costly', false, 'C-CDA document nests elements deeper than the configured maximum'),
  ANCHORLINE_ERR_CDA_MALFORMED: spec(400, 'reject', '100', 'structure', false, 'C-CDA document is not well-formed XML with a ClinicalDocument root'),
  ANCHORLINE_ERR_CDA_INVALID_HEADER: spec(422, 'reject', '101', 'required', false, 'C-CDA header lacks an element the engine requires (id, effectiveTime)'),
  ANCHORLINE_ERR_CDA_NO_PATIENT: spec(422, 'reject', '101', 'required', false, 'C-CDA document identifies no patient (no recordTarget, or only nullFlavor ids)'),
  ANCHORLINE_ERR_MESSAGE_POISON: spec(422, 'error', '207', 'exception', false, 'Processing this message crashed or stalled its worker repeatedly; it was moved to the dead letters'),
  ANCHORLINE_ERR_STORE_REFUSED_VALUE: spec(422, 'error', '207', 'value', false, 'The store refused a mapped value (invalid data or a violated constraint); the message was not stored as FHIR'),
  ANCHORLINE_ERR_QUERY_TIMEOUT: spec(503, 'error', '207', 'too-costly', true, 'The request\'s database query ran longer than the API allows (http.queryTimeoutMs); narrow it or try later'),
  ANCHORLINE_ERR_QUERY_CANCELLED: spec(499, 'error', '207', 'transient', true, 'The client went away before its answer was ready; its database query was cancelled'),
  ANCHORLINE_ERR_AUDIT_UNAVAILABLE: spec(503, 'error', '207', 'transient', true, 'The AuditEvent of this read could not be stored, so the records were not sent; try again later'),
  ANCHORLINE_ERR_RESEARCH_PROJECT_INVALID: spec(422, 'reject', '207', 'business-rule', false, 'The research project definition (ResearchStudy, Group or release settings) is not valid; nothing was stored'),
  ANCHORLINE_ERR_RESEARCH_K_ANONYMITY: spec(422, 'reject', '207', 'business-rule', false, 'The release would publish quasi-identifier groups smaller than k (or less diverse than l); nothing was released'),
  ANCHORLINE_ERR_INTERNAL: spec(500, 'error', '207', 'exception', true, 'Internal error'),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

function spec(httpStatus: number, ackClass: AckClass, hl7Condition: string, fhirIssue: string, retryable: boolean, title: string): ErrorSpec {
  return { httpStatus, ackClass, hl7Condition, fhirIssue, retryable, title };
}

/**
 * An error with a catalogue code. `detail` is shown to the caller and stored with the message, so it must never
 * contain patient data: name fields and ids, not their values.
 */
export class AnchorlineError extends Error {
  readonly code: ErrorCode;
  readonly detail: string | undefined;
  /** HL7 error location for ERR-2, e.g. `MSH-10` or `PID-3`. */
  readonly location: string | undefined;

  constructor(code: ErrorCode, detail?: string, options?: { location?: string; cause?: unknown }) {
    super(detail ? `${code}: ${detail}` : code, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AnchorlineError';
    this.code = code;
    this.detail = detail;
    this.location = options?.location;
  }

  get spec(): ErrorSpec {
    return ERROR_CATALOGUE[this.code];
  }

  get retryable(): boolean {
    return this.spec.retryable;
  }
}

export function isAnchorlineError(value: unknown): value is AnchorlineError {
  return value instanceof AnchorlineError;
}

/** Any thrown value as a catalogue error; unknown failures become ANCHORLINE_ERR_INTERNAL (retryable). */
export function toAnchorlineError(value: unknown): AnchorlineError {
  if (value instanceof AnchorlineError) return value;
  return new AnchorlineError('ANCHORLINE_ERR_INTERNAL', undefined, { cause: value });
}

/** The HL7 acknowledgment code for an error, in original (AA/AE/AR) or enhanced (CA/CE/CR) mode. */
export function ackCodeFor(code: ErrorCode, enhanced: boolean): 'AE' | 'AR' | 'CE' | 'CR' {
  const cls = ERROR_CATALOGUE[code].ackClass;
  if (enhanced) return cls === 'reject' ? 'CR' : 'CE';
  return cls === 'reject' ? 'AR' : 'AE';
}

/** A FHIR R4 OperationOutcome for an error. */
export function operationOutcome(error: AnchorlineError): Record<string, unknown> {
  const s = error.spec;
  return {
    resourceType: 'OperationOutcome',
    issue: [
      {
        severity: 'error',
        code: s.fhirIssue,
        details: {
          coding: [{ system: 'urn:anchorline:error', code: error.code, display: s.title }],
          text: error.detail ?? s.title,
        },
        ...(error.location ? { expression: [error.location] } : {}),
      },
    ],
  };
}

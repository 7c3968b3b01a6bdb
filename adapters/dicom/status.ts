/**
 * Catalogue errors as DICOM status codes: the C-STORE response status (PS3.4 B.2.3, PS3.7 C) and the STOW-RS
 * Failure Reason (0008,1197) (PS3.18 I.2.2), which use the same values.
 *
 * Codes the DICOM intake raises are listed; any other code is placed by what the catalogue says of it, so a new code
 * gets a sensible status without an edit here.
 */
import { ERROR_CATALOGUE, type ErrorCode } from '../../errors/index.ts';

export const DicomStatus = {
  Success: 0x0000,
  /** Refused: Out of Resources (A7xx): try again later, or the instance is larger than we take. */
  OutOfResources: 0xa700,
  /** Error: Data Set does not match SOP Class (A9xx): a required attribute missing or invalid. */
  DataSetDoesNotMatchSopClass: 0xa900,
  /** Error: Cannot understand (Cxxx). */
  CannotUnderstand: 0xc000,
  /** Referenced Transfer Syntax not supported (C122, within Cxxx). */
  TransferSyntaxNotSupported: 0xc122,
  /** Processing failure (0110): a fault of ours, not of the instance. */
  ProcessingFailure: 0x0110,
  /** Refused: SOP Class not supported (0122). */
  SopClassNotSupported: 0x0122,
  /**
   * Duplicate SOP Instance (0111, PS3.7 C.4): the SOP Instance UID was stored before with other content. PS3.4 gives
   * C-STORE no code of its own for this; the general one says what happened.
   */
  DuplicateSopInstance: 0x0111,
  /** Unrecognized operation (0211): a DIMSE service we do not provide. */
  UnrecognizedOperation: 0x0211,
} as const;

const BY_CODE: Partial<Record<ErrorCode, number>> = {
  ANCHORLINE_ERR_DICOM_MALFORMED: DicomStatus.CannotUnderstand,
  ANCHORLINE_ERR_DICOM_TRUNCATED: DicomStatus.CannotUnderstand,
  ANCHORLINE_ERR_DICOM_BAD_UID: DicomStatus.DataSetDoesNotMatchSopClass,
  ANCHORLINE_ERR_DICOM_MISSING_ATTRIBUTE: DicomStatus.DataSetDoesNotMatchSopClass,
  ANCHORLINE_ERR_DICOM_TOO_LARGE: DicomStatus.OutOfResources,
  ANCHORLINE_ERR_DICOM_UNSUPPORTED: DicomStatus.TransferSyntaxNotSupported,
  ANCHORLINE_ERR_DICOM_STUDY_MISMATCH: DicomStatus.DataSetDoesNotMatchSopClass,
  ANCHORLINE_ERR_DUPLICATE_CONTROL_ID: DicomStatus.DuplicateSopInstance,
  ANCHORLINE_ERR_UNSUPPORTED_MEDIA_TYPE: DicomStatus.CannotUnderstand,
  ANCHORLINE_ERR_MULTIPART_MALFORMED: DicomStatus.CannotUnderstand,
  ANCHORLINE_ERR_FRAME_TOO_LARGE: DicomStatus.OutOfResources,
  ANCHORLINE_ERR_INTERNAL: DicomStatus.ProcessingFailure,
};

/** The failure status for an error code. Never 0x0000. */
export function dicomStatusFor(code: ErrorCode): number {
  const known = BY_CODE[code];
  if (known !== undefined) return known;
  const spec = ERROR_CATALOGUE[code];
  // Retrying can help: "out of resources" is the refusal a sender reads as "later".
  if (spec.retryable) return DicomStatus.OutOfResources;
  switch (spec.fhirIssue) {
    case 'too-long':
      return DicomStatus.OutOfResources;
    case 'required':
    case 'value':
    case 'invariant':
      return DicomStatus.DataSetDoesNotMatchSopClass;
    case 'structure':
    case 'incomplete':
    case 'invalid':
      return DicomStatus.CannotUnderstand;
    case 'not-supported':
      return DicomStatus.SopClassNotSupported;
    default:
      return DicomStatus.ProcessingFailure;
  }
}

/**
 * The Error Comment (0000,0902) of a failure response: the catalogue code, then as much of the detail as fits the
 * 64 characters of LO, in the default repertoire (no control characters, no backslash).
 */
export function errorComment(code: ErrorCode, detail?: string): string {
  const text = detail ? `${code}: ${detail}` : code;
  return text.replace(/[^\x20-\x5b\x5d-\x7e]/g, '?').slice(0, 64).trimEnd();
}

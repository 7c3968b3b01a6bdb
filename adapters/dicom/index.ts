/**
 * DICOM inbound: the intake (header reading, blob, inbox) and the two network front doors that feed it, the DIMSE
 * listener and the STOW-RS body parser, with the mapping of catalogue errors to DICOM statuses. The instance grammar
 * (parsing, character sets, Part 10 files) is formats/dicom.
 */
export { DicomIntake, DICOM_PROTOCOL, type DicomAcceptResult, type DicomIntakeOptions, type DicomOrigin } from './intake.ts';
export { DicomScpServer, isStorageSopClass, STORAGE_TRANSFER_SYNTAXES, type DicomInstanceIntake, type DicomScpOptions } from './scp.ts';
export { MultipartParser, isValidBoundary, parseMediaType, type MediaType, type MultipartEvent } from './multipart.ts';
export { DicomStatus, dicomStatusFor, errorComment } from './status.ts';

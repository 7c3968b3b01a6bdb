/**
 * DICOM inbound: the intake (header reading, blob, inbox) and the two network front doors that feed it, the DIMSE
 * listener and the STOW-RS body parser, with the mapping of catalogue errors to DICOM statuses.
 */
export { DicomIntake, DICOM_PROTOCOL, type DicomAcceptResult, type DicomIntakeOptions, type DicomOrigin } from './intake.ts';
export { isValidUid, parseDicomInstance, type DicomParseOptions, type ParsedDicomInstance } from './parse.ts';
export type { DicomInstanceHeader } from './types.ts';
export { DicomScpServer, isStorageSopClass, STORAGE_TRANSFER_SYNTAXES, type DicomInstanceIntake, type DicomScpOptions } from './scp.ts';
export { MultipartParser, isValidBoundary, parseMediaType, type MediaType, type MultipartEvent } from './multipart.ts';
export { fileTransferSyntax, part10File, IMPLEMENTATION_CLASS_UID, type FileMetaInput } from './part10.ts';
export { DicomStatus, dicomStatusFor, errorComment } from './status.ts';

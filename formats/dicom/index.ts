/**
 * DICOM, the grammar: a Part 10 instance's bytes in, the header model the engine reads out (patient, study, series,
 * instance, with person names decoded by their Specific Character Set), and a Part 10 file built around a data set.
 * Pure, no I/O. The network front doors (DIMSE, STOW-RS) are adapters/dicom.
 */
export {
  DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
  EXPLICIT_VR_BIG_ENDIAN,
  EXPLICIT_VR_LITTLE_ENDIAN,
  IMPLICIT_VR_LITTLE_ENDIAN,
  DEFAULT_MAX_INFLATE_RATIO,
  HEADER_WINDOW_BYTES,
  isValidUid,
  uidFromDigest,
  parseDicomInstance,
  type DicomParseOptions,
  type InflatedDataSet,
  type ParsedDicomInstance,
} from './parse.ts';
export { InflateBudget, inflateDataSet, readDicomInstance, type ReadDicomOptions } from './inflate.ts';
export { characterSetTerms, decodeDicomText, isKnownCharacterSet, type DecodedText } from './charset.ts';
export { asPart10File, fileTransferSyntax, part10File, IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, type FileMetaInput } from './part10.ts';
export type { DicomAnomaly, DicomInstanceHeader, DicomPersonName, PersonNameGroup, TextDecoding } from './types.ts';

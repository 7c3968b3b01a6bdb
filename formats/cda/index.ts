/**
 * C-CDA, the grammar's front: the reader that turns a document's bytes into text an XML parser may safely see
 * (charset from the XML declaration or the media type, size and nesting caps, no DOCTYPE or entity declarations).
 * Pure, no I/O. The conversion to FHIR is the mappers' (mappers/cda).
 */
export { DEFAULT_CDA_LIMITS, looksLikeClinicalDocument, readCdaHeaderText, readCdaText, type CdaLimits, type CdaText } from './guard.ts';

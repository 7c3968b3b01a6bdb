/**
 * The mappers' public surface: HL7 v2 messages, C-CDA documents and DICOM instance headers -> FHIR R4 resource
 * drafts, and how a draft is applied to a stored resource. Pure functions: no I/O, no clock, no randomness.
 */

export { deterministicId } from './ids.ts';
export { MERGE_OPERATION, isElementMergeOperation, mergeDraft } from './merge.ts';
export type { AddIdentifiersOperation, ClassChangeOperation, ElementMergeOperation, EncounterLocationEntry, EncounterLocationOperation, IfAbsentOperation, ImagingSeriesEntry, ImagingSeriesOperation, MembersOperation } from './merge.ts';
export { checkMappedResource, validateFhirResource, withoutInvalidElements, type MappedResourceCheck } from './fhir-validate.ts';
export { isSupportedMessageType, mapHl7Message, supportedMessageTypes } from './hl7v2/registry.ts';
export { DICOM_BLOB_EXTENSION_URL, DICOM_UID_SYSTEM, imagingStudyId, mapDicomInstance, type DicomMappingContext } from './dicom/index.ts';
export { cdaDocumentBundle, cdaIssuesOutcome, cdaMappingIssues, convertCdaDocument, documentBundle, documentBundleId, iiIdentifier, readCdaHeader, CDA_ISSUE_SYSTEM } from './cda/index.ts';
export type { CdaConversion, CdaConversionOptions, CdaDocumentFacts, CdaHeader, CdaIssue, CdaIssueCode } from './cda/index.ts';
export { DEFAULT_FIELD_SOURCES, FIELD_SOURCE_ELEMENTS, fieldSourcesConflict, resolveFieldSources } from './hl7v2/field-sources.ts';
export type { FieldSourceElement, FieldSourceSpec, FieldSources } from './hl7v2/field-sources.ts';
export { VALUE_MAP_TABLES } from './hl7v2/value-maps.ts';
export type { ValueMapTable } from './hl7v2/value-maps.ts';
export { Z_SEGMENT_NAME, Z_SEGMENT_TARGETS, Z_TYPES_WITH_SYSTEM, Z_VALUE_TYPES, parseZField } from './hl7v2/z-segment-rules.ts';
export type { ZObservationCode, ZSegmentRule, ZSegmentRules, ZSegmentTarget, ZSegmentTargetSpec, ZValueType } from './hl7v2/z-segment-rules.ts';
export { defaultHl7MappingOptions } from './types.ts';
export type { DocumentPlan, Hl7MappingOptions, MappingResult, PatientMerge, ResourceDraft } from './types.ts';
export { CHARSET_FALLBACK_ISSUE, MAPPING_ISSUE_CODES, type MappingIssue, type MappingIssueCode, type MappingIssueSeverity } from './issues.ts';

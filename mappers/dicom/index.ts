/** DICOM instance headers -> FHIR R4 drafts (ImagingStudy, Patient, Endpoint). Pure. */
export { DICOM_BLOB_EXTENSION_URL, DICOM_UID_SYSTEM, endpointId, imagingStudyId, mapDicomInstance, type DicomMappingContext } from './instance.ts';
export { DICOM_DCM, bodySiteCoding, lateralityCoding } from './codes.ts';

/** The HTTP API: FHIR REST, HL7 v2 over HTTP, admin. */
export { buildApi, type ApiOptions } from './server.ts';
export { capabilityStatement, parseSearch, FHIR_JSON } from './fhir.ts';
export { buildProofBundle } from './proofs.ts';
export { DICOM_JSON, type DicomWebOptions } from './dicomweb.ts';

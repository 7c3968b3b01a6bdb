/**
 * De-identification: FHIR resources under a project's configuration and secret (fhir.ts, config.ts), and DICOM
 * headers under PS3.15's Basic Application Level Confidentiality Profile (dicom.ts). Pure: no I/O.
 */
export { deidentifyResource, patientOf, pseudonymousReference, MIN_PROJECT_SECRET_BYTES, PSEUDONYM_IDENTIFIER_SYSTEM } from './fhir.ts';
export {
  DEFAULT_DEID_CONFIG,
  HIPAA_RESTRICTED_ZIP3,
  NATIONAL_IDENTIFIER_SYSTEMS,
  deidConfigSchema,
  deidRuleSchema,
  parseDeidConfig,
  DeidConfig,
  type DeidConfigInput,
  type DeidRule,
} from './config.ts';
export { dateOffsetDays, decryptValue, pseudonymousId, remappedUid } from './keys.ts';
export { containsResidentNumber, namesOf, scrubText } from './text.ts';
export { shiftDate } from './dates.ts';
export type { DeidApplied, DeidContext, DeidResult } from './types.ts';
export {
  deidentifyDicomDataset,
  deidentifyDicomPart10,
  readDicomDataset,
  writeDicomPart10,
  type DicomDataset,
  type DicomDeidOptions,
  type DicomDeidResult,
  type DicomElement,
} from './dicom.ts';
export { BASIC_PROFILE, type ProfileAction, type ProfileAttribute } from './dicom-profile.ts';

/**
 * Research releases, the pure part: de-identification of FHIR resources and DICOM instances under a project's
 * configuration and secret, and the release risk check (k-anonymity, l-diversity) on the de-identified records.
 * No I/O: the store, the workers and the API run projects, refreshes and exports on top of this.
 */
export * from './deid/index.ts';
export { kAnonymity, quasiIdentifierRows, type EquivalenceClass, type QuasiIdentifierRecord, type RiskReport } from './risk.ts';

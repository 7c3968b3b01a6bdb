/** C-CDA at the door: the pre-parse guard and the intake behind POST /ingest/cda. */
export { DEFAULT_CDA_LIMITS, looksLikeClinicalDocument, readCdaText, type CdaLimits, type CdaText } from './guard.ts';
export { CdaIntake, cdaSenderKey, cdaSenderRoot, type CdaIntakeOptions, type CdaIntakeResult, type CdaReceiveMeta } from './intake.ts';

/** C-CDA at the door: the intake behind POST /ingest/cda. The reader of the document itself is formats/cda. */
export { CdaIntake, type CdaIntakeOptions, type CdaIntakeResult, type CdaReceiveMeta } from './intake.ts';

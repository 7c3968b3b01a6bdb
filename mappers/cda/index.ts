/**
 * C-CDA documents -> FHIR R4: the conversion (pure), the FHIR document Bundle of a conversion, and its issues as an
 * OperationOutcome.
 */

export { convertCdaDocument, type CdaConversion, type CdaConversionOptions, type CdaIssue, type CdaIssueCode } from './convert.ts';
export { cdaDocumentBundle, cdaIssuesOutcome, CDA_ISSUE_SYSTEM } from './document.ts';
export type { CdaDocumentFacts, FhirResource } from './resources.ts';

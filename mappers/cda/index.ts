/**
 * C-CDA documents -> FHIR R4: the header the intake stores a document under, the conversion (pure), the FHIR
 * document Bundle of a conversion, and its issues as an OperationOutcome and as mapping issues.
 */

export { convertCdaDocument, type CdaConversion, type CdaConversionOptions, type CdaIssue, type CdaIssueCode } from './convert.ts';
export { cdaDocumentBundle, cdaIssuesOutcome, documentBundle, documentBundleId, CDA_ISSUE_SYSTEM } from './document.ts';
export { cdaMappingIssues } from './mapping-issues.ts';
export { readCdaHeader, type CdaHeader, type CdaReadOptions } from './read-header.ts';
export { iiIdentifier, type CdaDocumentFacts, type FhirResource } from './resources.ts';

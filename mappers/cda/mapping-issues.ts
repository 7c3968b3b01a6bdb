/**
 * A C-CDA conversion's issues as the mapping issues every inbound message records (mappers/issues.ts): stored with the
 * inbox message, shown by /admin/messages/{id}, counted in metrics and made fatal by a source's `fatalIssues`, as an
 * HL7 v2 message's are. The severity is the conversion's own; the location is the XPath of what was left out.
 */

import type { MappingIssue, MappingIssueCode } from '../issues.ts';

import type { CdaIssue, CdaIssueCode } from './issues.ts';

/** The mapping issue code of each conversion issue code; every conversion code needs one (typechecked). */
const MAPPING_CODES: Readonly<Record<CdaIssueCode, MappingIssueCode>> = {
  'section-not-supported': 'ANCHORLINE_ISSUE_SECTION_NOT_MAPPED',
  'section-failed': 'ANCHORLINE_ISSUE_SECTION_NOT_MAPPED',
  'body-not-structured': 'ANCHORLINE_ISSUE_SECTION_NOT_MAPPED',
  'entries-not-converted': 'ANCHORLINE_ISSUE_ENTRY_NOT_MAPPED',
  'value-not-converted': 'ANCHORLINE_ISSUE_VALUE_NOT_MAPPED',
  // A value that is not a CDA timestamp is a value that could not be read, as an HL7 v2 date that is not one.
  'time-not-converted': 'ANCHORLINE_ISSUE_INVALID_VALUE',
  // A second patient of the document is a resource the document describes that was not built.
  'recordtarget-not-converted': 'ANCHORLINE_ISSUE_RESOURCE_NOT_MAPPED',
  'repeated-entry-id': 'ANCHORLINE_ISSUE_DUPLICATE_KEY',
  // An observation's code read from its narrative: the code field was empty, and what it names was found elsewhere.
  'code-from-narrative': 'ANCHORLINE_ISSUE_MISSING_FIELD',
};

/** Where an issue without a place of its own is located: the document as a whole. */
const DOCUMENT_LOCATION = '/ClinicalDocument';

export function cdaMappingIssues(issues: readonly CdaIssue[]): MappingIssue[] {
  return issues.map((issue) => ({
    severity: issue.severity,
    code: MAPPING_CODES[issue.code],
    location: issue.location ?? DOCUMENT_LOCATION,
    // The conversion's words name sections and elements, never patient data; the conversion code keeps the detail.
    detail: `${issue.text} (${issue.code})`,
  }));
}

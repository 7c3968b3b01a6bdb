/** The issues a C-CDA conversion reports: what was not converted, or converted with loss. */

/** What was not converted, or converted with loss. Reported with the intake's answer; never fails a document. */
export interface CdaIssue {
  severity: 'warning' | 'information';
  /** Stable code (system urn:anchorline:cda-issue). */
  code: CdaIssueCode;
  /** What was left out, in words, naming sections and elements but never patient data. */
  text: string;
  /** Where in the document, as an XPath. */
  location?: string;
}

export type CdaIssueCode =
  | 'section-not-supported'
  | 'entries-not-converted'
  | 'section-failed'
  | 'value-not-converted'
  | 'time-not-converted'
  | 'body-not-structured'
  | 'recordtarget-not-converted'
  | 'repeated-entry-id'
  | 'code-from-narrative';

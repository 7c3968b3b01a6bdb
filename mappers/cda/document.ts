/**
 * A C-CDA document as a FHIR document Bundle, and its issues as an OperationOutcome.
 *
 * The Bundle is what a FHIR client expects of a document (R4 Bundle type 'document', documents.html): the Composition
 * first, then every resource the document made, each entry with a fullUrl; identifier (the document id) and
 * timestamp set (bdl-9, bdl-10, bdl-11). The ingest worker stores one per document (workers/document-bundle.ts),
 * whose entries are the resource versions it stored, as /fhir serves them: a reader can compare each with its own
 * version, and its proof covers it. So references stay as the stored resources have them (`Patient/<id>`, relative),
 * and each fullUrl is the RESTful URL `<FHIR base>/<type>/<id>`, against whose base a relative reference in an entry
 * resolves to the entry it names (R4 2.36.4.1). Rewriting references to `urn:uuid:` names instead would make every
 * entry a copy that differs from what is stored. The DocumentReference is not an entry: it describes the document,
 * it is not part of it.
 */

import { deterministicId } from '../ids.ts';

import type { CdaConversion } from './convert.ts';
import type { CdaIssue, CdaIssueCode } from './issues.ts';
import type { FhirResource } from './resources.ts';

/** The code system of conversion issue codes in OperationOutcomes. */
export const CDA_ISSUE_SYSTEM = 'urn:anchorline:cda-issue';

/**
 * The id of the document Bundle headed by a Composition (GET /fhir/Composition/{id}/$document reads it). Made from
 * the Composition's id, itself made from ClinicalDocument/id, so a document sent again finds its Bundle, and a
 * Composition kept apart under another patient heads a Bundle of its own.
 */
export function documentBundleId(compositionId: string): string {
  return deterministicId('Bundle', 'document', compositionId);
}

/**
 * A document Bundle of `resources`, the Composition first, each entry the resource as given. `fullUrlBase` is the
 * FHIR base the entries' fullUrls are made from (no trailing slash).
 */
export function documentBundle(resources: ReadonlyArray<Record<string, unknown>>, fullUrlBase: string): FhirResource {
  const composition = resources[0];
  if (composition?.resourceType !== 'Composition') throw new Error('a document Bundle starts with its Composition');
  const date = String(composition.date);
  return {
    resourceType: 'Bundle',
    id: documentBundleId(String(composition.id)),
    identifier: composition.identifier,
    type: 'document',
    // An instant is required; a document dated without a time of day is stamped at the start of that day (UTC).
    timestamp: date.length > 10 ? date : `${date.padEnd(10, '-01').slice(0, 10)}T00:00:00Z`,
    entry: resources.map((resource) => ({ fullUrl: `${fullUrlBase}/${String(resource.resourceType)}/${String(resource.id)}`, resource })),
  };
}

/**
 * The document Bundle of a conversion before anything is stored: what the worker stores, less what merging with
 * stored versions and terminology add. The drafts' nulls (an element the document removes) are left out; they occur
 * only at a draft's top level.
 */
export function cdaDocumentBundle(conversion: CdaConversion, fullUrlBase: string): FhirResource {
  return documentBundle(conversion.resources.map((resource) => Object.fromEntries(Object.entries(resource).filter(([, value]) => value !== null))), fullUrlBase);
}

/** FHIR IssueType of each conversion issue. */
const ISSUE_TYPES: Readonly<Record<CdaIssueCode, string>> = {
  'section-not-supported': 'not-supported',
  'entries-not-converted': 'incomplete',
  'section-failed': 'processing',
  'value-not-converted': 'not-supported',
  'time-not-converted': 'value',
  'body-not-structured': 'not-supported',
  'recordtarget-not-converted': 'not-supported',
  'repeated-entry-id': 'duplicate',
  'code-from-narrative': 'informational',
};

/**
 * An OperationOutcome: `summary` (what happened to the document, as an informational issue) followed by one issue
 * per conversion issue, each coded in CDA_ISSUE_SYSTEM and located by an XPath where it has a place.
 */
export function cdaIssuesOutcome(issues: readonly CdaIssue[], summary: { code: string; text: string }): Record<string, unknown> {
  return {
    resourceType: 'OperationOutcome',
    issue: [
      { severity: 'information', code: 'informational', details: { coding: [{ system: CDA_ISSUE_SYSTEM, code: summary.code }], text: summary.text } },
      ...issues.map((issue) => ({
        severity: issue.severity,
        code: ISSUE_TYPES[issue.code],
        details: { coding: [{ system: CDA_ISSUE_SYSTEM, code: issue.code }], text: issue.text },
        ...(issue.location ? { location: [issue.location] } : {}),
      })),
    ],
  };
}

/**
 * A conversion as a FHIR document Bundle, and its issues as an OperationOutcome.
 *
 * The Bundle is what a FHIR client expects of a converted document (R4 Bundle type 'document'): the Composition
 * first, every entry with a fullUrl, identifier and timestamp set (bdl-9, bdl-10, bdl-11). Entries are named
 * `urn:uuid:<id>` (every id the conversion makes is a UUID) and references among them are rewritten to those names,
 * because a relative reference (`Patient/<id>`) does not resolve against a urn:uuid fullUrl. The DocumentReference
 * is not an entry: it describes the document, it is not part of it.
 */

import { deterministicId } from '../ids.ts';

import type { CdaConversion } from './convert.ts';
import type { CdaIssue, CdaIssueCode } from './issues.ts';
import type { FhirResource } from './resources.ts';

/** The code system of conversion issue codes in OperationOutcomes. */
export const CDA_ISSUE_SYSTEM = 'urn:anchorline:cda-issue';

export function cdaDocumentBundle(conversion: CdaConversion): Record<string, unknown> {
  // A Practitioner, its PractitionerRole and Organization can share an id (they come from one CDA element); their
  // fullUrls must not (bdl-7), so a repeated id gets a name derived from type and id.
  const inBundle = new Map<string, string>();
  const used = new Set<string>();
  for (const resource of conversion.resources) {
    const fullUrl = `urn:uuid:${used.has(resource.id) ? deterministicId('BundleEntry', resource.resourceType, resource.id) : resource.id}`;
    used.add(resource.id);
    inBundle.set(`${resource.resourceType}/${resource.id}`, fullUrl);
  }
  const composition = conversion.resources[0]!;
  const date = String(composition.date);
  return {
    resourceType: 'Bundle',
    identifier: composition.identifier,
    type: 'document',
    // An instant is required; a document dated without a time of day is stamped at the start of that day (UTC).
    timestamp: date.length > 10 ? date : `${date.padEnd(10, '-01').slice(0, 10)}T00:00:00Z`,
    entry: conversion.resources.map((resource) => ({ fullUrl: inBundle.get(`${resource.resourceType}/${resource.id}`), resource: bundleReferences(resource, inBundle) as FhirResource })),
  };
}

/** A copy with references to entries named by their fullUrl, and without the drafts' nulls. */
function bundleReferences(value: unknown, inBundle: ReadonlyMap<string, string>): unknown {
  if (Array.isArray(value)) return value.map((item) => bundleReferences(item, inBundle));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [name, member] of Object.entries(value)) {
    if (member === null) continue;
    out[name] = name === 'reference' && typeof member === 'string' && inBundle.has(member) ? inBundle.get(member) : bundleReferences(member, inBundle);
  }
  return out;
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

/**
 * What the tests of the HL7 v2 mappers' resource references share: mapping message text with the default config,
 * picking drafts by type or by the reference that names them, and the check that every reference to a
 * practitioner, organization, location, role or related person is literal, names a draft of the same message that
 * comes before the one holding it, and that every draft is valid FHIR R4 (the validator the ingest job runs).
 */

import { expect } from 'vitest';

import { parseHl7 } from '../../formats/hl7v2/parse.ts';
import { type Hl7MappingOptions, type MappingResult, type ResourceDraft, defaultHl7MappingOptions, mapHl7Message, mergeDraft, validateFhirResource } from '../../mappers/index.ts';

/** Resource types every reference to which must name a draft of the same message. */
const REFERRED_TYPES = new Set(['Practitioner', 'Organization', 'Location', 'PractitionerRole', 'RelatedPerson']);

export const SEOULGEN = 'urn:anchorline:authority:SEOULGEN';

export function map(segments: readonly string[], options: Hl7MappingOptions = defaultHl7MappingOptions): MappingResult {
  return mapHl7Message(parseHl7(segments.join('\r')), options);
}

export function msh(type: string, control: string, facility = 'SEOULGEN'): string {
  return `MSH|^~\\&|HIS|${facility}|ANCHORLINE|ANCHORLINE|20240815083015||${type}|${control}|P|2.5.1`;
}

/** A segment from field number -> value. */
export function segment(name: string, fields: Record<number, string>): string {
  const last = Math.max(0, ...Object.keys(fields).map(Number));
  return [name, ...Array.from({ length: last }, (_, i) => fields[i + 1] ?? '')].join('|');
}

export function draftsOf(result: MappingResult, resourceType: string): ResourceDraft[] {
  return result.drafts.filter((draft) => draft.resourceType === resourceType);
}

export function only(result: MappingResult, resourceType: string): ResourceDraft {
  const found = draftsOf(result, resourceType);
  expect(found, resourceType).toHaveLength(1);
  return found[0]!;
}

export function byReference(result: MappingResult, reference: string): ResourceDraft {
  const found = result.drafts.find((draft) => `${draft.resourceType}/${draft.id}` === reference);
  expect(found, reference).toBeDefined();
  return found!;
}

/** Every `reference` member anywhere in a value. */
export function referencesIn(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) for (const item of value) referencesIn(item, found);
  else if (value !== null && typeof value === 'object') {
    for (const [name, member] of Object.entries(value)) {
      if (name === 'reference' && typeof member === 'string') found.push(member);
      else referencesIn(member, found);
    }
  }
  return found;
}

/**
 * Every reference to a directory resource or a RelatedPerson names a draft that comes before the draft holding it;
 * every draft, applied to nothing, is valid FHIR R4; and the message has no issue of severity warning.
 */
export function expectResolvedAndValid(result: MappingResult): void {
  const before = new Set<string>();
  for (const draft of result.drafts) {
    for (const reference of referencesIn(draft)) {
      if (REFERRED_TYPES.has(reference.split('/')[0]!)) expect(before.has(reference), `${draft.resourceType} -> ${reference}`).toBe(true);
    }
    expect(validateFhirResource(mergeDraft(undefined, draft)), `${draft.resourceType}/${draft.id}`).toEqual([]);
    before.add(`${draft.resourceType}/${draft.id}`);
  }
  expect((result.issues ?? []).filter((issue) => issue.severity !== 'information')).toEqual([]);
}

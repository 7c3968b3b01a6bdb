/**
 * Applying a draft to the stored resource: the one place where HL7 update semantics meet the store.
 */

import { AnchorlineError } from '../errors/index.ts';

import type { ResourceDraft } from './types.ts';

/**
 * Elements FHIR R4 requires (min 1) that a draft may legitimately leave out (an A08 creating an Encounter it never
 * saw admitted) or remove (a `""` in PV1-2). They get a value that says "not known" rather than a guess: status
 * 'unknown', and for the Coding `class` the data-absent-reason extension.
 */
const REQUIRED_WHEN_MISSING: ReadonlyMap<string, Readonly<Record<string, unknown>>> = new Map([
  [
    'Encounter',
    {
      status: 'unknown',
      class: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] },
    },
  ],
]);

/** Elements the draft cannot touch: identity is the draft's own, `meta` belongs to the store. */
const RESERVED = new Set(['resourceType', 'id', 'meta']);

/**
 * The stored resource (`current`, undefined when new) with `draft` applied: an undefined element keeps the stored
 * one, null removes it, any other value replaces it. `meta` is carried over untouched. When an element is replaced
 * or removed, its primitive extension sibling (`_birthDate` for `birthDate`) goes too unless the draft sends one:
 * it described the old value. Returns a new object; neither input is modified.
 */
export function mergeDraft(current: Record<string, unknown> | undefined, draft: ResourceDraft): Record<string, unknown> {
  if (current !== undefined && (current['resourceType'] !== draft.resourceType || current['id'] !== draft.id)) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_FAILED', 'draft resourceType/id does not match the stored resource');
  }
  const merged: Record<string, unknown> = { resourceType: draft.resourceType, id: draft.id };
  if (current !== undefined) {
    for (const [name, value] of Object.entries(current)) {
      if (name === 'resourceType' || name === 'id') continue;
      merged[name] = structuredClone(value);
    }
  }
  for (const [name, value] of Object.entries(draft)) {
    if (RESERVED.has(name) || value === undefined) continue;
    if (!name.startsWith('_') && !Object.hasOwn(draft, `_${name}`)) delete merged[`_${name}`];
    if (value === null) delete merged[name];
    else merged[name] = structuredClone(value);
  }
  const required = REQUIRED_WHEN_MISSING.get(draft.resourceType);
  if (required !== undefined) {
    for (const [name, fallback] of Object.entries(required)) {
      if (merged[name] === undefined) merged[name] = structuredClone(fallback);
    }
  }
  return merged;
}

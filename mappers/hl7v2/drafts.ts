/**
 * Field -> element semantics and the two kinds of draft, for every message family (ADT and the order, result,
 * scheduling, immunization, document and pharmacy mappers alike).
 *
 * Two kinds of draft, because v2 messages describe resources in two ways:
 * - update drafts (updateDraft) for resources that messages change piecemeal over their life: a patient updated by
 *   A08, an order cancelled by an ORC-1 CA message, an appointment rescheduled by S13. A field not sent keeps the
 *   stored element, `""` removes it (the draft contract in mappers/types.ts).
 * - complete drafts (completeDraft) for resources a segment group describes whole each time it is sent: an OBX is
 *   the whole observation, a corrected result replaces the preliminary one entirely, an RXA is the whole
 *   administration. Every element the mapper owns is in the draft, as null when the message does not fill it, so a
 *   correction that drops an abnormal flag does not leave the old flag behind.
 */

import { type Hl7Field, type Hl7Repetition, isEmptyField, isExplicitNull } from '../../formats/hl7v2/index.ts';
import type { ResourceDraft } from '../types.ts';

import { tolerate } from '../issues.ts';
import { comp, pruneEmpty } from './datatypes.ts';

// ---------------------------------------------------------------------------------------------------------------
// Field -> element

/** A repetition as it was sent (components joined by `^`, subcomponents by `&`): the value an issue records. */
export function repetitionText(repetition: Hl7Repetition | undefined): string {
  return repetition === undefined ? '' : repetition.map((component) => component.join('&')).join('^').replace(/\^+$/, '');
}

/**
 * One element from one field: not sent -> undefined, `""` -> null, else the converted first repetition. A value the
 * conversion cannot read is an issue on the message (mappers/issues.ts) and leaves the element out.
 */
export function element<T>(field: Hl7Field, convert: (repetition: Hl7Repetition) => T | undefined): T | null | undefined {
  if (isExplicitNull(field)) return null;
  if (isEmptyField(field)) return undefined;
  return tolerate(() => convert(field[0]!), () => repetitionText(field[0]));
}

/**
 * A list element from every repetition of one or more fields (name from PID-5 and PID-9), with the same semantics
 * over all of them: the values when any are sent, else null when a field is `""`, else undefined.
 */
export function listElement<T>(sources: ReadonlyArray<readonly [Hl7Field, (repetition: Hl7Repetition) => T | undefined]>): T[] | null | undefined {
  const values: T[] = [];
  let cleared = false;
  for (const [field, convert] of sources) {
    if (isExplicitNull(field)) {
      cleared = true;
      continue;
    }
    for (const repetition of field) {
      // One unreadable repetition (a bad date in one address) is an issue; the others still make the list.
      const value = tolerate(() => convert(repetition), () => repetitionText(repetition));
      if (value !== undefined) values.push(value);
    }
  }
  if (values.length > 0) return values;
  return cleared ? null : undefined;
}

/** The first repetition's first component, trimmed: coded ID/IS fields. */
export function codeOf(field: Hl7Field): string {
  return comp(field[0], 1);
}

// ---------------------------------------------------------------------------------------------------------------
// Drafts

/**
 * The first draft of each resource (type and id), in order: where two orders or reports of one message share a
 * specimen, each sends its SPM, and the first describes it.
 */
export function firstOfEachResource(drafts: readonly ResourceDraft[]): ResourceDraft[] {
  const seen = new Set<string>();
  return drafts.filter((draft) => {
    const key = `${draft.resourceType}/${draft.id}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** An update draft: undefined elements (not sent) are left out, so the stored ones stay; null and values are kept. */
export function updateDraft(resourceType: string, id: string, elements: Record<string, unknown>): ResourceDraft {
  const result: ResourceDraft = { resourceType, id };
  for (const name of Object.keys(elements)) {
    const value = elements[name];
    if (value === null) {
      result[name] = null;
      continue;
    }
    const pruned = pruneEmpty(value);
    if (pruned !== undefined) result[name] = pruned;
  }
  return result;
}

/** A complete draft: every listed element is in it, as null when it has no value, so nothing stale survives. */
export function completeDraft(resourceType: string, id: string, elements: Record<string, unknown>): ResourceDraft {
  const result: ResourceDraft = { resourceType, id };
  for (const name of Object.keys(elements)) {
    const value = elements[name];
    result[name] = value === null ? null : (pruneEmpty(value) ?? null);
  }
  return result;
}

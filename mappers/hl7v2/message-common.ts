/**
 * What the order, result, scheduling, immunization, document and pharmacy mappers share: the two kinds of draft,
 * field -> element semantics, the patient a message is about, order identifiers, and the segment groups of
 * ORC-led messages.
 *
 * Two kinds of draft, because v2 messages describe resources in two ways:
 * - update drafts (updateDraft) for resources that messages change piecemeal over their life: an order cancelled
 *   by an ORC-1 CA message, an appointment rescheduled by S13. A field not sent keeps the stored element, `""`
 *   removes it (the draft contract in mappers/types.ts).
 * - complete drafts (completeDraft) for resources a segment group describes whole each time it is sent: an OBX is
 *   the whole observation, a corrected result replaces the preliminary one entirely, an RXA is the whole
 *   administration. Every element the mapper owns is in the draft, as null when the message does not fill it, so a
 *   correction that drops an abnormal flag does not leave the old flag behind.
 */

import { type Hl7Field, type Hl7Repetition, type Hl7Segment, fieldOf, isEmptyField, isExplicitNull, segmentsNamed } from '../../adapters/hl7v2/types.ts';
import { AnchorlineError } from '../../errors/index.ts';
import type { ResourceDraft } from '../types.ts';

import { patientId } from './adt.ts';
import {
  type AssigningAuthority,
  type Identifier,
  type Reference,
  authorityFromField,
  comp,
  entityIdentifierOf,
  pruneEmpty,
  toEntityIdentifier,
} from './datatypes.ts';
import type { MappingContext } from './registry.ts';

// ---------------------------------------------------------------------------------------------------------------
// Errors (details name fields, never values)

export function missingField(location: string, detail: string): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', `${location}: ${detail}`, { location });
}

export function invalidValue(location: string, detail: string): AnchorlineError {
  return new AnchorlineError('ANCHORLINE_ERR_MAPPING_INVALID_VALUE', `${location}: ${detail}`, { location });
}

/**
 * A value type (OBX-2) for an error detail: table 0125 codes are message structure, not patient data, and are
 * named; anything else a sender put there is not repeated.
 */
export function printableType(valueType: string): string {
  return /^[A-Z]{2,3}$/.test(valueType) ? valueType : '(not a table 0125 code)';
}

// ---------------------------------------------------------------------------------------------------------------
// Field -> element

/** One element from one field: not sent -> undefined, `""` -> null, else the converted first repetition. */
export function element<T>(field: Hl7Field, convert: (repetition: Hl7Repetition) => T | undefined): T | null | undefined {
  if (isExplicitNull(field)) return null;
  if (isEmptyField(field)) return undefined;
  return convert(field[0]!);
}

/** A list element from every repetition of a field, with the same semantics. */
export function listElement<T>(field: Hl7Field, convert: (repetition: Hl7Repetition) => T | undefined): T[] | null | undefined {
  if (isExplicitNull(field)) return null;
  const values: T[] = [];
  for (const repetition of field) {
    const value = convert(repetition);
    if (value !== undefined) values.push(value);
  }
  return values.length > 0 ? values : undefined;
}

/** The first repetition's first component, trimmed: coded ID/IS fields. */
export function codeOf(field: Hl7Field): string {
  return comp(field[0], 1);
}

/** An update draft: undefined elements (not sent) are left out, so the stored ones stay; null and values are kept. */
export function updateDraft(resourceType: string, id: string, elements: Record<string, unknown>): ResourceDraft {
  const result: ResourceDraft = { resourceType, id };
  for (const [name, value] of Object.entries(elements)) {
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
  for (const [name, value] of Object.entries(elements)) result[name] = value === null ? null : (pruneEmpty(value) ?? null);
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// The patient

/**
 * The reference to the patient the message is about. One patient per message: the result, scheduling and order
 * structures allow several PID groups, but each builder attributes everything to the first PID, so a second patient
 * would receive the first one's results. Such a message is refused rather than mapped wrongly.
 */
export function singlePatientReference(context: MappingContext): Reference & { reference: string } {
  if (segmentsNamed(context.message, 'PID').length > 1) {
    throw invalidValue('PID', 'the message is about more than one patient; one PID per message is supported');
  }
  return { reference: `Patient/${patientId(context)}` };
}

export function sendingFacility(context: MappingContext): AssigningAuthority {
  return authorityFromField(fieldOf(context.msh, 4)[0]);
}

// ---------------------------------------------------------------------------------------------------------------
// Keys

/** An identifier that names a business key, so it has a system and a value. */
export type KeyIdentifier = Identifier & { system: string; value: string };

/** An EI field (or the first of two that carry the same number) as a key identifier, or undefined when empty. */
export function eiKey(repetition: Hl7Repetition | undefined, location: string, context: MappingContext, typeCode?: string): KeyIdentifier | undefined {
  const identifier = toEntityIdentifier(entityIdentifierOf(repetition), location, context.options, sendingFacility(context), typeCode);
  if (identifier === undefined) return undefined;
  if (identifier.system === undefined) {
    throw missingField(location, 'the identifier has no assigning authority and MSH-4 sending facility is empty');
  }
  return identifier as KeyIdentifier;
}

/** The placer and filler order numbers of an order: OBR-2/OBR-3 when sent, else ORC-2/ORC-3 (the IG's precedence). */
export interface OrderNumbers {
  placer?: KeyIdentifier;
  filler?: KeyIdentifier;
}

export function orderNumbers(orc: Hl7Segment | undefined, detail: Hl7Segment | undefined, detailName: string, context: MappingContext): OrderNumbers {
  const pick = (field: number, typeCode: string): KeyIdentifier | undefined => {
    const fromDetail = fieldOf(detail, field)[0];
    if (comp(fromDetail, 1) !== '') return eiKey(fromDetail, `${detailName}-${field}`, context, typeCode);
    return eiKey(fieldOf(orc, field)[0], `ORC-${field}`, context, typeCode);
  };
  return pruneEmpty<OrderNumbers>({ placer: pick(2, 'PLAC'), filler: pick(3, 'FILL') }) ?? {};
}

// ---------------------------------------------------------------------------------------------------------------
// Segment groups

/**
 * One order in an ORC-led message: its ORC (optional where the structure allows), its detail segment (OBR, RXE,
 * RXA) and every other segment up to the next order, in message order (TQ1, NTE, OBX, SPM, RXR, Z-segments...).
 */
export interface OrderGroup {
  orc?: Hl7Segment;
  detail?: Hl7Segment;
  segments: Hl7Segment[];
}

/**
 * The orders of a message: an ORC opens an order, and so does a detail segment that does not follow an ORC of its
 * own (ORU results sent without ORC, a second OBR after the first). Segments before the first order (MSH, PID,
 * PV1 and their notes) belong to no order.
 */
export function orderGroups(segments: readonly Hl7Segment[], detailName: string): OrderGroup[] {
  const groups: OrderGroup[] = [];
  let current: OrderGroup | undefined;
  for (const segment of segments) {
    if (segment.name === 'ORC') {
      current = { orc: segment, segments: [] };
      groups.push(current);
    } else if (segment.name === detailName) {
      if (current !== undefined && current.detail === undefined && current.orc !== undefined) {
        current.detail = segment;
      } else {
        current = { detail: segment, segments: [] };
        groups.push(current);
      }
    } else if (current !== undefined) {
      current.segments.push(segment);
    }
  }
  return groups;
}

// ---------------------------------------------------------------------------------------------------------------
// Notes

export interface Annotation {
  text: string;
}

/** NTE-3 comment (FT, repeating) as one annotation per NTE; repetitions are lines. */
export function noteOf(nte: Hl7Segment): Annotation | undefined {
  const text = fieldOf(nte, 3)
    .map((repetition) => comp(repetition, 1))
    .join('\n')
    .trim();
  return text === '' ? undefined : { text };
}

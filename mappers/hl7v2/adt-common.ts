/**
 * What every ADT builder shares: field -> element with draft semantics, the patient and visit keys that make
 * resource ids, and the event time.
 */

import {
  type Hl7Field,
  type Hl7Repetition,
  type Hl7Segment,
  fieldOf,
  firstSegment,
  isEmptyField,
  isExplicitNull,
  valueOf,
} from '../../adapters/hl7v2/types.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { deterministicId } from '../ids.ts';
import type { ResourceDraft } from '../types.ts';

import { type AssigningAuthority, type Identifier, type Reference, authorityFromField, codeTable, comp, pruneEmpty, toFhirDateTime, toIdentifier } from './datatypes.ts';
import type { MappingContext } from './registry.ts';

// ---------------------------------------------------------------------------------------------------------------
// Field -> element with draft semantics

/** One element from one field: not sent -> undefined, `""` -> null, else the converted value. */
export function element<T>(field: Hl7Field, convert: (repetition: Hl7Repetition) => T | undefined): T | null | undefined {
  if (isExplicitNull(field)) return null;
  if (isEmptyField(field)) return undefined;
  return convert(field[0]!);
}

/** A list element from the repetitions of one or more fields, with the same semantics over all of them. */
export function listElement<T>(sources: ReadonlyArray<readonly [Hl7Field, (repetition: Hl7Repetition) => T | undefined]>): T[] | null | undefined {
  const values: T[] = [];
  let cleared = false;
  for (const [field, convert] of sources) {
    if (isExplicitNull(field)) {
      cleared = true;
      continue;
    }
    for (const repetition of field) {
      const value = convert(repetition);
      if (value !== undefined) values.push(value);
    }
  }
  if (values.length > 0) return values;
  return cleared ? null : undefined;
}

/** The first repetition's first component, trimmed, for coded fields (ID/IS). */
export function codeOf(field: Hl7Field): string {
  return comp(field[0], 1);
}

/** Draft with undefined (not sent) elements left out; null and values kept. */
export function draft(resourceType: string, id: string, elements: Record<string, unknown>): ResourceDraft {
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

/** HL7 table 0001 (administrative sex) -> FHIR administrative-gender. A (ambiguous) -> other, N (not applicable) -> unknown. */
const GENDER = codeTable<string>({ M: 'male', F: 'female', O: 'other', U: 'unknown', A: 'other', N: 'unknown' });

/** An administrative sex field (PID-8, NK1-15) as FHIR gender; a code outside table 0001 is an error at `location`. */
export function administrativeGender(code: string, location: string): string | undefined {
  if (code === '') return undefined;
  const mapped = GENDER.get(code.toUpperCase());
  if (mapped === undefined) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_INVALID_VALUE', `${location}: administrative sex is not an HL7 table 0001 code`, { location });
  }
  return mapped;
}

// ---------------------------------------------------------------------------------------------------------------
// Identity

export function requirePid(context: MappingContext): Hl7Segment {
  const pid = firstSegment(context.message, 'PID');
  if (pid === undefined) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'PID segment is missing', { location: 'PID' });
  }
  return pid;
}

export function sendingFacility(context: MappingContext): AssigningAuthority {
  return authorityFromField(fieldOf(context.msh, 4)[0]);
}

/**
 * The identifier that names a business key: its system must exist, or the id would collide across authorities.
 * Keys fall back to MSH-4 for their authority, so this fails only when CX-4 and MSH-4 are both empty.
 */
export function keyIdentifier(repetition: Hl7Repetition, location: string, context: MappingContext): Identifier & { system: string; value: string } {
  const identifier = toIdentifier(repetition, location, context.options, sendingFacility(context));
  if (identifier?.system === undefined || identifier.value === undefined) {
    throw new AnchorlineError(
      'ANCHORLINE_ERR_MAPPING_MISSING_FIELD',
      `${location}: the identifier has no assigning authority (CX-4) and MSH-4 sending facility is empty`,
      { location },
    );
  }
  return identifier as Identifier & { system: string; value: string };
}

/**
 * The patient id from a patient identifier list (PID-3, MRG-1): the first repetition typed MR (medical record number,
 * the facility's own key for the patient), else the first repetition with a value.
 */
export function patientIdFromList(field: Hl7Field, location: string, context: MappingContext): string {
  const repetitions = field.filter((repetition) => comp(repetition, 1) !== '');
  if (repetitions.length === 0) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', `${location} patient identifier list is empty`, { location });
  }
  const primary = repetitions.find((repetition) => comp(repetition, 5) === 'MR') ?? repetitions[0]!;
  const identifier = keyIdentifier(primary, location, context);
  return deterministicId('Patient', identifier.system, identifier.value);
}

/** The id of the patient the message is about (the first PID). */
export function patientId(context: MappingContext): string {
  return patientIdFromList(fieldOf(requirePid(context), 3), 'PID-3', context);
}

export function patientReference(context: MappingContext): Reference {
  return { reference: `Patient/${patientId(context)}` };
}

/** The visit (PV1-19) as the Encounter's identifier and id; undefined without PV1 or a visit number. */
export function visitKey(context: MappingContext): { identifier: Identifier & { system: string; value: string }; id: string } | undefined {
  const pv1 = firstSegment(context.message, 'PV1');
  const visitNumber = fieldOf(pv1, 19).find((repetition) => comp(repetition, 1) !== '');
  if (visitNumber === undefined) return undefined;
  const identifier = keyIdentifier(visitNumber, 'PV1-19', context);
  return { identifier, id: deterministicId('Encounter', identifier.system, identifier.value) };
}

// ---------------------------------------------------------------------------------------------------------------
// Event time

/**
 * When the event happened, as a FHIR dateTime in the sender's zone: EVN-6 (event occurred: when the patient was
 * actually transferred or discharged), else EVN-2 (when it was recorded), else MSH-7 (when the message was made).
 * The first field that is sent is used; a value that is not a time there is an error, not a reason to look further,
 * because a later field describes a different moment. Undefined when none is sent.
 */
export function eventDateTime(context: MappingContext): string | undefined {
  const evn = firstSegment(context.message, 'EVN');
  const candidates: Array<[string, string]> = [
    [valueOf(evn, 6), 'EVN-6'],
    [valueOf(evn, 2), 'EVN-2'],
    [valueOf(context.msh, 7), 'MSH-7'],
  ];
  for (const [value, location] of candidates) {
    const time = toFhirDateTime(value, location, context.options.timeZone);
    if (time !== undefined) return time;
  }
  return undefined;
}

/** eventDateTime() for events that cannot be recorded without a time (a transfer, a class change). */
export function requireEventDateTime(context: MappingContext): string {
  const time = eventDateTime(context);
  if (time === undefined) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'EVN-2: the event has no time (EVN-6, EVN-2 and MSH-7 are empty)', { location: 'EVN-2' });
  }
  return time;
}

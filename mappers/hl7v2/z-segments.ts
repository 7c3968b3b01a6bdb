/**
 * Z segments -> FHIR, by the source's mapping config (`zSegments`, z-segment-rules.ts). A site's own segments carry
 * what the standard ones have no field for (a VIP flag, a national insurance number, a triage score); without a rule
 * they stay in the raw message, as every segment no builder reads does. With rules, each rule's field is read as its
 * type by the converters the builders use (datatypes.ts) and goes to:
 *
 * - `Patient.extension` / `Encounter.extension`: one extension per repetition, with the rule's url, added to the
 *   extensions the message already gives the resource. The list is one element fed by several fields (README
 *   "Mapping configs"), so the Z fields join its update rule: a message that sends any of its fields, PID's or a Z
 *   segment's, states the whole list; one that sends none leaves the stored list; `""` in every field it sends
 *   removes it.
 * - `Patient.identifier` / `Encounter.identifier`: one identifier per repetition, added to the list the message gives
 *   (an identifier the list already has is not repeated). The field is read as a CX, its CX-4 authority naming the
 *   system as in PID-3, unless the rule names the system itself.
 * - `Observation`: one Observation per Z segment sent, of the rule's code, with the field's first repetition as its
 *   value, about the patient (and the visit PV1 names). A complete draft (results.ts): the same segment sent again
 *   for the same patient and visit replaces it. Its id is the patient, the visit, the rule's field and code, and the
 *   segment's position among those of its name.
 *
 * The patient a Z segment is about is the one of the last PID before it (the first PID when none is before it), as
 * a segment belongs to the group it follows; the visit is the one the message names.
 *
 * A value that does not read as its type is an issue at its place (`ZPI-2`, `ZPI[2]-2` when the message has several
 * ZPI, `ZPI-2.1` for a component) and costs that value only. A value for a resource the message does not produce (an
 * Encounter extension in a message without a visit) is an information issue, as a segment no builder reads is.
 */

import { type Hl7Field, type Hl7Repetition, type Hl7Segment, fieldOf, isEmptyField, isExplicitNull } from '../../formats/hl7v2/index.ts';
import { deterministicId } from '../ids.ts';
import { buildEach, issueCodeOf, reportIssue, tolerate } from '../issues.ts';
import type { ResourceDraft } from '../types.ts';

import { patientIdOf, sendingFacility, visitKey } from './adt-common.ts';
import {
  type Identifier,
  V2_0203_SYSTEM,
  codeSystemUri,
  codeTable,
  comp,
  localCodeSystem,
  pruneEmpty,
  toCodeableConceptWith,
  toCqQuantity,
  toFhirDate,
  toFhirDateTime,
  toFhirDecimal,
  toIdentifier,
  toQuantityUnit,
} from './datatypes.ts';
import { completeDraft, repetitionText } from './drafts.ts';
import { invalidValue } from './message-common.ts';
import type { MappingContext } from './context.ts';
import { Z_SEGMENT_TARGETS, type ZSegmentRule, type ZValueType, parseZField } from './z-segment-rules.ts';

/** The FHIR value[x] member name of each type: valueString, valueCodeableConcept, ... */
const VALUE_MEMBER: Readonly<Record<ZValueType, string>> = {
  string: 'valueString',
  code: 'valueCode',
  boolean: 'valueBoolean',
  integer: 'valueInteger',
  decimal: 'valueDecimal',
  date: 'valueDate',
  dateTime: 'valueDateTime',
  Quantity: 'valueQuantity',
  Coding: 'valueCoding',
  CodeableConcept: 'valueCodeableConcept',
  Identifier: 'valueIdentifier',
};

/** The value[x] members an Observation made by a rule may hold, all written, so a changed type leaves no old value. */
const OBSERVATION_VALUE_MEMBERS = Z_SEGMENT_TARGETS.Observation.types.map((type) => VALUE_MEMBER[type]);

/**
 * A Z field has no HL7 table behind it, so every spelling of yes and no senders use is read without an issue
 * (PID-30 and the like, which are table 0136 fields, report the words that are not Y or N).
 */
const BOOLEAN_WORDS = codeTable<boolean>({ Y: true, N: false, YES: true, NO: false, T: true, F: false, TRUE: true, FALSE: false, '1': true, '0': false });

const INTEGER = /^[+-]?\d+$/;
const MIN_INTEGER = -2147483648;
const MAX_INTEGER = 2147483647;

/** What the rules of a message add to one element of a Patient or Encounter draft. */
interface ElementAddition {
  draft: ResourceDraft;
  element: 'extension' | 'identifier';
  values: Array<Record<string, unknown>>;
  /** A field for the element was sent as `""`. */
  cleared: boolean;
}

/**
 * Applies the config's Z-segment rules (options.zSegments) to the drafts the builders made of `context.message`:
 * the Patient and Encounter drafts in `drafts` are replaced by copies with the extensions and identifiers the rules
 * add, and the Observations the rules make are appended (after the Patient and Encounter they refer to). Run inside
 * the message's issue scope; does nothing without rules.
 */
export function applyZSegmentRules(context: MappingContext, drafts: ResourceDraft[]): void {
  const rules = context.options.zSegments;
  if (rules === undefined) return;
  const segments = context.message.segments;
  // Own keys only, here and below: the rule table is config data, not an object whose prototype may answer.
  if (!segments.some((segment) => Object.hasOwn(rules, segment.name))) return;

  const additions: ElementAddition[] = [];
  const addTo = (draft: ResourceDraft, element: ElementAddition['element']): ElementAddition => {
    let addition = additions.find((known) => known.draft === draft && known.element === element);
    if (addition === undefined) {
      addition = { draft, element, values: [], cleared: false };
      additions.push(addition);
    }
    return addition;
  };
  const observations: ObservationEntry[] = [];
  const visit = quietly(() => visitKey(context));
  const encounter = visit === undefined ? undefined : drafts.find((draft) => draft.resourceType === 'Encounter' && draft.id === visit.id);

  const positions = new Map<string, number>();
  const counts = new Map<string, number>();
  for (const segment of segments) counts.set(segment.name, (counts.get(segment.name) ?? 0) + 1);
  let pid: Hl7Segment | undefined = segments.find((segment) => segment.name === 'PID');
  for (const segment of segments) {
    if (segment.name === 'PID') pid = segment;
    const position = (positions.get(segment.name) ?? 0) + 1;
    positions.set(segment.name, position);
    if (!Object.hasOwn(rules, segment.name)) continue;
    // `ZPI` when the message has one, `ZPI[2]` for the second of several.
    const at = counts.get(segment.name)! > 1 ? `${segment.name}[${position}]` : segment.name;
    const patient = pid === undefined ? undefined : quietly(() => patientIdOf(pid!, context));
    const patientDraft = patient === undefined ? undefined : drafts.find((draft) => draft.resourceType === 'Patient' && draft.id === patient);

    for (const rule of rules[segment.name]!) {
      const place = fieldPlace(rule, at);
      if (place === undefined) continue;
      const field = valueField(segment, place);
      if (isEmptyField(field) && !isExplicitNull(field)) continue;
      const target = Z_SEGMENT_TARGETS[rule.to];
      if (target.resourceType === 'Observation') {
        if (!isExplicitNull(field)) observations.push({ rule, place, field, position, patient });
        continue;
      }
      const draft = target.resourceType === 'Patient' ? patientDraft : encounter;
      if (draft === undefined) {
        if (!isExplicitNull(field)) notPlaced(place.location, rule, `the message has no ${target.resourceType}`, field);
        continue;
      }
      const element = rule.to.endsWith('.extension') ? 'extension' : 'identifier';
      const addition = addTo(draft, element);
      if (isExplicitNull(field)) {
        addition.cleared = true;
        continue;
      }
      for (const repetition of field) {
        const value = tolerate(() => convert(repetition, rule, place.location, context), () => repetitionText(repetition));
        if (value === undefined) continue;
        addition.values.push(element === 'extension' ? { url: rule.url!, [VALUE_MEMBER[rule.type]]: value } : (value as Record<string, unknown>));
      }
    }
  }

  for (const draft of new Set(additions.map((addition) => addition.draft))) {
    const changed = withAdditions(draft, additions.filter((addition) => addition.draft === draft));
    if (changed !== draft) drafts[drafts.indexOf(draft)] = changed;
  }
  for (const each of buildEach(observations, (entry) => observation(entry, visit?.id, context), (entry, failure) => failure.location ?? entry.place.location)) drafts.push(each);
}

/** `map()`, or undefined when it fails for a field's reason: the builder that reads that field reports it. */
function quietly<T>(map: () => T): T | undefined {
  try {
    return map();
  } catch (error) {
    if (issueCodeOf(error) !== undefined) return undefined;
    throw error;
  }
}

interface FieldPlace {
  field: number;
  component?: number;
  /** `ZPI-2`, `ZPI[2]-2`, `ZPI-2.1`. */
  location: string;
}

function fieldPlace(rule: ZSegmentRule, at: string): FieldPlace | undefined {
  const parsed = parseZField(rule.field);
  if (parsed === undefined) return undefined;
  const location = `${at}-${parsed.field}${parsed.component === undefined ? '' : `.${parsed.component}`}`;
  return { field: parsed.field, ...(parsed.component === undefined ? {} : { component: parsed.component }), location };
}

/**
 * The repetitions a rule reads: the field's, or, for a component, that component of each repetition with its
 * subcomponents as components (the way HL7 nests one type in another, CQ-2's units a CWE in subcomponents), so that
 * one converter reads a field or a component alike.
 */
function valueField(segment: Hl7Segment, place: FieldPlace): Hl7Field {
  const field = fieldOf(segment, place.field);
  if (place.component === undefined) return field;
  return field.map((repetition) => (repetition[place.component! - 1] ?? ['']).map((subcomponent) => [subcomponent]));
}

function notPlaced(location: string, rule: ZSegmentRule, why: string, field: Hl7Field): void {
  reportIssue({
    severity: 'information',
    code: 'ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED',
    location,
    detail: `${location} feeds ${rule.to} and ${why}; it is kept in the raw message`,
    value: repetitionText(field[0]),
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Values

/** One repetition read as the rule's type; undefined when it carries nothing. Throws a field-level mapping error. */
function convert(repetition: Hl7Repetition, rule: ZSegmentRule, location: string, context: MappingContext): unknown {
  const { options } = context;
  const text = comp(repetition, 1);
  switch (rule.type) {
    case 'string':
      return text === '' ? undefined : text;
    case 'code':
      // A FHIR code is runs of non-space characters separated by single spaces (as toCodeableConceptWith reads codes).
      return text === '' ? undefined : text.replace(/\s+/g, ' ');
    case 'boolean': {
      if (text === '') return undefined;
      const value = BOOLEAN_WORDS.get(text.toUpperCase());
      if (value === undefined) throw invalidValue(location, 'not a yes/no value (Y, N, YES, NO, TRUE, FALSE, 1, 0)');
      return value;
    }
    case 'integer': {
      if (text === '') return undefined;
      const value = INTEGER.test(text) ? Number(text) : Number.NaN;
      if (!(value >= MIN_INTEGER && value <= MAX_INTEGER)) throw invalidValue(location, 'not an integer FHIR can hold (32-bit)');
      return value === 0 ? 0 : value;
    }
    case 'decimal':
      return toFhirDecimal(text, location);
    case 'date':
      return toFhirDate(text, location);
    case 'dateTime':
      return toFhirDateTime(text, location, options.timeZone);
    case 'Quantity': {
      const quantity = toCqQuantity(repetition, location);
      if (quantity === undefined || quantity.unit !== undefined || rule.unit === undefined) return quantity;
      return { ...quantity, ...toQuantityUnit(rule.unit, rule.unit, '') };
    }
    case 'Coding': {
      const systemName = comp(repetition, 3);
      return pruneEmpty({ system: text === '' ? undefined : codeSystemOf(systemName, rule, context), code: text === '' ? undefined : text.replace(/\s+/g, ' '), display: comp(repetition, 2) });
    }
    case 'CodeableConcept':
      return toCodeableConceptWith(repetition, (systemName) => codeSystemOf(systemName, rule, context));
    case 'Identifier':
      return identifier(repetition, rule, location, context);
  }
}

/** The system of a code: the coding system named with it, else the rule's, else the field's own local system. */
function codeSystemOf(systemName: string, rule: ZSegmentRule, context: MappingContext): string {
  if (systemName !== '') return codeSystemUri(systemName, context.options);
  return rule.system ?? localCodeSystem(rule.field, context.options);
}

/**
 * A CX: with the rule's system, CX-1 under it (and CX-5 as the identifier type); without, as PID-3 is read, CX-4
 * naming the system and MSH-4 (and its fallbacks) the authority of a value sent without one.
 */
function identifier(repetition: Hl7Repetition, rule: ZSegmentRule, location: string, context: MappingContext): Identifier | undefined {
  if (rule.system === undefined) return toIdentifier(repetition, location, context.options, sendingFacility(context));
  const value = comp(repetition, 1);
  if (value === '') return undefined;
  const typeCode = comp(repetition, 5);
  return { ...(typeCode === '' ? {} : { type: { coding: [{ system: V2_0203_SYSTEM, code: typeCode }] } }), system: rule.system, value };
}

// ---------------------------------------------------------------------------------------------------------------
// Drafts

/** A copy of `draft` with what `additions` add to its elements; `draft` itself when they add nothing. */
function withAdditions(draft: ResourceDraft, additions: readonly ElementAddition[]): ResourceDraft {
  let changed = draft;
  for (const { element, values, cleared } of additions) {
    const current = draft[element];
    let next: unknown = current;
    if (element === 'extension') {
      // One list fed by several fields: what this message sends is the list (module comment).
      if (values.length > 0) next = Array.isArray(current) ? [...current, ...values] : values;
      else if (cleared && current === undefined) next = null;
    } else if (values.length > 0) {
      next = withIdentifiers(current, values, draft.resourceType);
    }
    if (next !== current) changed = { ...changed, [element]: next };
  }
  return changed;
}

type IdentifierList = Array<{ system?: unknown; value?: unknown }>;

/**
 * The identifier element with `added` after what the message already gives: its list (the message states the list),
 * or, where the draft leaves the stored list alone (a Patient identified by a fallback field), the identifiers added
 * to the stored list by mergeDraft's 'add' rule.
 */
function withIdentifiers(current: unknown, added: IdentifierList, resourceType: string): unknown {
  const fresh = (list: IdentifierList): IdentifierList =>
    added.filter((identifier, i) => !list.some((known) => known.system === identifier.system && known.value === identifier.value) && added.findIndex((other) => other.system === identifier.system && other.value === identifier.value) === i);
  if (Array.isArray(current)) return [...current, ...fresh(current as IdentifierList)];
  const operation = current as { $merge?: unknown; identifier?: IdentifierList } | null | undefined;
  if (operation?.$merge === 'add' && Array.isArray(operation.identifier)) return { ...operation, identifier: [...operation.identifier, ...fresh(operation.identifier)] };
  // Only Patient.identifier has an element rule that adds to a stored list.
  if (current === undefined && resourceType === 'Patient') return { $merge: 'add', identifier: fresh([]) };
  return current;
}

/** One rule's field in one Z segment, for an Observation. */
interface ObservationEntry {
  rule: ZSegmentRule;
  place: FieldPlace;
  field: Hl7Field;
  /** The segment's position among those of its name (1-based). */
  position: number;
  /** The id of the patient the segment is about. */
  patient: string | undefined;
}

/** The Observation of one rule for one Z segment; undefined when its value is empty or could not be read. */
function observation(entry: ObservationEntry, visitId: string | undefined, context: MappingContext): ResourceDraft | undefined {
  const { rule, place, field, position, patient } = entry;
  const repetition = field.find((candidate) => !isEmptyField([candidate]));
  if (repetition === undefined) return undefined;
  if (patient === undefined) {
    notPlaced(place.location, rule, 'the message names no patient', field);
    return undefined;
  }
  const value = tolerate(() => convert(repetition, rule, place.location, context), () => repetitionText(repetition));
  if (value === undefined) return undefined;
  const code = rule.code!;
  const id = deterministicId('Observation', 'Z', patient, visitId ?? '', rule.field, code.system, code.code, String(position));
  const values = Object.fromEntries(OBSERVATION_VALUE_MEMBERS.map((member) => [member, member === VALUE_MEMBER[rule.type] ? value : null]));
  return completeDraft('Observation', id, {
    status: 'final',
    code: { coding: [{ system: code.system, code: code.code, ...(code.display === undefined ? {} : { display: code.display }) }] },
    subject: { reference: `Patient/${patient}` },
    encounter: visitId === undefined ? null : { reference: `Encounter/${visitId}` },
    ...values,
  });
}

/**
 * Field sources: which HL7 fields feed a FHIR element, for the elements where senders put the same thing in
 * different fields. A mapping config may change the sources of the elements listed here (its `fields` key); every
 * other element has one source, fixed in its builder.
 *
 * The list is short on purpose. Each entry is a difference real senders have, within what HL7 v2 chapter 3 defines
 * the fields to hold:
 * - the medical record number in PID-2 (the v2.3 "external" patient id; deprecated in favour of PID-3 since
 *   v2.3.1, still where older systems and some regional indexes put it) or PID-4 (alternate patient id) rather than
 *   PID-3;
 * - the SSN in PID-19 as a patient identifier (US senders);
 * - patient aliases (PID-9) that are not names the patient is known by;
 * - phone numbers in PID-40 (v2.7 and later, where PID-13 and PID-14 are retained for backward compatibility);
 * - the visit keyed by PV1-50 (alternate visit id) or by PID-18 (patient account number, which some registration
 *   systems use as the visit number, as the v2-to-FHIR IG notes) rather than PV1-19;
 * - the referring (PV1-8), consulting (PV1-9) and admitting (PV1-17) doctors as Encounter participants beside the
 *   attending doctor (PV1-7).
 *
 * Sources are named as HL7 does, segment and field ('PID-3'). An element takes either one source (a key: the field
 * the resource id is made from) or a list, whose values are taken from each source in the order listed.
 */

import { type Hl7Field, type Hl7Segment, fieldOf } from '../../formats/hl7v2/index.ts';

/** The sources of every element a config may change; fully resolved (each element present). */
export interface FieldSources {
  /**
   * The patient identifier list the Patient id is made from (its first MR-typed identifier, else its first), and so
   * the patient every resource of a message refers to, whatever the message type. Default 'PID-3'.
   */
  'Patient.key': 'PID-2' | 'PID-3' | 'PID-4';
  /**
   * Where the patient's key is looked for, in this order, when the Patient.key field is empty: before v2.4 many
   * systems sent the MRN in PID-2 (external id) or PID-4 (alternate id) and left PID-3 empty. The id is made from the
   * identifier's authority and value alone, so the same number sent once in PID-2 and once in PID-3 names one
   * patient. An empty list: an empty key field fails the message. Default ['PID-2', 'PID-4'].
   */
  'Patient.keyFallback': ReadonlyArray<'PID-2' | 'PID-3' | 'PID-4'>;
  /** Patient.identifier, in this order; must include Patient.key. PID-19 is a US SSN (type SS). Default ['PID-3']. */
  'Patient.identifier': ReadonlyArray<'PID-2' | 'PID-3' | 'PID-4' | 'PID-19'>;
  /** Patient.name: PID-5 patient name, PID-9 alias (name type A where XPN-7 is empty). Default ['PID-5', 'PID-9']. */
  'Patient.name': ReadonlyArray<'PID-5' | 'PID-9'>;
  /** Patient.telecom: PID-13 home, PID-14 work, PID-40 (use from XTN-2). Default ['PID-13', 'PID-14']. */
  'Patient.telecom': ReadonlyArray<'PID-13' | 'PID-14' | 'PID-40'>;
  /** The visit number: the Encounter's identifier and the key its id is made from. Default 'PV1-19'. */
  'Encounter.identifier': 'PV1-19' | 'PV1-50' | 'PID-18';
  /** Encounter.participant: PV1-7 attender, PV1-8 referrer, PV1-9 consultant, PV1-17 admitter. Default ['PV1-7']. */
  'Encounter.participant': ReadonlyArray<'PV1-7' | 'PV1-8' | 'PV1-9' | 'PV1-17'>;
}

export type FieldSourceElement = keyof FieldSources;

/** One element's entry: one source or a list, its default, and the sources it may take. */
export interface FieldSourceSpec<E extends FieldSourceElement = FieldSourceElement> {
  takes: 'one' | 'list';
  default: FieldSources[E];
  allowed: readonly string[];
}

/** Every element a config may change, with its default and allowed sources (README "Mapping configs"). */
export const FIELD_SOURCE_ELEMENTS: { readonly [E in FieldSourceElement]: FieldSourceSpec<E> } = {
  'Patient.key': { takes: 'one', default: 'PID-3', allowed: ['PID-2', 'PID-3', 'PID-4'] },
  'Patient.keyFallback': { takes: 'list', default: ['PID-2', 'PID-4'], allowed: ['PID-2', 'PID-3', 'PID-4'] },
  'Patient.identifier': { takes: 'list', default: ['PID-3'], allowed: ['PID-2', 'PID-3', 'PID-4', 'PID-19'] },
  'Patient.name': { takes: 'list', default: ['PID-5', 'PID-9'], allowed: ['PID-5', 'PID-9'] },
  'Patient.telecom': { takes: 'list', default: ['PID-13', 'PID-14'], allowed: ['PID-13', 'PID-14', 'PID-40'] },
  'Encounter.identifier': { takes: 'one', default: 'PV1-19', allowed: ['PV1-19', 'PV1-50', 'PID-18'] },
  'Encounter.participant': { takes: 'list', default: ['PV1-7'], allowed: ['PV1-7', 'PV1-8', 'PV1-9', 'PV1-17'] },
};

export const DEFAULT_FIELD_SOURCES: FieldSources = Object.freeze(
  Object.fromEntries(Object.entries(FIELD_SOURCE_ELEMENTS).map(([element, spec]) => [element, spec.default])) as unknown as FieldSources,
);

/**
 * The MRG field that holds the prior value of each key field (HL7 v2.5.1 3.4.9): a merge (A40, A47) names the
 * record to retire, and a class change (A06, A07) the visit it closes, in the MRG field that matches the key.
 */
export const PRIOR_KEY_FIELD: Readonly<Record<FieldSources['Patient.key'] | FieldSources['Encounter.identifier'], string>> = {
  'PID-3': 'MRG-1',
  'PID-4': 'MRG-2',
  'PID-2': 'MRG-4',
  'PV1-19': 'MRG-5',
  'PV1-50': 'MRG-6',
  'PID-18': 'MRG-3',
};

/** `declared` completed with the default of every element it leaves out. */
export function resolveFieldSources(declared: Partial<FieldSources> | undefined): FieldSources {
  return { ...DEFAULT_FIELD_SOURCES, ...declared };
}

/**
 * Why a set of sources cannot be used together, naming the elements involved, or undefined. The patient's key must
 * be one of its identifiers: otherwise the Patient's id would be made from an identifier the Patient does not carry,
 * and a search by that identifier would not find it.
 */
export function fieldSourcesConflict(sources: FieldSources): { elements: readonly FieldSourceElement[]; message: string } | undefined {
  const key = sources['Patient.key'];
  if (!(sources['Patient.identifier'] as readonly string[]).includes(key)) {
    return { elements: ['Patient.key', 'Patient.identifier'], message: `Patient.identifier must include ${key}, the Patient.key source: the Patient's id is made from it` };
  }
  return undefined;
}

/** The sources `options` give an element: the config's, else the element's default. */
export function sourcesOf<E extends FieldSourceElement>(options: { readonly fieldSources?: Partial<FieldSources> }, element: E): FieldSources[E] {
  return options.fieldSources?.[element] ?? FIELD_SOURCE_ELEMENTS[element].default;
}

/** The field a source names, from the segment of its name: sourceField('PID-3', { PID: pid }) is field 3 of `pid`. */
export function sourceField(source: string, segments: Readonly<Record<string, Hl7Segment | undefined>>): Hl7Field {
  const dash = source.indexOf('-');
  return fieldOf(segments[source.slice(0, dash)], Number(source.slice(dash + 1)));
}

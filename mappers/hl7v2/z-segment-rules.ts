/**
 * Z-segment rules: what a mapping config may say about the segments a site defines for itself (ZPI, ZV1, ZIN), which
 * HL7 leaves to each sender and no builder reads. A rule names one field (or one component) of a Z segment, the
 * place its value goes and the FHIR type it is read as; the mapping itself is z-segments.ts.
 *
 * Declarative on purpose: a config names targets and types from the catalogue below, never code, so that a config
 * can be validated when it is read, versioned by its content, and tested in the mapping tester like any other key.
 *
 * The targets are the resources a message already produces (its Patient and its Encounter), which a rule can give an
 * extension or another identifier, and an Observation of the patient per Z segment sent, for values that are facts
 * about the patient rather than parts of the record (a smoking flag, a triage score).
 *
 * Apart from the mapping and free of ../types.ts, so that the options type can name the rules without an import
 * circle.
 */

/** The FHIR types a Z field's value can be read as (datatypes.ts converts each one as the builders do). */
export const Z_VALUE_TYPES = ['string', 'code', 'boolean', 'integer', 'decimal', 'date', 'dateTime', 'Quantity', 'Coding', 'CodeableConcept', 'Identifier'] as const;

export type ZValueType = (typeof Z_VALUE_TYPES)[number];

/** Where a Z field's value may go. */
export type ZSegmentTarget = 'Patient.extension' | 'Encounter.extension' | 'Patient.identifier' | 'Encounter.identifier' | 'Observation';

export interface ZSegmentTargetSpec {
  /** The resource the value lands in. */
  resourceType: 'Patient' | 'Encounter' | 'Observation';
  /** The types the target's element takes (FHIR R4 Extension.value[x], Identifier, Observation.value[x]). */
  types: readonly ZValueType[];
  /** The type of a rule that names none. */
  default: ZValueType;
  /** The rule keys the target needs: an extension its url, an Observation its code. */
  requires: ReadonlyArray<'url' | 'code'>;
}

/** Every target a rule may name, with the types it takes (README "Mapping configs", Z segments). */
export const Z_SEGMENT_TARGETS: { readonly [T in ZSegmentTarget]: ZSegmentTargetSpec } = {
  'Patient.extension': { resourceType: 'Patient', types: Z_VALUE_TYPES, default: 'string', requires: ['url'] },
  'Encounter.extension': { resourceType: 'Encounter', types: Z_VALUE_TYPES, default: 'string', requires: ['url'] },
  'Patient.identifier': { resourceType: 'Patient', types: ['Identifier'], default: 'Identifier', requires: [] },
  'Encounter.identifier': { resourceType: 'Encounter', types: ['Identifier'], default: 'Identifier', requires: [] },
  // Observation.value[x] in R4 has no date, decimal (a Quantity holds a number), code or Coding.
  Observation: { resourceType: 'Observation', types: ['string', 'boolean', 'integer', 'dateTime', 'Quantity', 'CodeableConcept'], default: 'string', requires: ['code'] },
};

/** The types a rule's `system` applies to: the system of codes, or of identifiers, sent without one. */
export const Z_TYPES_WITH_SYSTEM: readonly ZValueType[] = ['Coding', 'CodeableConcept', 'Identifier'];

/** The Observation code a rule gives the Observations it makes. */
export interface ZObservationCode {
  system: string;
  code: string;
  display?: string;
}

/**
 * One rule, resolved (as a config's content holds it): a field of one Z segment and where its value goes. Every
 * member is text, so that the stored content re-hashes to its version after a round trip through jsonb.
 */
export interface ZSegmentRule {
  /** The field, or component, as HL7 names it: 'ZPI-2', 'ZPI-2.1'. */
  field: string;
  to: ZSegmentTarget;
  /** Filled in from the target's default when the file names none. */
  type: ZValueType;
  /** The extension's URL (extension targets only). */
  url?: string;
  /**
   * Coding and CodeableConcept: the system of codes sent without a coding system name (default: the local system
   * `<localCodeSystemBase>/<segment>-<field>`). Identifier: the identifier's system, in place of the field's CX-4.
   */
  system?: string;
  /** The code of the Observations the rule makes (Observation only). */
  code?: ZObservationCode;
  /** The unit of a Quantity sent without one, a UCUM code or text ('mg/dL'). */
  unit?: string;
}

/** Segment name ('ZPI') -> its rules, in the order written (the order of the extensions and identifiers made). */
export type ZSegmentRules = Readonly<Record<string, readonly ZSegmentRule[]>>;

/** A Z segment name: Z and two letters or digits, as segment names are (formats/hl7v2/parse.ts). */
export const Z_SEGMENT_NAME = /^Z[A-Z0-9]{2}$/;

/** 'ZPI-2', 'ZPI-2.1', or a field ('2') or field and component ('2.1') of a segment the context names. */
const FIELD_NAME = /^(?:([A-Z0-9]{3})-)?([1-9]\d{0,2})(?:\.([1-9]\d{0,2}))?$/;

/** A field name as a rule writes it, taken apart; undefined when it is not one (or names a field 0, or above 999). */
export function parseZField(name: string): { segment?: string; field: number; component?: number } | undefined {
  const match = FIELD_NAME.exec(name);
  if (match === null) return undefined;
  const [, segment, field, component] = match;
  return { ...(segment === undefined ? {} : { segment }), field: Number(field), ...(component === undefined ? {} : { component: Number(component) }) };
}

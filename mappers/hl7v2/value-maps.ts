/**
 * The HL7 tables a mapping config may give value maps for (its `valueMaps` key): the tables of the coded fields whose
 * codes the mappers interpret, turning them into FHIR codes, statuses or standard codings. A sender that codes such a
 * field its own way (PID-8 '1' and '2', PV1-2 'IN' and 'OUT') maps like a standard sender once its config maps its
 * codes to the table's (mappedValue in datatypes.ts, which each builder calls where it reads these fields).
 *
 * Maps are keyed by the HL7 table the field is defined with, whatever the sender calls its own table: the table
 * names the fields the map applies to. Other tables are not listed because no mapper interprets their codes: those
 * fields become CodeableConcepts that keep the sender's coding, and local codes in them are translated by the
 * terminology ConceptMaps instead (README "Terminology").
 *
 * A map's values must be codes the mapper knows in that table, so that a typo in a config is reported when the
 * config is read rather than when a message fails or quietly maps to nothing.
 */

import { ADMINISTRATIVE_SEX } from './adt-common.ts';
import { ALLERGEN_TYPE, CRITICALITY, REACTION_SEVERITY } from './adt-allergy.ts';
import { ENCOUNTER_CLASS } from './adt-encounter.ts';
import { MARITAL_STATUS } from './adt-patient.ts';
import { CONTACT_ROLE, RELATIONSHIP } from './adt-related-person.ts';

export interface ValueMapTable {
  /** What the table codes. */
  meaning: string;
  /** The fields whose codes a map for this table changes. */
  fields: readonly string[];
  /** The codes the mappers know in this table: the values a map may give. */
  codes: readonly string[];
}

const codesOf = (...tables: ReadonlyArray<ReadonlyMap<string, unknown>>): string[] => [...new Set(tables.flatMap((table) => [...table.keys()]))].sort();

/** Table name as configs write it (HL7nnnn) -> where it applies and the codes it maps to. */
export const VALUE_MAP_TABLES: ReadonlyMap<string, ValueMapTable> = new Map([
  ['HL70001', { meaning: 'administrative sex', fields: ['PID-8', 'NK1-15'], codes: codesOf(ADMINISTRATIVE_SEX) }],
  ['HL70002', { meaning: 'marital status', fields: ['PID-16'], codes: codesOf(MARITAL_STATUS) }],
  ['HL70004', { meaning: 'patient class', fields: ['PV1-2'], codes: codesOf(ENCOUNTER_CLASS) }],
  // IN1-17 reads a subset of the codes NK1-3 reads.
  ['HL70063', { meaning: 'relationship', fields: ['NK1-3', 'IN1-17'], codes: codesOf(RELATIONSHIP) }],
  ['HL70127', { meaning: 'allergen type', fields: ['AL1-2'], codes: codesOf(ALLERGEN_TYPE) }],
  ['HL70128', { meaning: 'allergy severity', fields: ['AL1-4'], codes: codesOf(CRITICALITY, REACTION_SEVERITY) }],
  ['HL70131', { meaning: 'contact role', fields: ['NK1-7'], codes: codesOf(CONTACT_ROLE) }],
]);

/**
 * PID fields that FHIR R4 Patient carries as extensions, as the v2-to-FHIR IG's PID segment map names them: PID-6
 * mother's maiden name, PID-10 race and PID-22 ethnic group (US Core's extensions, which the IG uses), PID-17
 * religion, PID-23 birth place, PID-26 citizenship and PID-28 nationality.
 *
 * They make one `extension` list, so they follow the update rule of one element fed by several fields: a message that
 * sends any of them replaces the list with what it sends; one that sends none leaves the stored list; `""` in all the
 * fields it sends removes it.
 */
import { type Hl7Field, type Hl7Repetition, type Hl7Segment, fieldOf, isEmptyField, isExplicitNull } from '../../formats/hl7v2/index.ts';
import type { Hl7MappingOptions } from '../types.ts';
import { type CodeableConcept, type Coding, comp, toCodeableConcept } from './datatypes.ts';
import { listElement } from './drafts.ts';

export interface Extension {
  url: string;
  valueString?: string;
  valueAddress?: { text: string };
  valueCodeableConcept?: CodeableConcept;
  valueCoding?: Coding;
  extension?: Extension[];
}

const MOTHERS_MAIDEN_NAME = 'http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName';
const BIRTH_PLACE = 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace';
const RELIGION = 'http://hl7.org/fhir/StructureDefinition/patient-religion';
const CITIZENSHIP = 'http://hl7.org/fhir/StructureDefinition/patient-citizenship';
const NATIONALITY = 'http://hl7.org/fhir/StructureDefinition/patient-nationality';
const US_CORE_RACE = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race';
const US_CORE_ETHNICITY = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity';
/** CDC Race & Ethnicity code set (HL7 table 0005 and 0189 codes as US senders send them, e.g. 2106-3). */
const CDC_RACE_ETHNICITY = 'urn:oid:2.16.840.1.113883.6.238';

/** The OMB categories of US Core race (the others of the CDC code set are detailed races) and ethnicity. */
const OMB_RACE = new Set(['1002-5', '2028-9', '2054-5', '2076-8', '2106-3']);
const OMB_ETHNICITY = new Set(['2135-2', '2186-5']);
const CDC_CODE = /^\d{4}-\d$/;

/** The Patient.extension list from one PID (undefined: none of its fields sent; null: cleared). */
export function patientExtensions(pid: Hl7Segment, options: Hl7MappingOptions): Extension[] | null | undefined {
  const single: Array<readonly [Hl7Field, (repetition: Hl7Repetition) => Extension | undefined]> = [
    [firstOnly(fieldOf(pid, 6)), (rep) => text(MOTHERS_MAIDEN_NAME, [comp(rep, 1), comp(rep, 2)].filter((part) => part !== '').join(' '))],
    [firstOnly(fieldOf(pid, 17)), (rep) => coded(RELIGION, toCodeableConcept(rep, options, 'HL70006'))],
    [firstOnly(fieldOf(pid, 23)), (rep) => (comp(rep, 1) === '' ? undefined : { url: BIRTH_PLACE, valueAddress: { text: comp(rep, 1) } })],
    [fieldOf(pid, 26), (rep) => nested(CITIZENSHIP, toCodeableConcept(rep, options, 'HL70171'))],
    [firstOnly(fieldOf(pid, 28)), (rep) => nested(NATIONALITY, toCodeableConcept(rep, options, 'HL70212'))],
  ];
  const race = fieldOf(pid, 10);
  const ethnicity = fieldOf(pid, 22);
  const fields = [...single.map(([field]) => field), race, ethnicity];
  if (fields.every((field) => isEmptyField(field) && !isExplicitNull(field))) return undefined;
  const list = listElement(single) ?? [];
  // US Core has one race and one ethnicity extension, holding every category sent (PID-10 and PID-22 repeat).
  for (const [url, field, categories] of [[US_CORE_RACE, race, OMB_RACE], [US_CORE_ETHNICITY, ethnicity, OMB_ETHNICITY]] as const) {
    const combined = omb(url, field, categories);
    if (combined !== undefined) list.push(combined);
  }
  return list.length > 0 ? list : fields.some((field) => isExplicitNull(field)) ? null : undefined;
}

/** A field whose FHIR extension takes one value (a mother has one maiden name): its first repetition only. */
function firstOnly(field: Hl7Field): Hl7Field {
  return field.slice(0, 1);
}

function text(url: string, value: string): Extension | undefined {
  return value === '' ? undefined : { url, valueString: value };
}

function coded(url: string, concept: CodeableConcept | undefined): Extension | undefined {
  return concept === undefined ? undefined : { url, valueCodeableConcept: concept };
}

function nested(url: string, concept: CodeableConcept | undefined): Extension | undefined {
  return concept === undefined ? undefined : { url, extension: [{ url: 'code', valueCodeableConcept: concept }] };
}

/**
 * A race or ethnicity field as US Core's extension: each OMB category code as ombCategory, each other CDC code as
 * detailed, and the text US Core requires: the displays (else codes) sent, joined. A local code keeps only the text.
 */
function omb(url: string, field: Hl7Field, categories: ReadonlySet<string>): Extension | undefined {
  const parts: Extension[] = [];
  const labels: string[] = [];
  for (const repetition of field) {
    const code = comp(repetition, 1);
    const display = comp(repetition, 2);
    if (code === '' && display === '') continue;
    labels.push(display || code);
    const coding: Coding = { system: CDC_RACE_ETHNICITY, code, ...(display ? { display } : {}) };
    if (categories.has(code)) parts.push({ url: 'ombCategory', valueCoding: coding });
    else if (CDC_CODE.test(code)) parts.push({ url: 'detailed', valueCoding: coding });
  }
  if (labels.length === 0) return undefined;
  return { url, extension: [...parts, { url: 'text', valueString: labels.join(', ') }] };
}

/**
 * GT1 (guarantor) -> Account.guarantor: who is responsible for paying the account, one entry per GT1. The IG's message
 * maps list GT1 without a segment map, so GT1 maps by its field definitions onto R4 Account.guarantor, as
 * FHIR-Converter maps it: the party is the Organization of GT1-21 guarantor organization name (XON[Organization])
 * when sent, else the Patient when GT1-11 says the guarantor is the patient (SEL), else a RelatedPerson of the
 * guarantor; GT1-22 billing hold flag is onHold, GT1-13/14 the period.
 *
 * The guarantor's RelatedPerson: GT1-3 name, GT1-2 guarantor number as identifier, GT1-5 address, GT1-6 home and GT1-7
 * business phone, GT1-8 birth date, GT1-9 sex, GT1-11 relationship to the patient (table 0063, with the codings NK1
 * gets). It is keyed by the patient with GT1-2 when sent (the number names the guarantor in every message), else with
 * the name, and `GT1`, apart from the RelatedPerson an NK1 of the same person makes (adt-related-person.ts): drafts of
 * one resource from two segments would replace each other's relationships and numbers. A GT1 that names nobody
 * (neither GT1-21, SEL, a name nor a number) gives no entry.
 */

import { type Hl7Segment, fieldOf, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { deterministicId } from '../ids.ts';
import type { ResourceDraft } from '../types.ts';

import { addressElement, administrativeGender, nameElement, periodElement, sendingFacility, telecomElement } from './adt-common.ts';
import { yesNo } from './adt-patient.ts';
import { RELATIONSHIP } from './adt-related-person.ts';
import { type Reference, comp, mappedValue, toCodeableConcept, toFhirDate, toIdentifier, withStandardCoding } from './datatypes.ts';
import { organizationReference } from './directory.ts';
import { element, listElement, updateDraft } from './drafts.ts';
import type { MappingContext } from './context.ts';

/** One Account.guarantor entry. */
export interface Guarantor {
  party: Reference;
  onHold?: boolean;
  period?: { start?: string; end?: string };
}

/** The guarantors of the message's GT1 segments, with the RelatedPerson drafts their parties need. */
export interface Guarantors {
  /** Account.guarantor: undefined without GT1 (the stored list stays). */
  guarantor?: Guarantor[];
  relatedPersons: ResourceDraft[];
}

export function guarantorsOf(patient: string, context: MappingContext): Guarantors {
  const segments = segmentsNamed(context.message, 'GT1');
  const relatedPersons: ResourceDraft[] = [];
  const guarantor: Guarantor[] = [];
  for (const gt1 of segments) {
    const party = partyOf(gt1, patient, context, relatedPersons);
    if (party === undefined) continue;
    const { timeZone } = context.options;
    const onHold = element(fieldOf(gt1, 22), (rep) => yesNo(comp(rep, 1), 'GT1-22')) ?? undefined;
    const period = periodElement(fieldOf(gt1, 13), fieldOf(gt1, 14), ['GT1-13', 'GT1-14'], timeZone) ?? undefined;
    guarantor.push({ party, ...(onHold === undefined ? {} : { onHold }), ...(period === undefined ? {} : { period }) });
  }
  return { ...(guarantor.length > 0 ? { guarantor } : {}), relatedPersons };
}

function partyOf(gt1: Hl7Segment, patient: string, context: MappingContext, relatedPersons: ResourceDraft[]): Reference | undefined {
  const organization = element(fieldOf(gt1, 21), (rep) => organizationReference(rep, 'GT1-21', context));
  if (organization) return organization;
  if (relationshipCode(gt1, context) === 'SEL') return { reference: `Patient/${patient}` };
  const person = guarantorPerson(gt1, patient, context);
  if (person === undefined) return undefined;
  relatedPersons.push(person);
  return { reference: `RelatedPerson/${person.id}` };
}

function relationshipCode(gt1: Hl7Segment, context: MappingContext): string {
  return mappedValue(context.options, 'HL70063', comp(fieldOf(gt1, 11)[0], 1)).toUpperCase();
}

function guarantorPerson(gt1: Hl7Segment, patient: string, context: MappingContext): ResourceDraft | undefined {
  const { options } = context;
  const { timeZone } = options;
  const number = element(fieldOf(gt1, 2), (rep) => toIdentifier(rep, 'GT1-2', options, sendingFacility(context))) ?? undefined;
  const named = fieldOf(gt1, 3).find((rep) => comp(rep, 1) !== '' || comp(rep, 2) !== '');
  const key = number !== undefined ? `${number.system ?? ''}|${number.value ?? ''}` : named === undefined ? undefined : `${comp(named, 1)}^${comp(named, 2)}`.toUpperCase();
  if (key === undefined) return undefined;
  return updateDraft('RelatedPerson', deterministicId('RelatedPerson', patient, 'GT1', key), {
    identifier: number === undefined ? undefined : [number],
    active: true,
    patient: { reference: `Patient/${patient}` },
    relationship: listElement([
      [fieldOf(gt1, 11), (rep) => withStandardCoding(toCodeableConcept(rep, options, 'HL70063'), RELATIONSHIP.get(mappedValue(options, 'HL70063', comp(rep, 1)).toUpperCase()))],
    ]),
    name: nameElement([[fieldOf(gt1, 3), 'GT1-3']], timeZone),
    telecom: telecomElement([
      [fieldOf(gt1, 6), 'home'],
      [fieldOf(gt1, 7), 'work'],
    ]),
    gender: element(fieldOf(gt1, 9), (rep) => administrativeGender(comp(rep, 1), 'GT1-9', options)),
    birthDate: element(fieldOf(gt1, 8), (rep) => toFhirDate(comp(rep, 1), 'GT1-8')),
    address: addressElement(fieldOf(gt1, 5), 'GT1-5', timeZone),
  });
}

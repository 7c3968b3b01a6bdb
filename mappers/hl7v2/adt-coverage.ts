/**
 * IN1 (insurance) -> Coverage, one per IN1 segment, after the v2-to-FHIR IG segment map IN1[Coverage]: IN1-3/IN1-4
 * payor, IN1-10/IN1-11 insured's group employer as policyHolder (XON[Organization]), IN1-12/13 period, IN1-15 type,
 * IN1-16 name of insured as subscriber (the Patient when IN1-17 is SEL, a RelatedPerson otherwise), IN1-17
 * relationship; and, where the IG leaves fields open, IN1-2 health plan and IN1-8/9 group as Coverage.class (plan,
 * group), IN1-36 policy number as identifier and subscriberId, and the insured's IN1-18 birth date, IN1-19 address and
 * IN1-43 sex on the subscriber's RelatedPerson (the fields that describe that person, which the IG leaves unmapped).
 *
 * IN2 (insurance additional information) follows its IN1. The IG publishes no IN2 map (its draft left every field
 * without a target and was withdrawn), so IN2 maps by its field definitions, where FHIR-Converter maps it too:
 * IN2-61 patient member number as another identifier, IN2-72 patient's relationship to the insured (table 0344,
 * already in Coverage.relationship's direction) as relationship when IN1-17 is empty, and IN2-63 insured's home phone
 * on the subscriber's RelatedPerson. Its other fields (employment, military, Medicare/Medicaid, the patient's own
 * demographics repeated) stay in the raw message.
 *
 * The payor is an Organization (insurerOf). The id is the patient's id with the payor, plan and policy number,
 * which together name one policy.
 */

import { type Hl7Repetition, type Hl7Segment, fieldOf, isExplicitNull, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { deterministicId } from '../ids.ts';
import { tolerate } from '../issues.ts';
import { eachSegment } from './clinical-common.ts';
import type { ResourceDraft } from '../types.ts';

import { addressElement, administrativeGender, nameElement, patientId, periodElement, sendingFacility, telecomElement } from './adt-common.ts';
import { RELATIONSHIP as PERSONAL_RELATIONSHIP } from './adt-related-person.ts';
import {
  type CodeableConcept,
  type Coding,
  type ContactPoint,
  type Identifier,
  type Reference,
  V2_0203_SYSTEM,
  authorityFromComponent,
  codeTable,
  comp,
  mappedValue,
  pruneEmpty,
  toAddress,
  toCodeableConcept,
  toContactPoint,
  toFhirDate,
  toIdentifier,
  withStandardCoding,
} from './datatypes.ts';
import { assignedIdentifier, organizationOf } from './directory.ts';
import { codeOf, element, listElement, repetitionText, updateDraft } from './drafts.ts';
import type { MappingContext } from './context.ts';

const COVERAGE_CLASS = 'http://terminology.hl7.org/CodeSystem/coverage-class';
const SUBSCRIBER_RELATIONSHIP = 'http://terminology.hl7.org/CodeSystem/subscriber-relationship';

/**
 * HL7 table 0063 (relationship, IN1-17) -> R4 subscriber-relationship, for the codes with an equivalent: the
 * patient's own policy, a spouse's, a partner's (common law), a parent's (the patient is their child) and a child's.
 * The direction follows the FHIR definition: the beneficiary's relationship to the subscriber.
 */
const RELATIONSHIP = codeTable<Coding>({
  SEL: { system: SUBSCRIBER_RELATIONSHIP, code: 'self', display: 'Self' },
  SPO: { system: SUBSCRIBER_RELATIONSHIP, code: 'spouse', display: 'Spouse' },
  DOM: { system: SUBSCRIBER_RELATIONSHIP, code: 'common', display: 'Common Law Spouse' },
  PAR: { system: SUBSCRIBER_RELATIONSHIP, code: 'child', display: 'Child' },
  MTH: { system: SUBSCRIBER_RELATIONSHIP, code: 'child', display: 'Child' },
  FTH: { system: SUBSCRIBER_RELATIONSHIP, code: 'child', display: 'Child' },
  CHD: { system: SUBSCRIBER_RELATIONSHIP, code: 'parent', display: 'Parent' },
  OTH: { system: SUBSCRIBER_RELATIONSHIP, code: 'other', display: 'Other' },
});

/**
 * HL7 table 0344 (patient's relationship to insured, IN2-72) -> R4 subscriber-relationship, for the codes with an
 * equivalent: 01 the patient is the insured; 02 spouse; 03-06 natural, step and foster child; 15 injured plaintiff;
 * 18 parent. The table already speaks from the patient's side, as Coverage.relationship does.
 */
const PATIENT_RELATIONSHIP = codeTable<Coding>({
  '01': { system: SUBSCRIBER_RELATIONSHIP, code: 'self', display: 'Self' },
  '02': { system: SUBSCRIBER_RELATIONSHIP, code: 'spouse', display: 'Spouse' },
  '03': { system: SUBSCRIBER_RELATIONSHIP, code: 'child', display: 'Child' },
  '04': { system: SUBSCRIBER_RELATIONSHIP, code: 'child', display: 'Child' },
  '05': { system: SUBSCRIBER_RELATIONSHIP, code: 'child', display: 'Child' },
  '06': { system: SUBSCRIBER_RELATIONSHIP, code: 'child', display: 'Child' },
  '15': { system: SUBSCRIBER_RELATIONSHIP, code: 'injured', display: 'Injured Party' },
  '18': { system: SUBSCRIBER_RELATIONSHIP, code: 'parent', display: 'Parent' },
});

export function buildCoverages(context: MappingContext): ResourceDraft[] {
  const segments = segmentsNamed(context.message, 'IN1');
  if (segments.length === 0) return [];
  const patient = patientId(context);
  // An IN1 that cannot be read (no insurer) costs its own Coverage, at its position, not the message's other plans.
  return eachSegment(
    segments,
    (in1) => {
      // IN2 follows its IN1 directly (the INSURANCE group: IN1, [IN2], [{IN3}], ...).
      const next = context.message.segments[context.message.segments.indexOf(in1) + 1];
      return buildCoverage(in1, next?.name === 'IN2' ? next : undefined, patient, context);
    },
    context.message,
  ).flat();
}

/** The insured's RelatedPerson (when the insured is not the patient), then the Coverage that names it. */
function buildCoverage(in1: Hl7Segment, in2: Hl7Segment | undefined, patient: string, context: MappingContext): ResourceDraft[] {
  const { options } = context;
  const { timeZone } = options;
  const payor = payorOf(in1, context);
  const plan = fieldOf(in1, 2)[0];
  const policyNumber = comp(fieldOf(in1, 36)[0], 1);
  const id = deterministicId('Coverage', patient, payorKey(payor), `${comp(plan, 3)}|${comp(plan, 1)}`, policyNumber);

  const period = periodElement(fieldOf(in1, 12), fieldOf(in1, 13), ['IN1-12', 'IN1-13'], timeZone);
  const insured = insuredOf(in1, in2, context);
  const insuredPerson = insured === 'other' ? buildInsured(in1, in2, patient, context) : undefined;
  const coverage = updateDraft('Coverage', id, {
    identifier: listElement([
      [fieldOf(in1, 36), (rep) => memberNumber(comp(rep, 1))],
      [fieldOf(in2, 61), (rep) => (comp(rep, 1) === comp(fieldOf(in1, 36)[0], 1) ? undefined : toIdentifier(rep, 'IN2-61', options, sendingFacility(context)))],
    ]),
    // An IN1 the sender still sends is a policy it still holds for the patient.
    status: 'active',
    type: element(fieldOf(in1, 15), (rep) => toCodeableConcept(rep, options, 'HL70086')),
    policyHolder: policyHolderOf(in1, context),
    subscriber: insured === 'self' ? { reference: `Patient/${patient}` } : insuredPerson === undefined ? undefined : { reference: `RelatedPerson/${insuredPerson.id}` },
    subscriberId: element(fieldOf(in1, 36), (rep) => comp(rep, 1) || undefined),
    beneficiary: { reference: `Patient/${patient}` },
    relationship: relationshipElement(in1, in2, context),
    period,
    payor: [insurerOf(in1, payor, context)],
    class: coverageClasses(in1),
  });
  return insuredPerson === undefined ? [coverage] : [insuredPerson, coverage];
}

function memberNumber(value: string): Identifier | undefined {
  return value === '' ? undefined : { type: { coding: [{ system: V2_0203_SYSTEM, code: 'MB', display: 'Member Number' }] }, value };
}

/**
 * Who holds the policy, as IN1-17 says (after the config's HL70063 value map), else IN2-72: the patient (SEL, 01),
 * someone else, or not said.
 */
function insuredOf(in1: Hl7Segment, in2: Hl7Segment | undefined, context: MappingContext): 'self' | 'other' | undefined {
  const relationshipCode = mappedValue(context.options, 'HL70063', codeOf(fieldOf(in1, 17))).toUpperCase();
  if (relationshipCode !== '') return relationshipCode === 'SEL' ? 'self' : 'other';
  const patientRelationshipCode = codeOf(fieldOf(in2, 72));
  if (patientRelationshipCode !== '') return patientRelationshipCode === '01' ? 'self' : 'other';
  return undefined;
}

/**
 * The insured as a RelatedPerson, after the IG's IN1-16 subscriber(RelatedPerson): IN1-16 name, IN1-17 the insured's
 * relationship to the patient (the RelatedPerson's direction; table 0063 with the codings NK1 gets), IN1-18 birth
 * date, IN1-19 address, IN1-43 sex, IN2-63 home phone. Undefined when IN1-16 names nobody: a subscriber is a person.
 *
 * Keyed by the patient and the insured's name with `IN1`, apart from the RelatedPerson an NK1 of the same name makes
 * (adt-related-person.ts): each segment describes its own role, and drafts of one resource from both would replace
 * each other's relationships and numbers.
 */
function buildInsured(in1: Hl7Segment, in2: Hl7Segment | undefined, patient: string, context: MappingContext): ResourceDraft | undefined {
  const { options } = context;
  const { timeZone } = options;
  const named = fieldOf(in1, 16).find((rep) => comp(rep, 1) !== '' || comp(rep, 2) !== '');
  if (named === undefined) return undefined;
  const key = `${comp(named, 1)}^${comp(named, 2)}`.toUpperCase();
  return updateDraft('RelatedPerson', deterministicId('RelatedPerson', patient, 'IN1', key), {
    active: true,
    patient: { reference: `Patient/${patient}` },
    relationship: listElement([
      [fieldOf(in1, 17), (rep) => withStandardCoding(toCodeableConcept(rep, options, 'HL70063'), PERSONAL_RELATIONSHIP.get(mappedValue(options, 'HL70063', comp(rep, 1)).toUpperCase()))],
    ]),
    name: nameElement([[fieldOf(in1, 16), 'IN1-16']], timeZone),
    telecom: telecomElement([[fieldOf(in2, 63), 'home']]),
    gender: element(fieldOf(in1, 43), (rep) => administrativeGender(comp(rep, 1), 'IN1-43', options)),
    birthDate: element(fieldOf(in1, 18), (rep) => toFhirDate(comp(rep, 1), 'IN1-18')),
    address: addressElement(fieldOf(in1, 19), 'IN1-19', timeZone),
  });
}

/**
 * IN1-11 insured's group employer name (XON[Organization]) with IN1-10 insured's group employer id as its identifier
 * where the XON carries none, as the IG's policyHolder(Organization). An IN1-10 typed SN (subscriber number) is the
 * insured's own number, which the IG puts in R5's subscriberId extension rather than on the employer; R4 has no place
 * for a second subscriber id, so it is left out. Undefined when neither is sent.
 */
function policyHolderOf(in1: Hl7Segment, context: MappingContext): Reference | undefined {
  const employer = fieldOf(in1, 11).find((rep) => comp(rep, 1) !== '' || comp(rep, 10) !== '' || comp(rep, 3) !== '');
  const employerId = fieldOf(in1, 10).find((rep) => comp(rep, 1) !== '' && comp(rep, 5).toUpperCase() !== 'SN');
  if (employer === undefined && employerId === undefined) return undefined;
  // An authority that cannot be read (IN1-10's CX-4 a malformed UUID) costs the policy holder, not the Coverage.
  return tolerate(
    () => {
      const ownId = employer === undefined ? '' : comp(employer, 10) || comp(employer, 3);
      const identifier =
        ownId !== ''
          ? assignedIdentifier(ownId, authorityFromComponent(employer!, 6), 'IN1-11', context, comp(employer!, 7))
          : employerId === undefined
            ? undefined
            : assignedIdentifier(comp(employerId, 1), authorityFromComponent(employerId, 4), 'IN1-10', context, comp(employerId, 5));
      return organizationOf(identifier, employer === undefined ? '' : comp(employer, 1), 'IN1-11', context);
    },
    () => repetitionText(employer ?? employerId),
  );
}

interface Payor {
  identifier?: Identifier;
  display?: string;
}

/** IN1-3 insurance company id (its first identifier) and IN1-4 insurance company name (XON-1); one of them is required. */
function payorOf(in1: Hl7Segment, context: MappingContext): Payor {
  const idField = fieldOf(in1, 3);
  const nameField = fieldOf(in1, 4);
  const identifier = isExplicitNull(idField)
    ? undefined
    : idField.map((rep) => toIdentifier(rep, 'IN1-3', context.options, sendingFacility(context))).find((value) => value !== undefined);
  const display = isExplicitNull(nameField) ? undefined : nameField.map((rep) => comp(rep, 1)).find((name) => name !== '');
  const payor = pruneEmpty<Payor>({ identifier: identifier === undefined ? undefined : { system: identifier.system, value: identifier.value }, display });
  if (payor === undefined) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'IN1-3: the insurance company has neither an id (IN1-3) nor a name (IN1-4)', {
      location: 'IN1-3',
    });
  }
  return payor;
}

/**
 * The payor as an Organization (IN1-4 XON[Organization] with IN1-5 its address, IN1-7 its phone numbers), keyed by
 * IN1-3 insurance company id when sent (the IG's current IN1 map leaves IN1-3 out, but the id is what names one
 * insurer in every message, where names are spelled as each sender likes), else by its name within the sender.
 */
function insurerOf(in1: Hl7Segment, payor: Payor, context: MappingContext): Reference {
  const idField = fieldOf(in1, 3);
  const first = isExplicitNull(idField) ? undefined : idField.find((rep) => comp(rep, 1) !== '');
  const identifier = first === undefined ? undefined : assignedIdentifier(comp(first, 1), authorityFromComponent(first, 4), 'IN1-3', context, comp(first, 5));
  const { timeZone } = context.options;
  const address = listElement([[fieldOf(in1, 5), (rep) => toAddress(rep, 'IN1-5', timeZone)]]) ?? undefined;
  // An organization's numbers are never its home (org-3): a PRN use is left out.
  const telecom = listElement([[fieldOf(in1, 7), (rep) => organizationContact(toContactPoint(rep, 'work'))]]) ?? undefined;
  // payorOf has made sure there is an id or a name.
  return organizationOf(identifier, payor.display ?? '', 'IN1-4', context, { address, telecom })!;
}

function organizationContact(contact: ContactPoint | undefined): ContactPoint | undefined {
  return contact?.use === 'home' ? { ...contact, use: undefined } : contact;
}

function payorKey(payor: Payor): string {
  return payor.identifier !== undefined ? `${payor.identifier.system ?? ''}|${payor.identifier.value ?? ''}` : `name|${(payor.display ?? '').toUpperCase()}`;
}

function relationship(repetition: Hl7Repetition, context: MappingContext): CodeableConcept | undefined {
  const code = mappedValue(context.options, 'HL70063', comp(repetition, 1)).toUpperCase();
  return withStandardCoding(toCodeableConcept(repetition, context.options, 'HL70063'), RELATIONSHIP.get(code));
}

/** IN1-17 (the IG's source), else IN2-72 when IN1-17 is not sent at all. */
function relationshipElement(in1: Hl7Segment, in2: Hl7Segment | undefined, context: MappingContext): CodeableConcept | null | undefined {
  const insured = element(fieldOf(in1, 17), (rep) => relationship(rep, context));
  return insured !== undefined ? insured : element(fieldOf(in2, 72), (rep) => patientRelationship(rep, context));
}

function patientRelationship(repetition: Hl7Repetition, context: MappingContext): CodeableConcept | undefined {
  return withStandardCoding(toCodeableConcept(repetition, context.options, 'HL70344'), PATIENT_RELATIONSHIP.get(comp(repetition, 1)));
}

/** Coverage.class: IN1-2 health plan (value the plan id, name its text) and IN1-8 group number with IN1-9 group name. */
function coverageClasses(in1: Hl7Segment): unknown {
  const classes: Array<{ type: CodeableConcept; value: string; name?: string }> = [];
  const plan = fieldOf(in1, 2)[0];
  if (comp(plan, 1) !== '') classes.push(pruneEmpty({ type: classType('plan', 'Plan'), value: comp(plan, 1), name: comp(plan, 2) })!);
  const group = comp(fieldOf(in1, 8)[0], 1);
  if (group !== '') classes.push(pruneEmpty({ type: classType('group', 'Group'), value: group, name: comp(fieldOf(in1, 9)[0], 1) })!);
  if (classes.length > 0) return classes;
  return isExplicitNull(fieldOf(in1, 2)) && isExplicitNull(fieldOf(in1, 8)) ? null : undefined;
}

function classType(code: string, display: string): CodeableConcept {
  return { coding: [{ system: COVERAGE_CLASS, code, display }] };
}

/**
 * IN1 (insurance) -> Coverage, one per IN1 segment, after the v2-to-FHIR IG segment map IN1[Coverage]: IN1-3/IN1-4
 * payor, IN1-12/13 period, IN1-15 type, IN1-17 relationship; and, where the IG leaves fields open, IN1-2 health
 * plan and IN1-8/9 group as Coverage.class (plan, group), IN1-36 policy number as identifier and subscriberId.
 *
 * The payor is an Organization (insurerOf). The id is the patient's id with the payor, plan and policy number,
 * which together name one policy.
 */

import { type Hl7Repetition, type Hl7Segment, fieldOf, isExplicitNull, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { deterministicId } from '../ids.ts';
import type { ResourceDraft } from '../types.ts';

import { patientId, periodElement, sendingFacility } from './adt-common.ts';
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
  toIdentifier,
  withStandardCoding,
} from './datatypes.ts';
import { assignedIdentifier, organizationOf } from './directory.ts';
import { codeOf, element, listElement, updateDraft } from './drafts.ts';
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

export function buildCoverages(context: MappingContext): ResourceDraft[] {
  const segments = segmentsNamed(context.message, 'IN1');
  if (segments.length === 0) return [];
  const patient = patientId(context);
  return segments.map((in1) => buildCoverage(in1, patient, context));
}

function buildCoverage(in1: Hl7Segment, patient: string, context: MappingContext): ResourceDraft {
  const { options } = context;
  const { timeZone } = options;
  const payor = payorOf(in1, context);
  const plan = fieldOf(in1, 2)[0];
  const policyNumber = comp(fieldOf(in1, 36)[0], 1);
  const id = deterministicId('Coverage', patient, payorKey(payor), `${comp(plan, 3)}|${comp(plan, 1)}`, policyNumber);

  const period = periodElement(fieldOf(in1, 12), fieldOf(in1, 13), ['IN1-12', 'IN1-13'], timeZone);
  const relationshipCode = mappedValue(options, 'HL70063', codeOf(fieldOf(in1, 17))).toUpperCase();
  return updateDraft('Coverage', id, {
    identifier: element(fieldOf(in1, 36), (rep) => {
      const value = comp(rep, 1);
      return value === '' ? undefined : [{ type: { coding: [{ system: V2_0203_SYSTEM, code: 'MB', display: 'Member Number' }] }, value }];
    }),
    // An IN1 the sender still sends is a policy it still holds for the patient.
    status: 'active',
    type: element(fieldOf(in1, 15), (rep) => toCodeableConcept(rep, options, 'HL70086')),
    subscriber: relationshipCode === 'SEL' ? { reference: `Patient/${patient}` } : undefined,
    subscriberId: element(fieldOf(in1, 36), (rep) => comp(rep, 1) || undefined),
    beneficiary: { reference: `Patient/${patient}` },
    relationship: element(fieldOf(in1, 17), (rep) => relationship(rep, context)),
    period,
    payor: [insurerOf(in1, payor, context)],
    class: coverageClasses(in1),
  });
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

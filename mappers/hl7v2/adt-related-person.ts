/**
 * NK1 (next of kin / associated parties) -> RelatedPerson, one per NK1 segment, after the v2-to-FHIR IG segment
 * map NK1[RelatedPerson]: NK1-2 and NK1-30 name, NK1-3 and NK1-7 relationship, NK1-4 address, NK1-5 and NK1-6
 * telecom, NK1-8/9 period, NK1-15 gender, NK1-16 birth date; and every NK1 is also one of the Patient's contacts
 * (Patient.contact, the IG's NK1[Patient] map; patientContacts below, which adt-patient.ts calls).
 *
 * The IG's ADT message maps make a RelatedPerson only of an NK1 whose NK1-3 is not an organization's role (EMR
 * employer, and table 0131's E employer, F federal agency, I insurance company, S state agency, which senders put in
 * NK1-3 too): an employer or an agency is no person related to the patient, and is only a contact, with its
 * NK1-13 Organization. Other converters (FHIR-Converter) make a RelatedPerson of every NK1; the IG is followed.
 *
 * The id is the patient's id with the contact's name (NK1-2, else NK1-30), so that the same person is the same
 * resource whatever order the sender lists contacts in; NK1-1 (set id) is only a position in this message. A
 * contact without a name falls back to its set id.
 */

import { type Hl7Segment, fieldOf, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { deterministicId } from '../ids.ts';
import type { ResourceDraft } from '../types.ts';

import { addressElement, administrativeGender, nameElement, patientId, periodElement, telecomElement } from './adt-common.ts';
import {
  type Address,
  type CodeableConcept,
  type Coding,
  type ContactPoint,
  type HumanName,
  type Reference,
  codeTable,
  comp,
  mappedValue,
  toCodeableConcept,
  toFhirDate,
  withStandardCoding,
} from './datatypes.ts';
import { organizationReference } from './directory.ts';
import { element, listElement, updateDraft } from './drafts.ts';
import { eachSegment } from './clinical-common.ts';
import type { MappingContext } from './context.ts';

const V3_ROLE_CODE = 'http://terminology.hl7.org/CodeSystem/v3-RoleCode';
const V2_0063 = 'http://terminology.hl7.org/CodeSystem/v2-0063';
const V2_0131 = 'http://terminology.hl7.org/CodeSystem/v2-0131';

/**
 * HL7 table 0063 (relationship) -> the coding the v2-to-FHIR IG ConceptMap table-hl70063 gives: v3 RoleCode where a
 * personal relationship exists, v2-0131 for the contact roles (employer, emergency contact, unknown, other), and the
 * v2-0063 code itself for relationships v3 has no code for (guardian, care giver, ward of court, ...).
 */
export const RELATIONSHIP = codeTable<Coding>({
  SEL: { system: V3_ROLE_CODE, code: 'ONESELF', display: 'self' },
  SPO: { system: V3_ROLE_CODE, code: 'SPS', display: 'spouse' },
  DOM: { system: V3_ROLE_CODE, code: 'SIGOTHR', display: 'significant other' },
  CHD: { system: V3_ROLE_CODE, code: 'CHILD', display: 'child' },
  GCH: { system: V3_ROLE_CODE, code: 'GRNDCHILD', display: 'grandchild' },
  NCH: { system: V3_ROLE_CODE, code: 'NCHILD', display: 'natural child' },
  SCH: { system: V3_ROLE_CODE, code: 'STPCHLD', display: 'step child' },
  FCH: { system: V3_ROLE_CODE, code: 'CHLDFOST', display: 'foster child' },
  DEP: { system: V2_0063, code: 'DEP', display: 'Handicapped dependent' },
  WRD: { system: V2_0063, code: 'WRD', display: 'Ward of court' },
  PAR: { system: V3_ROLE_CODE, code: 'PRN', display: 'parent' },
  MTH: { system: V3_ROLE_CODE, code: 'MTH', display: 'mother' },
  FTH: { system: V3_ROLE_CODE, code: 'FTH', display: 'father' },
  CGV: { system: V2_0063, code: 'CGV', display: 'Care giver' },
  GRD: { system: V2_0063, code: 'GRD', display: 'Guardian' },
  GRP: { system: V3_ROLE_CODE, code: 'GRPRN', display: 'grandparent' },
  EXF: { system: V3_ROLE_CODE, code: 'EXT', display: 'extended family member' },
  SIB: { system: V3_ROLE_CODE, code: 'SIB', display: 'sibling' },
  BRO: { system: V3_ROLE_CODE, code: 'BRO', display: 'brother' },
  SIS: { system: V3_ROLE_CODE, code: 'SIS', display: 'sister' },
  FND: { system: V3_ROLE_CODE, code: 'FRND', display: 'unrelated friend' },
  OAD: { system: V2_0063, code: 'OAD', display: 'Other adult' },
  EME: { system: V2_0063, code: 'EME', display: 'Employee' },
  EMR: { system: V2_0131, code: 'E', display: 'Employer' },
  ASC: { system: V2_0063, code: 'ASC', display: 'Associate' },
  EMC: { system: V2_0131, code: 'C', display: 'Emergency Contact' },
  OWN: { system: V2_0063, code: 'OWN', display: 'Owner' },
  TRA: { system: V2_0063, code: 'TRA', display: 'Trainer' },
  MGR: { system: V2_0063, code: 'MGR', display: 'Manager' },
  NON: { system: V2_0063, code: 'NON', display: 'None' },
  UNK: { system: V2_0131, code: 'U', display: 'Unknown' },
  OTH: { system: V2_0131, code: 'O', display: 'Other' },
});

/** HL7 table 0131 (contact role), its suggested codes, which R4's RelatedPerson relationship value set includes. */
export const CONTACT_ROLE = codeTable<Coding>({
  C: { system: V2_0131, code: 'C', display: 'Emergency Contact' },
  E: { system: V2_0131, code: 'E', display: 'Employer' },
  F: { system: V2_0131, code: 'F', display: 'Federal Agency' },
  I: { system: V2_0131, code: 'I', display: 'Insurance Company' },
  N: { system: V2_0131, code: 'N', display: 'Next-of-Kin' },
  O: { system: V2_0131, code: 'O', display: 'Other' },
  S: { system: V2_0131, code: 'S', display: 'State Agency' },
  U: { system: V2_0131, code: 'U', display: 'Unknown' },
});

/** NK1-3 codes (after the config's HL70063 value map) of an organization's role: no RelatedPerson (see the file comment). */
const ORGANIZATION_ROLES = new Set(['EMR', 'E', 'F', 'I', 'S']);

export function buildRelatedPersons(context: MappingContext): ResourceDraft[] {
  const segments = segmentsNamed(context.message, 'NK1');
  if (segments.length === 0) return [];
  const patient = patientId(context);
  const used = new Set<string>();
  // An NK1 that cannot be read (no name, no set id) costs its own RelatedPerson, at its position, not the others.
  return eachSegment(
    segments,
    (nk1, index) => {
      if (ORGANIZATION_ROLES.has(relationshipCode(nk1, context))) return [];
      let key = contactKey(nk1);
      // Two contacts with the same name in one message are two people: keep them apart by position.
      if (used.has(key)) key = `${key}#${comp(fieldOf(nk1, 1)[0], 1) || String(index + 1)}`;
      used.add(key);
      return [buildRelatedPerson(nk1, deterministicId('RelatedPerson', patient, key), patient, context)];
    },
    context.message,
  ).flat();
}

function relationshipCode(nk1: Hl7Segment, context: MappingContext): string {
  return mappedValue(context.options, 'HL70063', comp(fieldOf(nk1, 3)[0], 1)).toUpperCase();
}

/** The contact's name, normalised (family and given, upper case), else 'NK1-1:<set id>'. */
function contactKey(nk1: Hl7Segment): string {
  for (const field of [2, 30]) {
    for (const repetition of fieldOf(nk1, field)) {
      const family = comp(repetition, 1, 1);
      const given = comp(repetition, 2);
      if (family !== '' || given !== '') return `${family}^${given}`.toUpperCase();
    }
  }
  const setId = comp(fieldOf(nk1, 1)[0], 1);
  if (setId === '') {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'NK1-2: the contact has no name (NK1-2, NK1-30) and no set id (NK1-1)', {
      location: 'NK1-2',
    });
  }
  return `NK1-1:${setId}`;
}

/** NK1-3 relationship and NK1-7 contact role, each with the coding the IG's ConceptMap gives. */
function relationships(nk1: Hl7Segment, context: MappingContext): CodeableConcept[] | null | undefined {
  const { options } = context;
  return listElement([
    [fieldOf(nk1, 3), (rep) => withStandardCoding(toCodeableConcept(rep, options, 'HL70063'), RELATIONSHIP.get(mappedValue(options, 'HL70063', comp(rep, 1)).toUpperCase()))],
    [fieldOf(nk1, 7), (rep) => withStandardCoding(toCodeableConcept(rep, options, 'HL70131'), CONTACT_ROLE.get(mappedValue(options, 'HL70131', comp(rep, 1)).toUpperCase()))],
  ]);
}

function buildRelatedPerson(nk1: Hl7Segment, id: string, patient: string, context: MappingContext): ResourceDraft {
  const { options } = context;
  const { timeZone } = options;
  const period = periodElement(fieldOf(nk1, 8), fieldOf(nk1, 9), ['NK1-8', 'NK1-9'], timeZone);
  return updateDraft('RelatedPerson', id, {
    active: true,
    patient: { reference: `Patient/${patient}` },
    relationship: relationships(nk1, context),
    name: nameElement(
      [
        [fieldOf(nk1, 2), 'NK1-2'],
        [fieldOf(nk1, 30), 'NK1-30'],
      ],
      timeZone,
    ),
    telecom: telecomElement([
      [fieldOf(nk1, 5), 'home'],
      [fieldOf(nk1, 6), 'work'],
    ]),
    gender: element(fieldOf(nk1, 15), (rep) => administrativeGender(comp(rep, 1), 'NK1-15', options)),
    birthDate: element(fieldOf(nk1, 16), (rep) => toFhirDate(comp(rep, 1), 'NK1-16')),
    address: addressElement(fieldOf(nk1, 4), 'NK1-4', timeZone),
    period,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Patient.contact

/** One Patient.contact (R4 BackboneElement): a name, an address and a gender of one, numbers and roles of many. */
export interface PatientContact {
  relationship?: CodeableConcept[];
  name?: HumanName;
  telecom?: ContactPoint[];
  address?: Address;
  gender?: string;
  organization?: Reference;
  period?: { start?: string; end?: string };
}

/**
 * The Patient's contacts from its group's NK1 segments, after the IG's NK1[Patient] map: NK1-3 and NK1-7
 * relationship (as on the RelatedPerson), NK1-2 name, NK1-4 address, NK1-5 (home), NK1-6 (work), NK1-40 and NK1-41
 * telecom, NK1-8/9 period, NK1-15 gender, NK1-13 organization (XON[Organization]). R4 gives a contact one name and
 * one address: the first sent. Where NK1-2 is empty, NK1-30 (the person to contact at the NK1-13 organization) is the
 * contact's name, and NK1-32 its address: the IG puts them in the Organization's own contact, but that Organization
 * is shared by every patient who names it, and one patient's contact person there would replace another's.
 *
 * The list is the contacts the message sends, replacing the stored list as any list element is replaced (the draft
 * contract, mappers/types.ts): a message sends all of a patient's NK1 segments, so contacts resent in every A08 are
 * not added again, and one that is no longer sent is gone. A message without NK1 leaves the stored contacts. One NK1
 * sent twice in a message is one contact. A contact that would say nothing (no name, number, address or
 * organization: FHIR R4's pat-1) is left out.
 */
export function patientContacts(segments: readonly Hl7Segment[], context: MappingContext): PatientContact[] | undefined {
  if (segments.length === 0) return undefined;
  const contacts = new Map<string, PatientContact>();
  for (const nk1 of segments) {
    const contact = patientContact(nk1, context);
    if (contact !== undefined) contacts.set(JSON.stringify(contact), contact);
  }
  return contacts.size > 0 ? [...contacts.values()] : undefined;
}

function patientContact(nk1: Hl7Segment, context: MappingContext): PatientContact | undefined {
  const { options } = context;
  const { timeZone } = options;
  const personNamed = fieldOf(nk1, 2).some((rep) => comp(rep, 1) !== '' || comp(rep, 2) !== '');
  const [nameField, nameLocation, addressField, addressLocation] = personNamed ? [2, 'NK1-2', 4, 'NK1-4'] : [30, 'NK1-30', 32, 'NK1-32'];
  // Inside a list element a `""` says nothing more than an empty field: null stays a draft's top-level signal.
  const period = periodElement(fieldOf(nk1, 8), fieldOf(nk1, 9), ['NK1-8', 'NK1-9'], timeZone) ?? undefined;
  const organization = element(fieldOf(nk1, 13), (rep) => organizationReference(rep, 'NK1-13', context)) ?? undefined;
  const contact: PatientContact = {
    relationship: relationships(nk1, context) ?? undefined,
    name: nameElement([[fieldOf(nk1, nameField), nameLocation]], timeZone)?.[0],
    telecom:
      telecomElement([
        [fieldOf(nk1, 5), 'home'],
        [fieldOf(nk1, 6), 'work'],
        [fieldOf(nk1, 40), undefined],
        [fieldOf(nk1, 41), undefined],
      ]) ?? undefined,
    address: addressElement(fieldOf(nk1, addressField), addressLocation, timeZone)?.[0],
    gender: element(fieldOf(nk1, 15), (rep) => administrativeGender(comp(rep, 1), 'NK1-15', options)) ?? undefined,
    organization,
    period,
  };
  if (contact.name === undefined && contact.telecom === undefined && contact.address === undefined && contact.organization === undefined) return undefined;
  return Object.fromEntries(Object.entries(contact).filter(([, value]) => value !== undefined)) as PatientContact;
}

/**
 * NK1 (next of kin / associated parties) -> RelatedPerson, one per NK1 segment, after the v2-to-FHIR IG segment
 * map NK1[RelatedPerson]: NK1-2 and NK1-30 name, NK1-3 and NK1-7 relationship, NK1-4 address, NK1-5 and NK1-6
 * telecom, NK1-8/9 period, NK1-15 gender, NK1-16 birth date.
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
import { type Coding, codeTable, comp, mappedValue, toCodeableConcept, toFhirDate, withStandardCoding } from './datatypes.ts';
import { element, listElement, updateDraft } from './drafts.ts';
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

export function buildRelatedPersons(context: MappingContext): ResourceDraft[] {
  const segments = segmentsNamed(context.message, 'NK1');
  if (segments.length === 0) return [];
  const patient = patientId(context);
  const used = new Set<string>();
  return segments.map((nk1, index) => {
    let key = contactKey(nk1);
    // Two contacts with the same name in one message are two people: keep them apart by position.
    if (used.has(key)) key = `${key}#${comp(fieldOf(nk1, 1)[0], 1) || String(index + 1)}`;
    used.add(key);
    return buildRelatedPerson(nk1, deterministicId('RelatedPerson', patient, key), patient, context);
  });
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

function buildRelatedPerson(nk1: Hl7Segment, id: string, patient: string, context: MappingContext): ResourceDraft {
  const { options } = context;
  const { timeZone } = options;
  const period = periodElement(fieldOf(nk1, 8), fieldOf(nk1, 9), ['NK1-8', 'NK1-9'], timeZone);
  return updateDraft('RelatedPerson', id, {
    active: true,
    patient: { reference: `Patient/${patient}` },
    relationship: listElement([
      [fieldOf(nk1, 3), (rep) => withStandardCoding(toCodeableConcept(rep, options, 'HL70063'), RELATIONSHIP.get(mappedValue(options, 'HL70063', comp(rep, 1)).toUpperCase()))],
      [fieldOf(nk1, 7), (rep) => withStandardCoding(toCodeableConcept(rep, options, 'HL70131'), CONTACT_ROLE.get(mappedValue(options, 'HL70131', comp(rep, 1)).toUpperCase()))],
    ]),
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

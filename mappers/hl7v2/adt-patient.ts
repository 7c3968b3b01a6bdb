/**
 * PID -> Patient. Which PID fields feed Patient.identifier, name and telecom, and which one the Patient's id is made
 * from, are the config's field sources (field-sources.ts): PID-3, PID-5 with PID-9, and PID-13 with PID-14 unless
 * it says otherwise.
 *
 * Each identifier names its assigner, as the IG's CX[Identifier] map does with CX-4 assigning authority
 * (HD[Organization]): CX-4's Organization, or MSH-4's for an identifier that took the sending facility as its
 * authority (directory.ts assignedIdentifier). CX-6 assigning facility (a proposed extension in the IG) and CX-9/CX-10
 * (which the IG leaves unmapped) are not read. The PID's PD1 adds the IG's PD1[Patient] map of the primary care: PD1-3
 * patient primary facility (XON[Organization]) and PD1-4 primary care provider (XCN[Practitioner]), in that order, as
 * generalPractitioner; its NK1 segments are the Patient's contacts (adt-related-person.ts patientContacts).
 */

import { type Hl7Field, type Hl7Message, type Hl7Repetition, type Hl7Segment, fieldOf, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { AnchorlineError } from '../../errors/index.ts';
import type { RoleEntriesOperation } from '../merge.ts';
import type { ResourceDraft } from '../types.ts';
import { reportIssue } from '../issues.ts';
import { patientExtensions } from './adt-patient-extensions.ts';

import { ORIGINAL_TEXT_EXTENSION, addressElement, administrativeGender, isAdministrativeSexCode, nameElement, patientIdOf, patientKeySource, patientSegment, sendingFacility, telecomElement } from './adt-common.ts';
import {
  type AssigningAuthority,
  type CodeableConcept,
  type Coding,
  type Identifier,
  type Reference,
  V2_0203_SYSTEM,
  authorityFromComponent,
  codeTable,
  comp,
  mappedValue,
  toCodeableConcept,
  toFhirDate,
  toFhirDateTime,
  isEmptyAuthority,
  toIdentifier,
  withStandardCoding,
} from './datatypes.ts';
import { authorityOrganizationReference, organizationReference, practitionerReference, sendingOrganizationReference } from './directory.ts';
import { element, listElement, updateDraft } from './drafts.ts';
import { patientContacts } from './adt-related-person.ts';
import { type FieldSources, sourceField, sourcesOf } from './field-sources.ts';
import { generalPractitioners } from './roles.ts';
import type { MappingContext } from './context.ts';

// ---------------------------------------------------------------------------------------------------------------
// Tables

const V3_MARITAL_STATUS = 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus';
const V3_NULL_FLAVOR = 'http://terminology.hl7.org/CodeSystem/v3-NullFlavor';

/**
 * HL7 table 0002 (marital status) -> v3 MaritalStatus, as the v2-to-FHIR IG ConceptMap table-hl70002: A and E
 * (separated) -> L, B (unmarried) -> U, G, P and R (partners) -> T, U -> NullFlavor UNK. N (annulled), O (other)
 * and T (unreported) have no IG mapping and keep only the sender's coding.
 */
export const MARITAL_STATUS = codeTable<Coding>({
  A: { system: V3_MARITAL_STATUS, code: 'L', display: 'Legally Separated' },
  B: { system: V3_MARITAL_STATUS, code: 'U', display: 'unmarried' },
  C: { system: V3_MARITAL_STATUS, code: 'C', display: 'Common Law' },
  D: { system: V3_MARITAL_STATUS, code: 'D', display: 'Divorced' },
  E: { system: V3_MARITAL_STATUS, code: 'L', display: 'Legally Separated' },
  G: { system: V3_MARITAL_STATUS, code: 'T', display: 'Domestic partner' },
  I: { system: V3_MARITAL_STATUS, code: 'I', display: 'Interlocutory' },
  M: { system: V3_MARITAL_STATUS, code: 'M', display: 'Married' },
  P: { system: V3_MARITAL_STATUS, code: 'T', display: 'Domestic partner' },
  R: { system: V3_MARITAL_STATUS, code: 'T', display: 'Domestic partner' },
  S: { system: V3_MARITAL_STATUS, code: 'S', display: 'Never Married' },
  U: { system: V3_NULL_FLAVOR, code: 'UNK', display: 'unknown' },
  W: { system: V3_MARITAL_STATUS, code: 'W', display: 'Widowed' },
});

const BCP_47 = 'urn:ietf:bcp:47';

/** PID-19 carries the US social security number (ST, not CX), so it gets the system and type the IG gives it. */
const US_SSN_SYSTEM = 'http://hl7.org/fhir/sid/us-ssn';
const SSN_TYPE: CodeableConcept = { coding: [{ system: V2_0203_SYSTEM, code: 'SS', display: 'Social Security number' }] };

/** The name type a Patient.name source implies where XPN-7 is empty: PID-9 aliases are type A by definition. */
const NAME_TYPE_OF_SOURCE: Readonly<Record<FieldSources['Patient.name'][number], string | undefined>> = { 'PID-5': undefined, 'PID-9': 'A' };

/** The use a Patient.telecom source implies where XTN-2 gives none: PID-13 home, PID-14 work; PID-40 holds both kinds. */
const TELECOM_USE_OF_SOURCE: Readonly<Record<FieldSources['Patient.telecom'][number], string | undefined>> = {
  'PID-13': 'home',
  'PID-14': 'work',
  'PID-40': undefined,
};

/**
 * ISO 639-2 codes senders put in PID-15 -> the ISO 639-1 code BCP 47 uses for the same language (BCP 47 takes the
 * shortest ISO 639 code). Only languages we expect from our senders; others keep the sender's coding alone.
 */
const ISO_639_2_TO_1 = codeTable<string>({
  kor: 'ko',
  eng: 'en',
  jpn: 'ja',
  zho: 'zh',
  chi: 'zh',
  vie: 'vi',
  rus: 'ru',
  mon: 'mn',
  tha: 'th',
  uzb: 'uz',
  spa: 'es',
  fra: 'fr',
  fre: 'fr',
  deu: 'de',
  ger: 'de',
  ara: 'ar',
  por: 'pt',
  ita: 'it',
  hin: 'hi',
  ind: 'id',
});

// ---------------------------------------------------------------------------------------------------------------
// Patient

/** The Patient the message is about (its first PID; a message without one is about a patient of its own). */
export function buildPatient(context: MappingContext): ResourceDraft {
  // One patient a message (merges, swaps and links read theirs with buildEveryPatient). A message that names more
  // (a query response's list of candidates) maps its first; the others are said to be left in the raw message.
  const pids = segmentsNamed(context.message, 'PID');
  for (let n = 2; n <= pids.length; n++) {
    reportIssue({ severity: 'warning', code: 'ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED', location: `PID[${n}]`, detail: 'another patient in one message: only the first PID is mapped; this one is kept in the raw message' });
  }
  return buildPatientFrom(patientSegment(context), context);
}

/** The Patient one PID segment describes (a merge message has one per patient group). */
export function buildPatientFrom(pid: Hl7Segment, context: MappingContext): ResourceDraft {
  const { options } = context;
  const { timeZone } = options;
  const id = patientIdOf(pid, context);
  const facility = sendingFacility(context);
  const segments = { PID: pid };

  // A patient identified by a fallback field (PID-2 where PID-3 is empty) carries that identifier too, so a search by
  // it finds the patient.
  const keySource = patientKeySource(pid, context);
  const identifierSources = sourcesOf(options, 'Patient.identifier');
  return updateDraft('Patient', id, {
    identifier: listElement(
      (identifierSources.includes(keySource as never) ? identifierSources : [...identifierSources, keySource as (typeof identifierSources)[number]]).map((source) => [sourceField(source, segments), (rep) => patientIdentifier(rep, source, context, facility)] as const),
    ),
    // The sender is telling us about this patient now; an ADT message is never about an inactive record.
    active: true,
    name: nameElement(
      sourcesOf(options, 'Patient.name').map((source) => [sourceField(source, segments), source, NAME_TYPE_OF_SOURCE[source]] as const),
      timeZone,
    ),
    telecom: telecomElement(sourcesOf(options, 'Patient.telecom').map((source) => [sourceField(source, segments), TELECOM_USE_OF_SOURCE[source]] as const)),
    ...genderElements(fieldOf(pid, 8), context),
    birthDate: element(fieldOf(pid, 7), (rep) => toFhirDate(comp(rep, 1), 'PID-7')),
    ...deceased(pid, timeZone),
    address: addressElement(fieldOf(pid, 11), 'PID-11', timeZone),
    maritalStatus: element(fieldOf(pid, 16), (rep) => maritalStatus(rep, context)),
    ...multipleBirth(pid),
    communication: element(fieldOf(pid, 15), (rep) => {
      const language = primaryLanguage(rep, context);
      return language === undefined ? undefined : [{ language, preferred: true }];
    }),
    extension: patientExtensions(pid, options),
    ...primaryCare(pid, context),
    contact: patientContacts(groupSegments(context.message, pid, 'NK1'), context),
  });
}

/**
 * The segments named `name` of one PID's group: after the PID and before the next PID (a merge or a swap message
 * has one group per patient).
 */
function groupSegments(message: Hl7Message, pid: Hl7Segment, name: string): Hl7Segment[] {
  const start = message.segments.indexOf(pid);
  const found: Hl7Segment[] = [];
  for (const segment of message.segments.slice(start + 1)) {
    if (segment.name === 'PID') break;
    if (segment.name === name) found.push(segment);
  }
  return found;
}

/**
 * Patient.generalPractitioner from the PID's PD1, as the IG's PD1[Patient] map: PD1-3 patient primary facility
 * (XON[Organization]) first, then PD1-4 patient primary care provider (XCN[Practitioner]; one sent by name only is a
 * display, see directory.ts); and from the primary care providers of the ROL segments after the PID (roles.ts), each
 * a PractitionerRole. A message without PD1 leaves PD1's entries as stored; `""` in both fields removes them; the
 * ROL entries are added, updated or removed by their action codes, whatever PD1 says.
 */
function primaryCare(pid: Hl7Segment, context: MappingContext): { generalPractitioner?: RoleEntriesOperation } {
  const pd1 = groupSegments(context.message, pid, 'PD1')[0];
  const fields =
    pd1 === undefined
      ? undefined
      : listElement([
          [fieldOf(pd1, 3), (rep) => organizationReference(rep, 'PD1-3', context)],
          [fieldOf(pd1, 4), (rep) => practitionerReference(rep, 'PD1-4', context)],
        ]);
  const generalPractitioner = generalPractitioners(pid, fields, context);
  return generalPractitioner === undefined ? {} : { generalPractitioner };
}

/**
 * gender from PID-8. A code outside table 0001 (after the config's value map) becomes `unknown`, as FHIR's guidance
 * for a required binding says, with the code as sent kept on the element (the originalText extension) and an issue
 * on the message; `_gender` goes again when a later message sends a code the table has (mergeDraft drops a
 * primitive's extension sibling when the draft sets the primitive alone).
 */
function genderElements(field: Hl7Field, context: MappingContext): { gender?: string | null; _gender?: unknown } {
  const gender = element(field, (rep) => administrativeGender(comp(rep, 1), 'PID-8', context.options));
  // Setting gender without _gender removes a stored _gender (mergeDraft), so only the fallback needs to say more.
  if (gender === undefined || gender === null) return { gender };
  const sent = comp(field[0], 1);
  if (isAdministrativeSexCode(sent, context.options)) return { gender };
  return { gender, _gender: { extension: [{ url: ORIGINAL_TEXT_EXTENSION, valueString: sent }] } };
}

/**
 * One repetition of a Patient.identifier source: CX from PID-2, PID-3 and PID-4 with its assigner (CX-4's
 * Organization, else MSH-4's when the identifier took the sending facility as its authority), the SSN (ST) from
 * PID-19, whose assigner the message does not name.
 */
function patientIdentifier(
  repetition: Hl7Repetition,
  source: FieldSources['Patient.identifier'][number],
  context: MappingContext,
  facility: AssigningAuthority,
): (Identifier & { assigner?: Reference }) | undefined {
  if (source === 'PID-19') {
    const value = comp(repetition, 1);
    return value === '' ? undefined : { type: SSN_TYPE, system: US_SSN_SYSTEM, value };
  }
  const identifier = toIdentifier(repetition, source, context.options, facility);
  if (identifier === undefined) return undefined;
  const authority = authorityFromComponent(repetition, 4);
  const assigner = isEmptyAuthority(authority) ? sendingOrganizationReference(context) : authorityOrganizationReference(authority, source, context);
  return assigner === undefined ? identifier : { ...identifier, assigner };
}

/** PID-16: the sender's coding as sent, and the v3 coding of its code after the config's HL70002 value map. */
function maritalStatus(repetition: Hl7Repetition, context: MappingContext): CodeableConcept | undefined {
  const code = mappedValue(context.options, 'HL70002', comp(repetition, 1));
  return withStandardCoding(toCodeableConcept(repetition, context.options, 'HL70002'), MARITAL_STATUS.get(code));
}

function primaryLanguage(repetition: Hl7Repetition, context: MappingContext): CodeableConcept | undefined {
  const tag = bcp47Tag(comp(repetition, 1));
  return withStandardCoding(toCodeableConcept(repetition, context.options, 'HL70296'), tag === undefined ? undefined : { system: BCP_47, code: tag });
}

/** A BCP 47 tag for an ISO 639 code ('ko', 'KOR', 'ko-KR'), or undefined when the code is not recognisably one. */
function bcp47Tag(code: string): string | undefined {
  const match = /^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{2}))?$/.exec(code);
  if (match === null) return undefined;
  const language = match[1]!.toLowerCase();
  const primary = language.length === 2 ? language : ISO_639_2_TO_1.get(language);
  if (primary === undefined) return undefined;
  return match[2] === undefined ? primary : `${primary}-${match[2].toUpperCase()}`;
}

/**
 * deceased[x] from PID-29 (date/time of death) and PID-30 (death indicator). A choice element holds one type, so
 * setting one form removes the other; a `""` in either field removes its own form.
 */
function deceased(pid: Hl7Segment, timeZone: string): Record<string, unknown> {
  const time = fieldOf(pid, 29);
  const indicator = fieldOf(pid, 30);
  const deceasedDateTime = element(time, (rep) => toFhirDateTime(comp(rep, 1), 'PID-29', timeZone));
  if (typeof deceasedDateTime === 'string') return { deceasedDateTime, deceasedBoolean: null };
  const deceasedBoolean = element(indicator, (rep) => yesNo(comp(rep, 1), 'PID-30'));
  if (typeof deceasedBoolean === 'boolean') return { deceasedBoolean, deceasedDateTime: null };
  return { deceasedDateTime, deceasedBoolean };
}

/**
 * multipleBirth[x] from PID-24 (multiple birth indicator) and PID-25 (birth order): the order when sent (it implies
 * a multiple birth), else the indicator.
 */
function multipleBirth(pid: Hl7Segment): Record<string, unknown> {
  const indicator = element(fieldOf(pid, 24), (rep) => yesNo(comp(rep, 1), 'PID-24'));
  const order = element(fieldOf(pid, 25), (rep) => birthOrder(comp(rep, 1)));
  if (typeof order === 'number' && indicator !== false) return { multipleBirthInteger: order, multipleBirthBoolean: null };
  if (typeof indicator === 'boolean') return { multipleBirthBoolean: indicator, multipleBirthInteger: null };
  return { multipleBirthBoolean: indicator, multipleBirthInteger: order };
}

/** Spellings of table 0136 (yes/no) that senders use besides Y and N; read with an information issue. */
const YES_NO_WORDS = codeTable<boolean>({ YES: true, NO: false, TRUE: true, FALSE: false, T: true, F: false, '1': true, '0': false });

/** An HL7 table 0136 indicator (PID-24, PID-30, GT1-22): Y or N, or a spelling of them read with an issue. */
export function yesNo(code: string, location: string): boolean | undefined {
  if (code === '') return undefined;
  const upper = code.toUpperCase();
  if (upper === 'Y') return true;
  if (upper === 'N') return false;
  const word = YES_NO_WORDS.get(upper);
  if (word !== undefined) {
    reportIssue({ severity: 'information', code: 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', location, detail: `${location}: indicator read as ${word ? 'Y' : 'N'}`, value: code });
    return word;
  }
  throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_INVALID_VALUE', `${location}: indicator is not Y or N`, { location });
}

function birthOrder(value: string): number | undefined {
  // Many systems send 0 for "not part of a multiple birth" (a birth order counts from 1): nothing to record.
  if (value === '' || /^0+$/.test(value)) return undefined;
  if (!/^\d{1,2}$/.test(value) || Number(value) < 1) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_INVALID_VALUE', 'PID-25: birth order is not a positive integer', { location: 'PID-25' });
  }
  return Number(value);
}

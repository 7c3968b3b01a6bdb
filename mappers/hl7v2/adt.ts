/**
 * ADT (A01 admit, A04 register, A08 update) -> Patient and Encounter drafts.
 *
 * Draft semantics follow HL7 v2 update rules per FHIR element: a field that was not sent leaves the element as
 * stored (undefined), a field sent as `""` removes it (null), anything else replaces it. Elements are replaced
 * whole: an element fed by several fields (name from PID-5 and PID-9, telecom from PID-13 and PID-14, period from
 * PV1-44 and PV1-45) takes what the message sends for all of them, which matches senders that send complete
 * segments, as ADT senders do.
 */

import {
  type Hl7Field,
  type Hl7Repetition,
  type Hl7Segment,
  fieldOf,
  firstSegment,
  isEmptyField,
  isExplicitNull,
} from '../../adapters/hl7v2/types.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { deterministicId } from '../ids.ts';
import type { ResourceDraft } from '../types.ts';

import {
  type AssigningAuthority,
  type CodeableConcept,
  type Coding,
  type Identifier,
  type Reference,
  authorityFromField,
  codeTable,
  comp,
  localCodeSystem,
  pruneEmpty,
  toAddress,
  toCodeableConcept,
  toContactPoint,
  toFhirDate,
  toFhirDateTime,
  toHumanName,
  toIdentifier,
} from './datatypes.ts';
import type { MappingContext, MappingRow } from './registry.ts';

// ---------------------------------------------------------------------------------------------------------------
// Tables

/** HL7 table 0001 (administrative sex) -> FHIR administrative-gender. A (ambiguous) -> other, N (not applicable) -> unknown. */
const GENDER = codeTable<string>({ M: 'male', F: 'female', O: 'other', U: 'unknown', A: 'other', N: 'unknown' });

const V3_MARITAL_STATUS = 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus';
const V3_NULL_FLAVOR = 'http://terminology.hl7.org/CodeSystem/v3-NullFlavor';

/**
 * HL7 table 0002 (marital status) -> v3 MaritalStatus, as the v2-to-FHIR IG ConceptMap table-hl70002: A and E
 * (separated) -> L, B (unmarried) -> U, G, P and R (partners) -> T, U -> NullFlavor UNK. N (annulled), O (other)
 * and T (unreported) have no IG mapping and keep only the sender's coding.
 */
const MARITAL_STATUS = codeTable<Coding>({
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

const V3_ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';

/**
 * HL7 table 0004 (patient class) -> Encounter.class. E, I, O, P as the v2-to-FHIR IG ConceptMap v2-0004 to
 * encounter class. The IG leaves the rest unmapped; ours: R (recurring patient, a series of outpatient visits) ->
 * AMB, B (obstetrics, an admission) -> IMP, U and N -> NullFlavor UNK and NA. Other codes (C commercial account and
 * local codes) keep the sender's code in a local system, which the extensible binding allows.
 */
const ENCOUNTER_CLASS = codeTable<Coding>({
  E: { system: V3_ACT_CODE, code: 'EMER', display: 'emergency' },
  I: { system: V3_ACT_CODE, code: 'IMP', display: 'inpatient encounter' },
  O: { system: V3_ACT_CODE, code: 'AMB', display: 'ambulatory' },
  P: { system: V3_ACT_CODE, code: 'PRENC', display: 'pre-admission' },
  R: { system: V3_ACT_CODE, code: 'AMB', display: 'ambulatory' },
  B: { system: V3_ACT_CODE, code: 'IMP', display: 'inpatient encounter' },
  U: { system: V3_NULL_FLAVOR, code: 'UNK', display: 'unknown' },
  N: { system: V3_NULL_FLAVOR, code: 'NA', display: 'not applicable' },
});

/**
 * Which events set Encounter.status. A01 (admit) and A04 (register) start a visit, so status is derived from the
 * visit: finished when PV1-45 discharge time is sent, planned for a preadmit (PV1-2 P, as the v2-to-FHIR IG
 * ConceptMap table-hl70004-to-encounter-status), otherwise in-progress. A04 is in-progress rather than 'arrived':
 * registration is the start of an outpatient or emergency visit, and no later message moves it on from 'arrived'.
 * A08 (update patient information) is not a state change, so it leaves the stored status alone.
 */
const SETS_ENCOUNTER_STATUS = codeTable<boolean>({ A01: true, A04: true, A08: false });

const ATTENDER: CodeableConcept = {
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'ATND', display: 'attender' }],
};

// ---------------------------------------------------------------------------------------------------------------
// Field -> element with draft semantics

/** One element from one field: not sent -> undefined, `""` -> null, else the converted value. */
function element<T>(field: Hl7Field, convert: (repetition: Hl7Repetition) => T | undefined): T | null | undefined {
  if (isExplicitNull(field)) return null;
  if (isEmptyField(field)) return undefined;
  return convert(field[0]!);
}

/** A list element from the repetitions of one or more fields, with the same semantics over all of them. */
function listElement<T>(sources: ReadonlyArray<readonly [Hl7Field, (repetition: Hl7Repetition) => T | undefined]>): T[] | null | undefined {
  const values: T[] = [];
  let cleared = false;
  for (const [field, convert] of sources) {
    if (isExplicitNull(field)) {
      cleared = true;
      continue;
    }
    for (const repetition of field) {
      const value = convert(repetition);
      if (value !== undefined) values.push(value);
    }
  }
  if (values.length > 0) return values;
  return cleared ? null : undefined;
}

/** The first repetition's first component, trimmed, for coded fields (ID/IS). */
function codeOf(field: Hl7Field): string {
  return comp(field[0], 1);
}

/** Draft with undefined (not sent) elements left out; null and values kept. */
function draft(resourceType: string, id: string, elements: Record<string, unknown>): ResourceDraft {
  const result: ResourceDraft = { resourceType, id };
  for (const [name, value] of Object.entries(elements)) {
    if (value === null) {
      result[name] = null;
      continue;
    }
    const pruned = pruneEmpty(value);
    if (pruned !== undefined) result[name] = pruned;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Identity

function requirePid(context: MappingContext): Hl7Segment {
  const pid = firstSegment(context.message, 'PID');
  if (pid === undefined) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'PID segment is missing', { location: 'PID' });
  }
  return pid;
}

/**
 * The identifier that names a business key: its system must exist, or the id would collide across authorities.
 * Both the patient and the visit key fall back to MSH-4 for their authority, so this fails only when CX-4 and MSH-4
 * are both empty.
 */
function keyIdentifier(repetition: Hl7Repetition, location: string, context: MappingContext): Identifier & { system: string; value: string } {
  const identifier = toIdentifier(repetition, location, context.options, sendingFacility(context));
  if (identifier?.system === undefined || identifier.value === undefined) {
    throw new AnchorlineError(
      'ANCHORLINE_ERR_MAPPING_MISSING_FIELD',
      `${location}: the identifier has no assigning authority (CX-4) and MSH-4 sending facility is empty`,
      { location },
    );
  }
  return identifier as Identifier & { system: string; value: string };
}

function sendingFacility(context: MappingContext): AssigningAuthority {
  return authorityFromField(fieldOf(context.msh, 4)[0]);
}

/**
 * The patient's id: from the first PID-3 repetition typed MR (medical record number, the facility's own key for the
 * patient), else the first repetition with a value.
 */
export function patientId(context: MappingContext): string {
  const pid = requirePid(context);
  const repetitions = fieldOf(pid, 3).filter((repetition) => comp(repetition, 1) !== '');
  if (repetitions.length === 0) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'PID-3 patient identifier list is empty', { location: 'PID-3' });
  }
  const primary = repetitions.find((repetition) => comp(repetition, 5) === 'MR') ?? repetitions[0]!;
  const identifier = keyIdentifier(primary, 'PID-3', context);
  return deterministicId('Patient', identifier.system, identifier.value);
}

// ---------------------------------------------------------------------------------------------------------------
// Patient

export function buildPatient(context: MappingContext): ResourceDraft {
  const { options } = context;
  const { timeZone } = options;
  const pid = requirePid(context);
  const id = patientId(context);
  const facility = sendingFacility(context);

  return draft('Patient', id, {
    identifier: listElement([[fieldOf(pid, 3), (rep) => toIdentifier(rep, 'PID-3', options, facility)]]),
    // The sender is telling us about this patient now; an ADT message is never about an inactive record.
    active: true,
    name: listElement([
      [fieldOf(pid, 5), (rep) => toHumanName(rep, 'PID-5', timeZone)],
      [fieldOf(pid, 9), (rep) => toHumanName(rep, 'PID-9', timeZone, 'A')],
    ]),
    telecom: listElement([
      [fieldOf(pid, 13), (rep) => toContactPoint(rep, 'home')],
      [fieldOf(pid, 14), (rep) => toContactPoint(rep, 'work')],
    ]),
    gender: element(fieldOf(pid, 8), (rep) => gender(comp(rep, 1))),
    birthDate: element(fieldOf(pid, 7), (rep) => toFhirDate(comp(rep, 1), 'PID-7')),
    ...deceased(pid, timeZone),
    address: listElement([[fieldOf(pid, 11), (rep) => toAddress(rep, 'PID-11', timeZone)]]),
    maritalStatus: element(fieldOf(pid, 16), (rep) => maritalStatus(rep, context)),
    ...multipleBirth(pid),
    communication: element(fieldOf(pid, 15), (rep) => {
      const language = primaryLanguage(rep, context);
      return language === undefined ? undefined : [{ language, preferred: true }];
    }),
  });
}

function gender(code: string): string | undefined {
  if (code === '') return undefined;
  const mapped = GENDER.get(code.toUpperCase());
  if (mapped === undefined) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_INVALID_VALUE', 'PID-8: administrative sex is not an HL7 table 0001 code', {
      location: 'PID-8',
    });
  }
  return mapped;
}

function maritalStatus(repetition: Hl7Repetition, context: MappingContext): CodeableConcept | undefined {
  const sent = toCodeableConcept(repetition, context.options, 'HL70002');
  if (sent === undefined) return undefined;
  const standard = MARITAL_STATUS.get(comp(repetition, 1));
  // The v3 coding first (what FHIR consumers look for), the sender's own coding kept beside it.
  return standard === undefined ? sent : { ...sent, coding: [standard, ...(sent.coding ?? [])] };
}

function primaryLanguage(repetition: Hl7Repetition, context: MappingContext): CodeableConcept | undefined {
  const sent = toCodeableConcept(repetition, context.options, 'HL70296');
  if (sent === undefined) return undefined;
  const tag = bcp47Tag(comp(repetition, 1));
  return tag === undefined ? sent : { ...sent, coding: [{ system: BCP_47, code: tag }, ...(sent.coding ?? [])] };
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

function yesNo(code: string, location: string): boolean | undefined {
  if (code === '') return undefined;
  const upper = code.toUpperCase();
  if (upper === 'Y') return true;
  if (upper === 'N') return false;
  throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_INVALID_VALUE', `${location}: indicator is not Y or N`, { location });
}

function birthOrder(value: string): number | undefined {
  if (value === '') return undefined;
  if (!/^\d{1,2}$/.test(value) || Number(value) < 1) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_INVALID_VALUE', 'PID-25: birth order is not a positive integer', { location: 'PID-25' });
  }
  return Number(value);
}

// ---------------------------------------------------------------------------------------------------------------
// Encounter

/** Undefined when the message has no PV1 or PV1-19 carries no visit number: without a visit key there is no visit. */
export function buildEncounter(context: MappingContext): ResourceDraft | undefined {
  const pv1 = firstSegment(context.message, 'PV1');
  if (pv1 === undefined) return undefined;
  const visitNumber = fieldOf(pv1, 19).find((repetition) => comp(repetition, 1) !== '');
  if (visitNumber === undefined) return undefined;

  const { options, triggerEvent } = context;
  const { timeZone } = options;
  const visitIdentifier = keyIdentifier(visitNumber, 'PV1-19', context);
  const id = deterministicId('Encounter', visitIdentifier.system, visitIdentifier.value);

  const start = element(fieldOf(pv1, 44), (rep) => toFhirDateTime(comp(rep, 1), 'PV1-44', timeZone));
  const end = element(fieldOf(pv1, 45), (rep) => toFhirDateTime(comp(rep, 1), 'PV1-45', timeZone));
  const patientClass = codeOf(fieldOf(pv1, 2));

  let status: string | undefined;
  if (SETS_ENCOUNTER_STATUS.get(triggerEvent) === true) {
    status = typeof end === 'string' ? 'finished' : patientClass === 'P' ? 'planned' : 'in-progress';
  }

  const subject: Reference = { reference: `Patient/${patientId(context)}` };
  return draft('Encounter', id, {
    identifier: [visitIdentifier],
    status,
    class: element(fieldOf(pv1, 2), (rep) => encounterClass(comp(rep, 1), context)),
    subject,
    period: period(start, end),
    location: element(fieldOf(pv1, 3), (rep) => {
      const display = locationDisplay(rep);
      return display === undefined ? undefined : [{ location: { display } }];
    }),
    hospitalization: element(fieldOf(pv1, 14), (rep) => {
      const admitSource = toCodeableConcept(rep, options, 'HL70023');
      return admitSource === undefined ? undefined : { admitSource };
    }),
    participant: listElement([
      [
        fieldOf(pv1, 7),
        (rep) => {
          const display = practitionerDisplay(rep);
          return display === undefined ? undefined : { type: [ATTENDER], individual: { display } };
        },
      ],
    ]),
  });
}

/** Period from its two bounds: any bound sent -> the period of what was sent; else `""` in either -> removed. */
function period(start: string | null | undefined, end: string | null | undefined): { start?: string; end?: string } | null | undefined {
  if (typeof start === 'string' || typeof end === 'string') return { start: start ?? undefined, end: end ?? undefined };
  return start === null || end === null ? null : undefined;
}

function encounterClass(code: string, context: MappingContext): Coding | undefined {
  if (code === '') return undefined;
  return ENCOUNTER_CLASS.get(code) ?? { system: localCodeSystem('HL70004', context.options), code };
}

/**
 * PL point of care ^ room ^ bed, trailing empty parts dropped, as a display-only location reference: Location
 * resources come later with the facility directory; until then this keeps the sender's bed readable and matchable.
 */
function locationDisplay(repetition: Hl7Repetition): string | undefined {
  const parts = [comp(repetition, 1), comp(repetition, 2), comp(repetition, 3)];
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts.length === 0 ? undefined : parts.join('^');
}

/**
 * XCN 2 family, 3 given, 4 further given, 5 suffix, 6 prefix, 7 degree, as one display string; XCN-18 name assembly
 * order F (family first, as Korean and other East Asian names are written) puts the family name first.
 */
function practitionerDisplay(repetition: Hl7Repetition): string | undefined {
  const family = comp(repetition, 2, 1);
  const given = [comp(repetition, 3), comp(repetition, 4)];
  const ordered = comp(repetition, 18) === 'F' ? [family, ...given] : [...given, family];
  const words = [comp(repetition, 6), ...ordered, comp(repetition, 5), comp(repetition, 7)].filter((word) => word !== '');
  return words.length === 0 ? undefined : words.join(' ');
}

/** The ADT rows of the mapping table (mappers/hl7v2/registry.ts). */
export const ADT_MAPPINGS: readonly MappingRow[] = [
  ['ADT^A01', [buildPatient, buildEncounter]],
  ['ADT^A04', [buildPatient, buildEncounter]],
  ['ADT^A08', [buildPatient, buildEncounter]],
];

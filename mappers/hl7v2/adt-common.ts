/**
 * What every ADT builder shares beyond field -> element semantics (drafts.ts): the elements that Patient,
 * RelatedPerson and Coverage build alike, the patient, visit and concept keys that make resource ids, and the event
 * time.
 */

import { type Hl7Field, type Hl7Repetition, type Hl7Segment, fieldOf, firstSegment, valueOf } from '../../formats/hl7v2/index.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { UNIDENTIFIED_PATIENT_SYSTEM, deterministicId } from '../ids.ts';
import type { Hl7MappingOptions } from '../types.ts';

import {
  type Address,
  type AssigningAuthority,
  type CodeableConcept,
  type ContactPoint,
  type HumanName,
  type Identifier,
  type Reference,
  UNIDENTIFIED_SENDER,
  authorityFromField,
  configuredAuthority,
  isEmptyAuthority,
  codeTable,
  comp,
  mappedValue,
  toAddress,
  toContactPoint,
  toFhirDateTime,
  toHumanName,
  toIdentifier,
} from './datatypes.ts';
import { currentIssues, reportIssue } from '../issues.ts';
import { element, listElement } from './drafts.ts';
import { sourceField, sourcesOf } from './field-sources.ts';
import type { MappingContext } from './context.ts';

// ---------------------------------------------------------------------------------------------------------------
// Elements that several ADT resources build alike (Patient from PID, RelatedPerson from NK1, Coverage from IN1)

/** XPN names from one or more fields, each with its location and the name type to assume where XPN-7 is empty. */
export function nameElement(sources: ReadonlyArray<readonly [Hl7Field, string, string?]>, timeZone: string): HumanName[] | null | undefined {
  return listElement(
    sources.map(([field, location, defaultNameType]) => [field, (rep: Hl7Repetition) => toHumanName(rep, location, timeZone, defaultNameType)] as const),
  );
}

/**
 * XTN numbers from one or more fields as one telecom list, each field with the use to assume where XTN-2 gives none:
 * home for a home field (PID-13, NK1-5), work for a business field (PID-14, NK1-6), none for PID-40.
 */
export function telecomElement(sources: ReadonlyArray<readonly [Hl7Field, string | undefined]>): ContactPoint[] | null | undefined {
  return listElement(sources.map(([field, defaultUse]) => [field, (rep: Hl7Repetition) => toContactPoint(rep, defaultUse)] as const));
}

/** XAD addresses from every repetition of one field (PID-11, NK1-4). */
export function addressElement(field: Hl7Field, location: string, timeZone: string): Address[] | null | undefined {
  return listElement([[field, (rep) => toAddress(rep, location, timeZone)]]);
}

/** HL7 table 0001 (administrative sex) -> FHIR administrative-gender. A (ambiguous) -> other, N (not applicable) -> unknown. */
export const ADMINISTRATIVE_SEX = codeTable<string>({ M: 'male', F: 'female', O: 'other', U: 'unknown', A: 'other', N: 'unknown' });

/** Words senders write in an administrative sex field instead of a table 0001 code. */
const ADMINISTRATIVE_SEX_WORDS = codeTable<string>({ MALE: 'male', FEMALE: 'female', MAN: 'male', WOMAN: 'female', UNKNOWN: 'unknown', UNK: 'unknown', OTHER: 'other', AMBIGUOUS: 'other' });

/** The extension that keeps a value as sent on an element whose required binding it does not fit (FHIR extensions pack). */
export const ORIGINAL_TEXT_EXTENSION = 'http://hl7.org/fhir/StructureDefinition/originalText';

/** Whether `sent` (after the config's HL70001 value map) is a table 0001 code. */
export function isAdministrativeSexCode(sent: string, options: Hl7MappingOptions): boolean {
  return ADMINISTRATIVE_SEX.has(mappedValue(options, 'HL70001', sent).toUpperCase());
}

/**
 * An administrative sex field (PID-8, NK1-15) as FHIR gender, after the config's HL70001 value map. A spelled-out
 * word (`female`) is read with an information issue; any other code outside table 0001 is `unknown` with a warning
 * issue that keeps the code as sent. Outside a mapping that collects issues, such a code is an error at `location`.
 */
export function administrativeGender(sent: string, location: string, options: Hl7MappingOptions): string | undefined {
  if (sent === '') return undefined;
  const code = mappedValue(options, 'HL70001', sent).toUpperCase();
  const mapped = ADMINISTRATIVE_SEX.get(code);
  if (mapped !== undefined) return mapped;
  const word = ADMINISTRATIVE_SEX_WORDS.get(code);
  const issues = currentIssues();
  if (issues === undefined) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_INVALID_VALUE', `${location}: administrative sex is not an HL7 table 0001 code`, { location });
  }
  issues.add({
    severity: word === undefined ? 'warning' : 'information',
    code: 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE',
    location,
    detail: word === undefined ? `${location}: administrative sex is not an HL7 table 0001 code; read as unknown` : `${location}: administrative sex spelled out; read as ${word}`,
    value: sent,
  });
  return word ?? 'unknown';
}

/**
 * A period from a start field and an end field (NK1-8/9, IN1-12/13): set when either is sent, removed when neither
 * is sent and either is `""`.
 */
export function periodElement(
  startField: Hl7Field,
  endField: Hl7Field,
  [startLocation, endLocation]: readonly [string, string],
  timeZone: string,
): { start?: string; end?: string } | null | undefined {
  const start = element(startField, (rep) => toFhirDateTime(comp(rep, 1), startLocation, timeZone));
  const end = element(endField, (rep) => toFhirDateTime(comp(rep, 1), endLocation, timeZone));
  if (typeof start === 'string' || typeof end === 'string') return { start: start ?? undefined, end: end ?? undefined };
  return start === null || end === null ? null : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Identity

export function requirePid(context: MappingContext): Hl7Segment {
  const pid = firstSegment(context.message, 'PID');
  if (pid === undefined) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'PID segment is missing', { location: 'PID' });
  }
  return pid;
}

/** Stands for the PID of a message that has none: no field has a value, and it is in no message's segment list. */
const ABSENT_PID: Hl7Segment = Object.freeze({ name: 'PID', fields: [] }) as Hl7Segment;

/**
 * The PID the message is about: its first, or for a message without one (an order or result fragment, a document
 * notice) an empty stand-in, whose patient is a patient of that message alone (patientIdOf). Merges, which must know
 * both patients, use requirePid.
 */
export function patientSegment(context: MappingContext): Hl7Segment {
  return firstSegment(context.message, 'PID') ?? ABSENT_PID;
}

/**
 * The authority of identifiers sent without one (CX-4 empty): MSH-4 sending facility, else MSH-3 sending application,
 * else the source's configured default authority (mapping config `defaultAuthority`), else the source the sender's
 * credential or connection is bound to. Local ids such as MRNs are only unique within whoever issued them, and one
 * of these names the issuer. Each step past MSH-4 is an information issue on the message.
 */
export function sendingFacility(context: MappingContext): AssigningAuthority {
  const facility = authorityFromField(fieldOf(context.msh, 4)[0]);
  if (!isEmptyAuthority(facility)) return facility;
  const application = authorityFromField(fieldOf(context.msh, 3)[0]);
  const { authority, from } = !isEmptyAuthority(application) ? { authority: application, from: 'MSH-3 sending application' } : configuredAuthority(context.options);
  // The last resort is a warning: every sender that names itself nowhere shares it, so one of them should be given a
  // defaultAuthority or a bound source (or the code made fatal for it) before its numbers can be told apart.
  reportIssue({
    severity: authority === UNIDENTIFIED_SENDER ? 'warning' : 'information',
    code: 'ANCHORLINE_ISSUE_AUTHORITY_FALLBACK',
    location: 'MSH-4',
    detail: `MSH-4 is empty; identifiers without an assigning authority take ${from}`,
  });
  return authority;
}

/**
 * The identifier that names a business key: its system must exist, or the id would collide across authorities.
 * Keys fall back to MSH-4 for their authority, so this fails only when CX-4 and MSH-4 are both empty.
 */
export function keyIdentifier(repetition: Hl7Repetition, location: string, context: MappingContext): Identifier & { system: string; value: string } {
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

/**
 * The patient id from a patient identifier list (the Patient.key field, PID-3 by default, or its MRG counterpart):
 * the first repetition typed MR (medical record number, the facility's own key for the patient), else the first
 * repetition with a value.
 */
export function patientIdFromList(field: Hl7Field, location: string, context: MappingContext): string {
  const repetitions = field.filter((repetition) => comp(repetition, 1) !== '');
  if (repetitions.length === 0) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', `${location} patient identifier list is empty`, { location });
  }
  const primary = repetitions.find((repetition) => comp(repetition, 5) === 'MR') ?? repetitions[0]!;
  const identifier = keyIdentifier(primary, location, context);
  return deterministicId('Patient', identifier.system, identifier.value);
}

/**
 * The field a PID's patient key is read from: the Patient.key field (PID-3 unless the config says otherwise), else,
 * when it is empty, the first of the Patient.keyFallback fields (PID-2, then PID-4) that has a value.
 */
export function patientKeySource(pid: Hl7Segment, context: MappingContext): string {
  const key = sourcesOf(context.options, 'Patient.key');
  const hasValue = (source: string): boolean => sourceField(source, { PID: pid }).some((repetition) => comp(repetition, 1) !== '');
  if (hasValue(key)) return key;
  const fallback = sourcesOf(context.options, 'Patient.keyFallback').find((source) => source !== key && hasValue(source));
  if (fallback === undefined) return key;
  reportIssue({ severity: 'information', code: 'ANCHORLINE_ISSUE_IDENTIFIER_FALLBACK', location: key, detail: `${key} is empty; the patient is identified by ${fallback}` });
  return fallback;
}

/**
 * The id of the patient one PID describes, from its key field (patientKeySource). A PID with no identifier at all
 * (a name or a birth date only, or nothing: a fragment whose results or orders name no one) is a patient of this
 * message alone (unidentifiedPatientId): what the message carries is kept and never attributed to anyone else.
 */
export function patientIdOf(pid: Hl7Segment, context: MappingContext): string {
  const source = patientKeySource(pid, context);
  const field = sourceField(source, { PID: pid });
  if (!field.some((repetition) => comp(repetition, 1) !== '')) return unidentifiedPatientId(pid, source, context);
  return patientIdFromList(field, source, context);
}

/** Whether a PID names a person at all: any part of PID-5 patient name or PID-7 birth date. */
function describesSomeone(pid: Hl7Segment): boolean {
  const sent = (field: Hl7Field): boolean => field.some((repetition) => repetition.some((component) => component.some((part) => part !== '' && part !== '""')));
  return sent(fieldOf(pid, 5)) || sent(fieldOf(pid, 7));
}

/**
 * A patient sent without any identifier gets an id of its own message (sender, control id, the PID's position): it
 * is never matched to another message's patient, so no record can land under the wrong person, and nothing the
 * message carries is lost. Matching by name and birth date would be a guess; linking the record to the right patient
 * is left to someone who can check (an A40 merge, or a resend with the identifier). A warning on the message; a
 * source that would rather have such messages fail lists the code in its mapping config's fatalIssues.
 */
function unidentifiedPatientId(pid: Hl7Segment, source: string, context: MappingContext): string {
  const { msh, message } = context;
  const position = message.segments.indexOf(pid);
  reportIssue({
    severity: 'warning',
    code: 'ANCHORLINE_ISSUE_PATIENT_UNIDENTIFIED',
    location: position < 0 ? 'PID' : source,
    detail:
      position < 0
        ? 'the message has no PID; what it carries is kept under a patient of this message alone'
        : describesSomeone(pid)
          ? `${source} and its fallbacks are empty; the patient is kept as a patient of this message alone`
          : `the PID names nobody (${source} and its fallbacks, PID-5 and PID-7 are empty); what the message carries is kept under a patient of this message alone`,
  });
  const sender = `${valueOf(msh, 3)}|${valueOf(msh, 4)}`;
  return deterministicId('Patient', UNIDENTIFIED_PATIENT_SYSTEM, sender, context.controlId, String(position));
}

/** The id of the patient the message is about (the first PID; see patientSegment). */
export function patientId(context: MappingContext): string {
  return patientIdOf(patientSegment(context), context);
}

export function patientReference(context: MappingContext): Reference {
  return { reference: `Patient/${patientId(context)}` };
}

/**
 * A coded concept (an allergen, a diagnosis) as part of a resource id: its first coding's system and code, else its
 * text in upper case, so that the same concept sent again, in any position, names the same resource.
 */
export function conceptKey(concept: CodeableConcept): string {
  const coding = concept.coding?.[0];
  if (coding?.code !== undefined) return `${coding.system ?? ''}|${coding.code}`;
  return `|${(concept.text ?? '').toUpperCase()}`;
}

/**
 * The visit number (the Encounter.identifier field: PV1-19 unless the config says otherwise) as the Encounter's
 * identifier and id; undefined without PV1 (a message without a visit segment describes no visit, whatever field
 * carries its number) or without a visit number.
 */
export function visitKey(context: MappingContext): { identifier: Identifier & { system: string; value: string }; id: string } | undefined {
  const pv1 = firstSegment(context.message, 'PV1');
  if (pv1 === undefined) return undefined;
  const source = sourcesOf(context.options, 'Encounter.identifier');
  const visitNumber = sourceField(source, { PID: firstSegment(context.message, 'PID'), PV1: pv1 }).find((repetition) => comp(repetition, 1) !== '');
  if (visitNumber === undefined) return undefined;
  const identifier = keyIdentifier(visitNumber, source, context);
  return { identifier, id: deterministicId('Encounter', identifier.system, identifier.value) };
}

/** The account the message is about: PID-18, else (senders that bill by visit) PV1-19. */
export function accountKey(context: MappingContext): { identifier: Identifier & { system: string; value: string }; id: string } | undefined {
  const pid = firstSegment(context.message, 'PID');
  const pv1 = firstSegment(context.message, 'PV1');
  for (const [segment, field, location] of [
    [pid, 18, 'PID-18'],
    [pv1, 19, 'PV1-19'],
  ] as const) {
    const number = fieldOf(segment, field).find((repetition) => comp(repetition, 1) !== '');
    if (number === undefined) continue;
    const identifier = keyIdentifier(number, location, context);
    return { identifier, id: deterministicId('Account', identifier.system, identifier.value) };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Event time

/**
 * When the event happened, as a FHIR dateTime in the sender's zone: EVN-6 (event occurred: when the patient was
 * actually transferred or discharged), else EVN-2 (when it was recorded), else MSH-7 (when the message was made).
 * The first field that is sent is used; a value that is not a time there is an error, not a reason to look further,
 * because a later field describes a different moment. Undefined when none is sent.
 */
export function eventDateTime(context: MappingContext): string | undefined {
  const evn = firstSegment(context.message, 'EVN');
  const candidates: Array<[string, string]> = [
    [valueOf(evn, 6), 'EVN-6'],
    [valueOf(evn, 2), 'EVN-2'],
    [valueOf(context.msh, 7), 'MSH-7'],
  ];
  for (const [value, location] of candidates) {
    const time = toFhirDateTime(value, location, context.options.timeZone);
    if (time !== undefined) return time;
  }
  return undefined;
}

/** eventDateTime() for events that cannot be recorded without a time (a transfer, a class change). */
export function requireEventDateTime(context: MappingContext): string {
  const time = eventDateTime(context);
  if (time === undefined) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'EVN-2: the event has no time (EVN-6, EVN-2 and MSH-7 are empty)', { location: 'EVN-2' });
  }
  return time;
}

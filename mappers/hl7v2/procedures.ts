/**
 * PR1 (procedures) -> Procedure, one per PR1 segment, after the HL7 v2-to-FHIR IG segment map PR1[Procedure]:
 * PR1-3 code (PR1-4 description as its text when PR1-3 has no original text), PR1-5 performed (a period ending
 * PR1-7 minutes later when PR1-5 is given to the minute), PR1-6 category, PR1-8 anesthesiologist, PR1-11 surgeon and
 * PR1-12 practitioner as performers (Practitioners, XCN[Practitioner]), PR1-15 reason, PR1-19 identifier, PR1-23
 * treating organizational unit as the Location (PL[Location]), PR1-25 parent procedure, and the message's patient and
 * visit. PR1-16 code modifiers are left out: the IG folds them into the code only for
 * CPT's post-coordination syntax, which would change the code the id is made from.
 *
 * PR1 is sent by ADT (the PROCEDURE group of A01, A03, A04, A05, A06, A08, A13, A16, A28, A31...), BAR and DFT, each
 * time with the procedures as the sender knows them, so Procedure is an update draft like the other ADT resources
 * (drafts.ts). The ROL segments of the PROCEDURE group are performers beside PR1-8/11/12 (roles.ts).
 */

import { type Hl7Repetition, type Hl7Segment, fieldOf, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { deterministicId } from '../ids.ts';
import type { ResourceDraft } from '../types.ts';

import { conceptKey, patientId, sendingFacility } from './adt-common.ts';
import { PROCEDURE_CODE_SYSTEMS, eachSegmentResource, visitReference } from './clinical-common.ts';
import {
  type CodeableConcept,
  type Reference,
  comp,
  entityIdentifierOf,
  hl7TableSystems,
  pruneEmpty,
  toCodeableConcept,
  toCodeableConceptIn,
  toDecimal,
  toEntityIdentifier,
  toFhirDateTime,
  toLocationDisplay,
} from './datatypes.ts';
import { locationReference, practitionerReference } from './directory.ts';
import { element, listElement, updateDraft } from './drafts.ts';
import { procedurePerformers } from './roles.ts';
import type { MappingContext } from './context.ts';

const SNOMED = 'http://snomed.info/sct';

/** Performer functions the IG assigns by field: PR1-8 anesthesiologist, PR1-11 surgeon; PR1-12 has none. */
const ANESTHESIOLOGIST: CodeableConcept = { coding: [{ system: SNOMED, code: '88189002', display: 'Anesthesiologist' }] };
const SURGEON: CodeableConcept = { coding: [{ system: SNOMED, code: '304292004', display: 'Surgeon' }] };

/** The procedures of a message that maps its visit: each refers to the visit's Encounter. */
export function buildProcedures(context: MappingContext): ResourceDraft[] {
  return proceduresOf(context, visitReference(context));
}

/**
 * The procedures of a message that maps no visit (A28/A31 about the person): the patient's, without an
 * Encounter to refer to. A procedure is something done to the patient at a time, which stays true without the visit
 * (unlike a DG1 diagnosis, whose type is its place in a visit: adt.ts).
 */
export function buildProceduresOutsideVisit(context: MappingContext): ResourceDraft[] {
  return proceduresOf(context, undefined);
}

function proceduresOf(context: MappingContext, encounter: Reference | undefined): ResourceDraft[] {
  const segments = segmentsNamed(context.message, 'PR1');
  if (segments.length === 0) return [];
  const patient = patientId(context);
  return eachSegmentResource(segments, (pr1) => buildProcedure(pr1, patient, encounter, context), context.message);
}

function buildProcedure(pr1: Hl7Segment, patient: string, encounter: Reference | undefined, context: MappingContext): ResourceDraft {
  const { options } = context;
  const { timeZone } = options;
  const facility = sendingFacility(context);
  const code = procedureCode(pr1, context);
  const performedSent = comp(fieldOf(pr1, 5)[0], 1);
  const performed = element(fieldOf(pr1, 5), (rep) => toFhirDateTime(comp(rep, 1), 'PR1-5', timeZone));
  const identifier = element(fieldOf(pr1, 19), (rep) => toEntityIdentifier(entityIdentifierOf(rep), 'PR1-19', options, facility));
  const id =
    identifier?.system !== undefined && identifier.value !== undefined
      ? deterministicId('Procedure', identifier.system, identifier.value)
      : deterministicId('Procedure', patient, conceptKey(code), performedSent, comp(fieldOf(pr1, 1)[0], 1));

  return updateDraft('Procedure', id, {
    identifier: identifier === undefined ? undefined : identifier === null ? null : [identifier],
    partOf: element(fieldOf(pr1, 25), (rep) => {
      const parent = toEntityIdentifier(entityIdentifierOf(rep), 'PR1-25', options, facility);
      return parent === undefined ? undefined : [{ type: 'Procedure', identifier: parent }];
    }),
    status: procedureStatus(pr1, typeof performed === 'string' ? performed : undefined, context),
    category: element(fieldOf(pr1, 6), (rep) => toCodeableConceptIn(rep, options, 'HL70230', hl7TableSystems('0230'))),
    code,
    subject: { reference: `Patient/${patient}` },
    encounter,
    ...performedElements(pr1, performed, performedSent),
    // PR1-8/11/12 and the ROL segments of the PROCEDURE group (roles.ts), merged so that neither replaces the other's.
    performer: procedurePerformers(
      pr1,
      listElement([
        [fieldOf(pr1, 8), (rep: Hl7Repetition) => performer(practitionerReference(rep, 'PR1-8', context), ANESTHESIOLOGIST)],
        [fieldOf(pr1, 11), (rep: Hl7Repetition) => performer(practitionerReference(rep, 'PR1-11', context), SURGEON)],
        [fieldOf(pr1, 12), (rep: Hl7Repetition) => performer(practitionerReference(rep, 'PR1-12', context), undefined)],
      ]),
      context,
    ),
    location: treatingUnit(pr1, context),
    reasonCode: listElement([[fieldOf(pr1, 15), (rep) => toCodeableConcept(rep, options, 'HL70051')]]),
  });
}

/** PR1-3 (CNE, procedure codes of user-defined table 0088), with PR1-4 description as text when PR1-3 gives none. */
function procedureCode(pr1: Hl7Segment, context: MappingContext): CodeableConcept {
  const sent = toCodeableConceptIn(fieldOf(pr1, 3)[0] ?? [], context.options, 'HL70088', PROCEDURE_CODE_SYSTEMS);
  const description = comp(fieldOf(pr1, 4)[0], 1);
  const code = pruneEmpty<CodeableConcept>({ ...sent, text: sent?.text ?? (description || undefined) });
  if (code === undefined) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'PR1-3: the procedure code is empty (and PR1-4 has no description)', { location: 'PR1-3' });
  }
  return code;
}

/**
 * Procedure.status. The IG leaves it to the message context, `unknown` when that is not clear. PR1-5 is by definition
 * when the procedure was performed, so a PR1-5 at or before the message was made (MSH-7) says it was done:
 * completed; a PR1-5 after it (a preadmit's planned surgery), or no time to compare, leaves it unknown. PR1-20 action
 * code D (HL7 table 0206: delete) marks the procedure entered in error.
 */
function procedureStatus(pr1: Hl7Segment, performed: string | undefined, context: MappingContext): string {
  if (comp(fieldOf(pr1, 20)[0], 1).toUpperCase() === 'D') return 'entered-in-error';
  if (performed === undefined) return 'unknown';
  let messageTime: string | undefined;
  try {
    messageTime = toFhirDateTime(comp(fieldOf(context.msh, 7)[0], 1), 'MSH-7', context.options.timeZone);
  } catch {
    // An unreadable MSH-7 is reported where the message's time is read (provenance.ts); here it leaves status unknown.
    messageTime = undefined;
  }
  if (messageTime === undefined) return 'unknown';
  return Date.parse(performed) <= Date.parse(messageTime) ? 'completed' : 'unknown';
}

/**
 * performedDateTime from PR1-5; performedPeriod from PR1-5 to PR1-5 plus PR1-7 minutes when PR1-7 is sent and PR1-5
 * gives the time at least to the minute (the IG's condition). Sending one type removes the other.
 */
function performedElements(pr1: Hl7Segment, performed: string | null | undefined, performedSent: string): Record<string, unknown> {
  if (performed === null) return { performedDateTime: null, performedPeriod: null };
  if (performed === undefined) return {};
  const minutes = element(fieldOf(pr1, 7), (rep) => {
    const value = toDecimal(comp(rep, 1), 'PR1-7');
    if (value !== undefined && value < 0) throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_INVALID_VALUE', 'PR1-7: procedure minutes are negative', { location: 'PR1-7' });
    return value;
  });
  // YYYYMMDDHHMM: twelve digits before any seconds, fraction or offset.
  if (typeof minutes === 'number' && /^\d{12}/.test(performedSent)) {
    return { performedPeriod: { start: performed, end: addMinutes(performed, minutes) }, performedDateTime: null };
  }
  return { performedDateTime: performed, performedPeriod: null };
}

const FHIR_TIME = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?([+-]\d{2}):(\d{2})$/;

/** A FHIR dateTime with a time and an offset, `minutes` later, in the same offset (to the second). */
export function addMinutes(dateTime: string, minutes: number): string {
  const match = FHIR_TIME.exec(dateTime);
  if (match === null) return dateTime;
  const [, local, offsetHours, offsetMinutes] = match;
  // The wall time read as UTC and moved by the minutes is the wall time of the end in the same offset: the same
  // instant as start + minutes, whatever the offset.
  const shifted = new Date(Date.parse(`${local}Z`) + Math.round(minutes * 60) * 1000);
  return `${shifted.toISOString().slice(0, 19)}${offsetHours}:${offsetMinutes}`;
}

/**
 * PR1-23 treating organizational unit as a Location; a PL that cannot be read as one (PL-4 a malformed UUID) is an
 * issue, and the place is kept as a display, as an appointment's AIL-3 is (scheduling.ts).
 */
function treatingUnit(pr1: Hl7Segment, context: MappingContext): Reference | null | undefined {
  const field = fieldOf(pr1, 23);
  const location = element(field, (rep) => locationReference(rep, 'PR1-23', context));
  if (location !== undefined) return location;
  const display = toLocationDisplay(field[0]);
  return display === undefined ? undefined : { display };
}

function performer(actor: Reference | undefined, role: CodeableConcept | undefined): Record<string, unknown> | undefined {
  return actor === undefined ? undefined : pruneEmpty({ function: role, actor });
}

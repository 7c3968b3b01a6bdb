/**
 * SIU^S12 (new booking), S13 (rescheduled), S14 (modified) and S15 (cancelled) -> Appointment drafts, after the
 * HL7 v2-to-FHIR IG segment maps SCH[Appointment], AIP/AIL/AIS[Appointment].
 *
 * An appointment changes through its life (booked, moved, changed, cancelled), so Appointment is an update draft.
 * It is keyed on the filler appointment id (SCH-2), which the scheduling system that sends SIU assigns itself, else
 * on the placer's (SCH-1).
 */

import { type Hl7Repetition, type Hl7Segment, fieldOf, firstSegment, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { deterministicId } from '../ids.ts';
import type { ResourceDraft } from '../types.ts';

import { buildPatient } from './adt.ts';
import {
  type CodeableConcept,
  type Reference,
  codeTable,
  comp,
  hl7TableSystems,
  toCodeableConcept,
  toCodeableConceptIn,
  toDecimal,
  toFhirDateTime,
  toLocationDisplay,
} from './datatypes.ts';
import { locationReference, practitionerReference } from './directory.ts';
import { codeOf, element, listElement, updateDraft } from './drafts.ts';
import { eiKey, invalidValue, missingField, noteOf, singlePatientReference } from './message-common.ts';
import type { MappingContext, MappingRow } from './context.ts';
import { degrade, reportIssue } from '../issues.ts';

// ---------------------------------------------------------------------------------------------------------------
// Tables

/**
 * HL7 table 0278 (filler status codes, SCH-25) -> appointment status. The IG maps SCH-25 to status without
 * publishing the table; these follow the definitions. Blocked marks a blocked slot, which is not an appointment.
 * Keys are upper case: senders write Booked, BOOKED and booked.
 */
const APPOINTMENT_STATUS = codeTable<string>({
  BOOKED: 'booked',
  OVERBOOK: 'booked',
  PENDING: 'pending',
  WAITLIST: 'waitlist',
  STARTED: 'arrived',
  COMPLETE: 'fulfilled',
  CANCELLED: 'cancelled',
  DC: 'cancelled',
  NOSHOW: 'noshow',
  DELETED: 'entered-in-error',
});

/** Table 0278 on a resource (AIP-12, AIL-12) -> participationstatus. */
const PARTICIPATION_STATUS = codeTable<string>({
  BOOKED: 'accepted',
  OVERBOOK: 'accepted',
  STARTED: 'accepted',
  COMPLETE: 'accepted',
  PENDING: 'tentative',
  WAITLIST: 'needs-action',
  CANCELLED: 'declined',
  DC: 'declined',
  DELETED: 'declined',
  NOSHOW: 'declined',
});

/** The HL7 table 0276 (appointment reason) codes FHIR R4 uses for Appointment.appointmentType (preferred binding). */
const APPOINTMENT_TYPES = new Set(['CHECKUP', 'EMERGENCY', 'FOLLOWUP', 'ROUTINE', 'WALKIN']);

/** Statuses app-3 lets go without a start and end. */
const UNTIMED_STATUSES = new Set(['proposed', 'cancelled', 'waitlist']);

/** Duration units (SCH-10, TQ1-13 units) -> minutes per unit. */
const MINUTES_PER_UNIT = codeTable<number>({ MIN: 1, M: 1, MINUTE: 1, MINUTES: 1, H: 60, HR: 60, HOUR: 60, HOURS: 60, S: 1 / 60, SEC: 1 / 60, D: 1440, DAY: 1440 });

/** TQ-3 duration ("M30" 30 minutes, "H1" one hour) prefix -> minutes per unit. */
const TQ_DURATION_UNITS = codeTable<number>({ S: 1 / 60, M: 1, H: 60, D: 1440, W: 10080 });

// ---------------------------------------------------------------------------------------------------------------
// Builder

export function buildAppointment(context: MappingContext): ResourceDraft {
  const { options, triggerEvent } = context;
  const subject = singlePatientReference(context);
  const sch = firstSegment(context.message, 'SCH');
  if (sch === undefined) throw missingField('SCH', 'SCH segment is missing');

  const placer = eiKey(fieldOf(sch, 1)[0], 'SCH-1', context, 'PLAC');
  const filler = eiKey(fieldOf(sch, 2)[0], 'SCH-2', context, 'FILL');
  const key = filler ?? placer;
  if (key === undefined) throw missingField('SCH-2', 'neither a filler (SCH-2) nor a placer (SCH-1) appointment id is sent');

  const status = appointmentStatus(sch, triggerEvent);
  const timing = appointmentTiming(context, sch);
  // Only a proposed, cancelled or waitlisted appointment may lack its time (FHIR app-3); SIU senders send SCH-11 or
  // TQ1 with every message, so a message without them cannot describe a booked appointment.
  if (!UNTIMED_STATUSES.has(status)) {
    if (timing.start === undefined) throw missingField(timing.location, 'the appointment has no start');
    if (timing.end === undefined) throw missingField(timing.location, 'the appointment has no end and no duration');
  } else if ((timing.start === undefined) !== (timing.end === undefined)) {
    // FHIR app-2: start and end go together. A cancelled or proposed appointment sent with half its time leaves the
    // stored time as it was; the half is an issue, and stays in the raw message.
    reportIssue({ severity: 'information', code: 'ANCHORLINE_ISSUE_MISSING_FIELD', location: timing.location, detail: `${timing.location}: the appointment has a start or an end but not both; its time was left as stored` });
    timing.start = undefined;
    timing.end = undefined;
  }

  const reason = fieldOf(sch, 7);
  const reasonIsType = APPOINTMENT_TYPES.has(comp(reason[0], 1).toUpperCase()) && ['', 'HL70276'].includes(comp(reason[0], 3));
  const notes = notesBeforePatient(context.message.segments);

  return updateDraft('Appointment', deterministicId('Appointment', key.system, key.value), {
    identifier: [placer, filler],
    status,
    cancelationReason: triggerEvent === 'S15' ? element(fieldOf(sch, 6), (rep) => toCodeableConcept(rep, options, 'L')) : undefined,
    serviceType: serviceTypes(context),
    appointmentType: reasonIsType ? element(reason, (rep) => toCodeableConceptIn(rep, options, 'HL70276', hl7TableSystems('0276'))) : undefined,
    reasonCode: reasonIsType ? undefined : listElement([[reason, (rep) => toCodeableConcept(rep, options, 'L')]]),
    start: timing.start,
    end: timing.end,
    minutesDuration: timing.minutes,
    comment: notes.length > 0 ? notes.join('\n') : undefined,
    participant: [{ actor: subject, status: 'accepted' }, ...resourceParticipants(context)],
  });
}

/**
 * Events that are themselves the appointment's fate, whatever SCH-25 still says: S15 cancels, S16 discontinues, S17
 * deletes (an appointment that should not exist), S26 records a no-show.
 */
const EVENT_STATUS = codeTable<string>({ S15: 'cancelled', S16: 'cancelled', S17: 'entered-in-error', S26: 'noshow' });

function appointmentStatus(sch: Hl7Segment, triggerEvent: string): string {
  const fixed = EVENT_STATUS.get(triggerEvent);
  if (fixed !== undefined) return fixed;
  const code = codeOf(fieldOf(sch, 25));
  if (code === '') return 'booked';
  const status = APPOINTMENT_STATUS.get(code.toUpperCase());
  if (status !== undefined) return status;
  // Appointment.status is required: a filler status outside table 0278 reads as the event's default, booked.
  return degrade(invalidValue('SCH-25', 'filler status is not an HL7 table 0278 code for an appointment; read as booked'), 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', 'booked', code);
}

// ---------------------------------------------------------------------------------------------------------------
// Timing

interface AppointmentTiming {
  start?: string;
  end?: string;
  minutes?: number;
  /** Where the timing came from, for errors. */
  location: string;
}

/**
 * Start and end from TQ1 (TQ1-7, TQ1-8; v2.5 on) or SCH-11 (TQ: 4 start, 5 end). Without an end, the end is the
 * start plus the duration: TQ1-13, SCH-11.3 ("M30"), or SCH-9 in SCH-10 units (minutes when not sent).
 */
function appointmentTiming(context: MappingContext, sch: Hl7Segment): AppointmentTiming {
  const { timeZone } = context.options;
  const tq1 = firstSegment(context.message, 'TQ1');
  const tq = fieldOf(sch, 11)[0];
  const location = tq1 !== undefined ? 'TQ1-7' : 'SCH-11';
  const start = instant(tq1 !== undefined ? comp(fieldOf(tq1, 7)[0], 1) : comp(tq, 4, 1), location, timeZone);
  const sentEnd = instant(tq1 !== undefined ? comp(fieldOf(tq1, 8)[0], 1) : comp(tq, 5, 1), tq1 !== undefined ? 'TQ1-8' : 'SCH-11', timeZone);
  const minutes = durationMinutes(sch, tq1, tq);
  const end = sentEnd ?? (start !== undefined && minutes !== undefined ? addMinutes(start, minutes) : undefined);
  if (start !== undefined && end !== undefined && Date.parse(end) < Date.parse(start)) throw invalidValue(location, 'the appointment ends before it starts');
  return { start, end, minutes: minutes !== undefined && Number.isInteger(minutes) && minutes > 0 ? minutes : undefined, location };
}

function durationMinutes(sch: Hl7Segment, tq1: Hl7Segment | undefined, tq: Hl7Repetition | undefined): number | undefined {
  if (tq1 !== undefined && comp(fieldOf(tq1, 13)[0], 1) !== '') {
    const occurrence = fieldOf(tq1, 13)[0];
    return inMinutes(toDecimal(comp(occurrence, 1), 'TQ1-13'), comp(occurrence, 2, 1), 'TQ1-13');
  }
  const tqDuration = /^([SMHDW])(\d+)$/i.exec(comp(tq, 3));
  if (tqDuration !== null) return Number(tqDuration[2]) * TQ_DURATION_UNITS.get(tqDuration[1]!.toUpperCase())!;
  const duration = toDecimal(comp(fieldOf(sch, 9)[0], 1), 'SCH-9');
  return inMinutes(duration, comp(fieldOf(sch, 10)[0], 1) || 'MIN', 'SCH-10');
}

function inMinutes(amount: number | undefined, unit: string, location: string): number | undefined {
  if (amount === undefined) return undefined;
  const factor = MINUTES_PER_UNIT.get(unit.toUpperCase());
  if (factor === undefined) throw invalidValue(location, 'duration unit is not one of minutes, hours, seconds, days');
  if (amount < 0) throw invalidValue(location, 'duration is negative');
  return amount * factor;
}

/** A time FHIR instant can hold; Appointment.start and end are instants, so a bare date is an error. */
function instant(value: string, location: string, timeZone: string): string | undefined {
  const time = toFhirDateTime(value, location, timeZone);
  if (time !== undefined && time.length <= 10) throw invalidValue(location, 'the appointment time has no time of day');
  return time;
}

/** A FHIR dateTime plus minutes, written in the same UTC offset. */
function addMinutes(dateTime: string, minutes: number): string {
  const offset = /([+-])(\d{2}):(\d{2})$/.exec(dateTime);
  const offsetMinutes = offset === null ? 0 : (offset[1] === '-' ? -1 : 1) * (Number(offset[2]) * 60 + Number(offset[3]));
  const local = new Date(Date.parse(dateTime) + (minutes + offsetMinutes) * 60_000);
  const text = local.toISOString().slice(0, 19);
  return `${text}${offset === null ? 'Z' : offset[0]}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Participants, services, notes

function resourceParticipants(context: MappingContext): Array<Record<string, unknown>> {
  const { options } = context;
  const participants: Array<Record<string, unknown>> = [];
  for (const segment of context.message.segments) {
    if (segment.name === 'AIP') {
      const actor = element(fieldOf(segment, 3), (rep) => practitionerReference(rep, 'AIP-3', context));
      const role = element(fieldOf(segment, 4), (rep) => toCodeableConcept(rep, options, 'L'));
      if (!actor && !role) continue;
      participants.push({ type: role ? [role] : undefined, actor: actor ?? undefined, status: participationStatus(segment, 'AIP-12') });
    } else if (segment.name === 'AIL') {
      // A PL that cannot be read as a Location (PL-4 a malformed UUID) is an issue; the place is kept as a display.
      const display = toLocationDisplay(fieldOf(segment, 3)[0]);
      const actor: (Reference & { type?: string }) | undefined =
        element(fieldOf(segment, 3), (rep) => locationReference(rep, 'AIL-3', context)) ?? (display === undefined ? undefined : { type: 'Location', display });
      if (actor === undefined) continue;
      participants.push({ actor, status: participationStatus(segment, 'AIL-12') });
    }
  }
  return participants;
}

function participationStatus(segment: Hl7Segment, location: string): string {
  const code = codeOf(fieldOf(segment, 12));
  if (code === '') return 'accepted';
  const status = PARTICIPATION_STATUS.get(code.toUpperCase());
  return status ?? degrade(invalidValue(location, 'filler status is not an HL7 table 0278 code; read as needs-action'), 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', 'needs-action', code);
}

/** AIS-3 universal service identifiers of every AIS segment; undefined without AIS (the stored services stay). */
function serviceTypes(context: MappingContext): CodeableConcept[] | undefined {
  const services = segmentsNamed(context.message, 'AIS')
    .map((ais) => element(fieldOf(ais, 3), (rep) => toCodeableConcept(rep, context.options, 'L')))
    .filter((service): service is CodeableConcept => service !== undefined && service !== null);
  return services.length > 0 ? services : undefined;
}

/** NTE segments about the appointment itself: those after SCH and before the patient and resource groups. */
function notesBeforePatient(segments: readonly Hl7Segment[]): string[] {
  const notes: string[] = [];
  let afterSchedule = false;
  for (const segment of segments) {
    if (segment.name === 'SCH') afterSchedule = true;
    else if (segment.name === 'PID' || segment.name === 'RGS') break;
    else if (segment.name === 'NTE' && afterSchedule) {
      const note = noteOf(segment);
      if (note !== undefined) notes.push(note.text);
    }
  }
  return notes;
}

/** The scheduling rows of the mapping table (mappers/hl7v2/registry.ts). */
export const SCHEDULING_MAPPINGS: readonly MappingRow[] = [
  ['SIU^S12', [buildPatient, buildAppointment]],
  ['SIU^S13', [buildPatient, buildAppointment]],
  ['SIU^S14', [buildPatient, buildAppointment]],
  ['SIU^S15', [buildPatient, buildAppointment]],
  // S16 discontinue, S17 delete, S18-S25 changes to the appointment's services and resources, S26 no-show: the
  // appointment as the SCH and its resource segments describe it now (EVENT_STATUS for the events that decide it).
  ...Array.from({ length: 11 }, (_, i): MappingRow => [`SIU^S${16 + i}`, [buildPatient, buildAppointment]]),
];

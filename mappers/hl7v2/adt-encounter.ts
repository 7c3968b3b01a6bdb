/**
 * PV1 -> Encounter, by trigger event. What an ADT event says about the visit is in the event itself as much as in
 * PV1: a transfer (A02) moves the patient, a discharge (A03) ends the visit, a cancel (A11, A12, A13) takes one of
 * those back. Each event's row in ENCOUNTER_EVENTS says which status it sets and how it changes the location
 * history; the history itself is combined with what is stored by the Encounter.location rule in mappers/merge.ts.
 *
 * Statuses follow the v2-to-FHIR IG ConceptMap table-hl70003-to-encounter-status (A01, A02, A13 in-progress; A03
 * finished; A05 planned; A11 cancelled), with two deliberate differences: A04 is in-progress, not planned (a
 * registration is the start of an outpatient or emergency visit, which no later message moves on), and A08 leaves
 * the stored status alone instead of setting 'unknown' (the IG notes A08 does not convey the status; overwriting a
 * known status with 'unknown' would lose it).
 *
 * A11 (cancel admit/visit) sets 'cancelled' rather than 'entered-in-error': the IG's ConceptMap maps A11 to
 * cancelled, and HL7 v2.5.1 section 3.3.11 sends A11 both when the admit was entered in error and when the patient
 * was not admitted after all; only the second is an error in the record, and the message does not say which. FHIR
 * R4 'cancelled' ("the Encounter has ended before it has begun") is true in both cases.
 */

import { type Hl7Segment, fieldOf, firstSegment, isEmptyField, isExplicitNull, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { deterministicId } from '../ids.ts';
import {
  type ClassChangeOperation,
  type EncounterLocationEntry,
  type EncounterLocationOperation,
  type EncounterSidePlaces,
  type MembersOperation,
  temporaryLocationClassification,
} from '../merge.ts';
import type { ResourceDraft } from '../types.ts';

import { eventDateTime, keyIdentifier, patientReference, requireEventDateTime, visitKey } from './adt-common.ts';
import {
  type CodeableConcept,
  type Coding,
  codeTable,
  comp,
  localCodeSystem,
  mappedValue,
  toCodeableConcept,
  toDecimal,
  toFhirDateTime,
  type Reference,
  toLocationDisplay,
} from './datatypes.ts';
import { locationReference, practitionerReference } from './directory.ts';
import { codeOf, element, listElement, updateDraft } from './drafts.ts';
import { type FieldSources, PRIOR_KEY_FIELD, sourceField, sourcesOf } from './field-sources.ts';
import { encounterParticipants } from './roles.ts';
import type { MappingContext } from './context.ts';

const V3_ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const V3_NULL_FLAVOR = 'http://terminology.hl7.org/CodeSystem/v3-NullFlavor';

const INPATIENT: Coding = { system: V3_ACT_CODE, code: 'IMP', display: 'inpatient encounter' };
const AMBULATORY: Coding = { system: V3_ACT_CODE, code: 'AMB', display: 'ambulatory' };

/**
 * HL7 table 0004 (patient class) -> Encounter.class. E, I, O, P as the v2-to-FHIR IG ConceptMap v2-0004 to
 * encounter class. The IG leaves the rest unmapped; ours: R (recurring patient, a series of outpatient visits) ->
 * AMB, B (obstetrics, an admission) -> IMP, U and N -> NullFlavor UNK and NA. Other codes (C commercial account and
 * local codes) keep the sender's code in a local system, which the extensible binding allows.
 */
export const ENCOUNTER_CLASS = codeTable<Coding>({
  E: { system: V3_ACT_CODE, code: 'EMER', display: 'emergency' },
  I: INPATIENT,
  O: AMBULATORY,
  P: { system: V3_ACT_CODE, code: 'PRENC', display: 'pre-admission' },
  R: AMBULATORY,
  B: INPATIENT,
  U: { system: V3_NULL_FLAVOR, code: 'UNK', display: 'unknown' },
  N: { system: V3_NULL_FLAVOR, code: 'NA', display: 'not applicable' },
});

/** What one trigger event does to the Encounter. */
interface EncounterEvent {
  /**
   * Encounter.status: a code; 'from-visit' to derive it from PV1 as a visit start does (finished when PV1-45 is
   * sent, planned for a preadmit, PV1-2 P, as the IG's table-hl70004-to-encounter-status, else in-progress);
   * absent to leave the stored status alone.
   */
  status?: string;
  /**
   * How PV1-3 changes the location history (EncounterLocationOperation in mappers/merge.ts); 'keep' leaves it.
   * 'arrive' is also right for events that only restate the location (A08): arriving where the patient already is
   * changes nothing.
   */
  location: 'arrive' | 'leave' | 'cancel-arrive' | 'cancel-leave' | 'keep';
  /** When an arrival happened: 'admit' = PV1-44 admit time, else the event time (events that start the visit). */
  arrivalTime?: 'admit' | 'event';
  /** PV1-3 must be sent: the event is about a location (A02 to where, A12 back to where). */
  requiresLocation?: boolean;
  /** The event cannot be recorded without its time (a transfer, a class change): EVN-6, EVN-2 or MSH-7 must be sent. */
  timeRequired?: boolean;
  /** How PV1-44/PV1-45 change the period: as sent; 'end' = ends now (A03); 'reopen' = the end is removed (A13). */
  period: 'as-sent' | 'end' | 'reopen';
  /** The event changes the patient class (A06, A07): this class when PV1-2 is empty, and the change is recorded in classHistory. */
  classChange?: Coding;
  /** The arrival is planned, not yet made (A05): location status planned. */
  planned?: boolean;
}

const ENCOUNTER_EVENTS = codeTable<EncounterEvent>({
  A01: { status: 'from-visit', location: 'arrive', arrivalTime: 'admit', period: 'as-sent' },
  A02: { status: 'in-progress', location: 'arrive', arrivalTime: 'event', requiresLocation: true, timeRequired: true, period: 'as-sent' },
  A03: { status: 'finished', location: 'leave', period: 'end' },
  A04: { status: 'from-visit', location: 'arrive', arrivalTime: 'admit', period: 'as-sent' },
  A05: { status: 'planned', location: 'arrive', planned: true, period: 'as-sent' },
  A06: { status: 'in-progress', location: 'arrive', arrivalTime: 'event', timeRequired: true, period: 'as-sent', classChange: INPATIENT },
  A07: { status: 'in-progress', location: 'arrive', arrivalTime: 'event', timeRequired: true, period: 'as-sent', classChange: AMBULATORY },
  A08: { location: 'arrive', arrivalTime: 'event', period: 'as-sent' },
  A11: { status: 'cancelled', location: 'keep', period: 'as-sent' },
  // A12 does not change the status: the patient is still admitted, at the location before the cancelled transfer.
  A12: { location: 'cancel-arrive', requiresLocation: true, period: 'as-sent' },
  A13: { status: 'in-progress', location: 'cancel-leave', period: 'reopen' },
  // Tracking: A09 the patient leaves for a while (a test, another unit), A10 arrives there; the visit goes on.
  A09: { location: 'keep', period: 'as-sent' },
  A10: { location: 'arrive', arrivalTime: 'event', period: 'as-sent' },
  // Pending events announce what has not happened yet: a pending admit is a planned visit; a pending transfer or
  // discharge changes nothing until the A02 or A03 that carries it out.
  A14: { status: 'planned', location: 'arrive', planned: true, period: 'as-sent' },
  A15: { location: 'keep', period: 'as-sent' },
  A16: { location: 'keep', period: 'as-sent' },
  // Leave of absence: out (A21) and back (A22), and their cancels (A52 cancels the leave, A53 the return).
  A21: { status: 'onleave', location: 'keep', period: 'as-sent' },
  A22: { status: 'in-progress', location: 'keep', period: 'as-sent' },
  A52: { status: 'in-progress', location: 'keep', period: 'as-sent' },
  A53: { status: 'onleave', location: 'keep', period: 'as-sent' },
  // A23 deletes a visit that should not exist.
  A23: { status: 'entered-in-error', location: 'keep', period: 'as-sent' },
  // Cancels of pending events: a cancelled pending or pre-admit is a cancelled visit; the others change nothing.
  A25: { location: 'keep', period: 'as-sent' },
  A26: { location: 'keep', period: 'as-sent' },
  A27: { status: 'cancelled', location: 'keep', period: 'as-sent' },
  A38: { status: 'cancelled', location: 'keep', period: 'as-sent' },
  A32: { location: 'keep', period: 'as-sent' },
  A33: { location: 'keep', period: 'as-sent' },
  // Changes of the attending (A54) or consulting (A61) doctor and their cancels: the visit's participants only.
  A54: { location: 'keep', period: 'as-sent' },
  A55: { location: 'keep', period: 'as-sent' },
  A61: { location: 'keep', period: 'as-sent' },
  A62: { location: 'keep', period: 'as-sent' },
});

/**
 * Messages other than ADT that carry a PV1 (BAR, DFT, ORU, VXU, ...) describe the visit as it stands, as an A08 does:
 * the PV1 restates it, and nothing about the visit's state changes because of the message.
 */
const VISIT_AS_IT_STANDS: EncounterEvent = { location: 'keep', period: 'as-sent' };

const V3_PARTICIPATION_TYPE = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';

/** The participation type of each Encounter.participant source, as the v2-to-FHIR IG segment map PV1[Encounter]. */
const PARTICIPATION_OF_SOURCE: Readonly<Record<FieldSources['Encounter.participant'][number], CodeableConcept>> = {
  'PV1-7': { coding: [{ system: V3_PARTICIPATION_TYPE, code: 'ATND', display: 'attender' }] },
  'PV1-8': { coding: [{ system: V3_PARTICIPATION_TYPE, code: 'REF', display: 'referrer' }] },
  'PV1-9': { coding: [{ system: V3_PARTICIPATION_TYPE, code: 'CON', display: 'consultant' }] },
  'PV1-17': { coding: [{ system: V3_PARTICIPATION_TYPE, code: 'ADM', display: 'admitter' }] },
};

/**
 * The visit's Encounter draft; undefined when the message has no PV1 or no visit number (PV1-19, or the config's
 * Encounter.identifier source: without a visit key there is no visit) or the event does not describe a visit. For
 * A06 and A07 whose MRG-5 names a prior visit other than PV1-19 (HL7 v2.5.1 3.3.6: the visit number may change with
 * the class), the prior visit's Encounter is finished at the event time and comes first.
 */
export function buildEncounter(context: MappingContext): ResourceDraft | ResourceDraft[] | undefined {
  const event = context.messageType === 'ADT' ? ENCOUNTER_EVENTS.get(context.triggerEvent) : VISIT_AS_IT_STANDS;
  const pv1 = firstSegment(context.message, 'PV1');
  if (event === undefined || pv1 === undefined) return undefined;
  const visit = visitKey(context);
  if (visit === undefined) return undefined;

  const { options } = context;
  const { timeZone } = options;
  const start = element(fieldOf(pv1, 44), (rep) => toFhirDateTime(comp(rep, 1), 'PV1-44', timeZone));
  const end = element(fieldOf(pv1, 45), (rep) => toFhirDateTime(comp(rep, 1), 'PV1-45', timeZone));
  const patientClass = patientClassOf(context);

  let status = event.status;
  if (status === 'from-visit') status = typeof end === 'string' ? 'finished' : patientClass === 'P' ? 'planned' : 'in-progress';

  let klass = element(fieldOf(pv1, 2), (rep) => encounterClass(comp(rep, 1), context));
  if (event.classChange !== undefined && klass === undefined) klass = event.classChange;

  const subject = patientReference(context);
  const places = visitPlaces(pv1, context);
  const encounter = updateDraft('Encounter', visit.id, {
    identifier: [visit.identifier],
    status,
    class: klass,
    classHistory: event.classChange !== undefined && klass ? classChange(klass, context) : undefined,
    subject,
    period: periodOperation(event, start, end, context),
    location: locationOperation(event, status, start, end, places, context),
    hospitalization: hospitalization(context),
    ...visitDetails(context),
    // The PV1 doctors and the ROL segments after PV1 (roles.ts), merged so that neither replaces the other's entries.
    participant: encounterParticipants(
      pv1,
      listElement(
        sourcesOf(options, 'Encounter.participant').map(
          (source) =>
            [
              sourceField(source, { PV1: pv1 }),
              (rep) => {
                const individual = practitionerReference(rep, source, context);
                return individual === undefined ? undefined : { type: [PARTICIPATION_OF_SOURCE[source]], individual };
              },
            ] as const,
        ),
      ),
      context,
    ),
  });
  const prior = event.classChange === undefined ? undefined : priorVisit(context, visit.id);
  return prior === undefined ? encounter : [prior, encounter];
}

const V3_ACT_PRIORITY = 'http://terminology.hl7.org/CodeSystem/v3-ActPriority';

/** HL7 table 0217 (visit priority, PV2-25) -> v3 ActPriority, the code system of Encounter.priority's example set. */
const VISIT_PRIORITY = codeTable<Coding>({
  '1': { system: V3_ACT_PRIORITY, code: 'EM', display: 'emergency' },
  '2': { system: V3_ACT_PRIORITY, code: 'UR', display: 'urgent' },
  '3': { system: V3_ACT_PRIORITY, code: 'EL', display: 'elective' },
});

/**
 * What PV2 adds to the visit, after the IG's PV2[Encounter] map: PV2-3 admit reason as reasonCode, PV2-11 actual
 * length of inpatient stay (days) as length, PV2-25 visit priority (table 0217, with the sent code beside the v3
 * ActPriority one). Each follows the field rules: not sent keeps what is stored, `""` removes it.
 */
function visitDetails(context: MappingContext): Record<string, unknown> {
  const pv2 = firstSegment(context.message, 'PV2');
  if (pv2 === undefined) return {};
  const { options } = context;
  const length = element(fieldOf(pv2, 11), (rep) => {
    const days = toDecimal(comp(rep, 1), 'PV2-11');
    return days === undefined ? undefined : { value: days, unit: 'd', system: 'http://unitsofmeasure.org', code: 'd' };
  });
  const priority = element(fieldOf(pv2, 25), (rep) => {
    const code = comp(rep, 1);
    if (code === '') return undefined;
    const local = { system: localCodeSystem('HL70217', options), code };
    const standard = VISIT_PRIORITY.get(code);
    return { coding: standard === undefined ? [local] : [standard, local] };
  });
  return { reasonCode: listElement([[fieldOf(pv2, 3), (rep) => toCodeableConcept(rep, options, 'L')]]), length, priority };
}

/** PV1-2 patient class as the mapper reads it: the code sent, after the config's HL70004 value map. */
function patientClassOf(context: MappingContext): string {
  return mappedValue(context.options, 'HL70004', codeOf(fieldOf(firstSegment(context.message, 'PV1'), 2)));
}

function encounterClass(sent: string, context: MappingContext): Coding | undefined {
  if (sent === '') return undefined;
  const code = mappedValue(context.options, 'HL70004', sent);
  return ENCOUNTER_CLASS.get(code) ?? { system: localCodeSystem('HL70004', context.options), code };
}

function classChange(klass: Coding, context: MappingContext): ClassChangeOperation {
  return { $merge: 'class-change', class: klass, at: requireEventDateTime(context) };
}

/**
 * Period bounds merged one by one: each comes from its own field, and a message that sends one (an A03 with only
 * the discharge time) must not remove the other.
 */
function periodOperation(
  event: EncounterEvent,
  start: string | null | undefined,
  end: string | null | undefined,
  context: MappingContext,
): MembersOperation | undefined {
  const set: Record<string, string> = {};
  const remove: string[] = [];
  if (typeof start === 'string') set['start'] = start;
  if (start === null) remove.push('start');
  if (event.period === 'end') {
    // A discharge always ends the visit; without PV1-45 it ended when the event happened.
    const endedAt = typeof end === 'string' ? end : eventDateTime(context);
    if (endedAt !== undefined) set['end'] = endedAt;
  } else if (event.period === 'reopen') {
    remove.push('end');
  } else {
    if (typeof end === 'string') set['end'] = end;
    if (end === null) remove.push('end');
  }
  if (Object.keys(set).length === 0 && remove.length === 0) return undefined;
  return { $merge: 'members', ...(Object.keys(set).length > 0 ? { set } : {}), ...(remove.length > 0 ? { remove } : {}) };
}

/** The Locations of the places PV1 names that the location history refers to. */
interface VisitPlaces {
  /** PV1-3 assigned patient location. */
  assigned?: Reference;
  /** PV1-6 prior patient location. */
  prior?: Reference;
  /** PV1-11 temporary location. */
  temporary?: Reference;
  /** PV1-42 pending location. */
  pending?: Reference;
  /** PV1-43 prior temporary location. */
  priorTemporary?: Reference;
}

/**
 * Every place PV1 names becomes a Location (directory.ts), whatever the event does with it: PV1-3 assigned, PV1-6
 * prior, PV1-11 temporary, PV1-42 pending and PV1-43 prior temporary location. The location history (mappers/merge.ts)
 * refers to them (sidePlaces for the last three). A PL that cannot be read (PL-4 a malformed UUID) is an issue, and
 * the history keeps the place as a display.
 */
function visitPlaces(pv1: Hl7Segment, context: MappingContext): VisitPlaces {
  const place = (field: number): Reference | undefined => {
    const sent = fieldOf(pv1, field);
    return isExplicitNull(sent) || isEmptyField(sent) ? undefined : (element(sent, (rep) => locationReference(rep, `PV1-${field}`, context)) ?? undefined);
  };
  return { assigned: place(3), prior: place(6), temporary: place(11), pending: place(42), priorTemporary: place(43) };
}

/**
 * The places beside the assigned one, after the IG's PV1[Encounter] map: PV1-11 temporary location as an active entry
 * with the subject-locationClassification extension `temporary` (the IG names the value set's URL as the coding's
 * system; the code system's own URL is used), PV1-42 pending location as a `reserved` entry (the IG's status: the
 * place held for the patient, rather than R4's `planned`, which the history keeps for a preadmission's PV1-3), and
 * PV1-43 prior temporary location as a completed temporary entry. The IG puts PV1-43 on an R5 EncounterHistory in a
 * Basic resource; R4 has no EncounterHistory, and Encounter.location is where R4 keeps the places an encounter has
 * been, so it is an entry there, classified as the IG classifies it.
 *
 * Only ADT events say where the patient is (other messages restate the visit and change nothing of it); a visit
 * cancelled or entered in error gets none; a discharge only records where the patient was for a while (it ends the
 * stay everywhere, mappers/merge.ts), and a planned visit only the place held for it. PV1-11 or PV1-42 sent as `""`
 * ends the temporary stay or frees the place held; a PL that names only a facility is no place to be in.
 */
function sidePlaces(kind: 'stay' | 'planned' | 'leave', places: VisitPlaces, context: MappingContext): EncounterSidePlaces | undefined {
  const pv1 = firstSegment(context.message, 'PV1')!;
  const entryOf = (field: number, reference: Reference | undefined, fields: Omit<EncounterLocationEntry, 'location'>): EncounterLocationEntry | null | undefined => {
    const sent = fieldOf(pv1, field);
    if (isExplicitNull(sent)) return null;
    const display = isEmptyField(sent) ? undefined : toLocationDisplay(sent[0]);
    if (display === undefined) return undefined;
    return { location: reference ?? { display }, ...fields };
  };
  const at = eventDateTime(context);
  const temporary = entryOf(11, places.temporary, { status: 'active', ...(at === undefined ? {} : { period: { start: at } }), extension: [temporaryLocationClassification()] });
  const priorTemporary = entryOf(43, places.priorTemporary, { status: 'completed', extension: [temporaryLocationClassification()] }) ?? undefined;
  const pending = entryOf(42, places.pending, { status: 'reserved' });
  const held: EncounterSidePlaces = pending === null ? { released: true } : pending === undefined ? {} : { pending };
  const chosen: EncounterSidePlaces =
    kind === 'leave'
      ? { ...(priorTemporary === undefined ? {} : { priorTemporary }) }
      : kind === 'planned'
        ? held
        : {
            ...(temporary === null ? { backFromTemporary: true } : temporary === undefined ? {} : { temporary }),
            ...(priorTemporary === undefined ? {} : { priorTemporary }),
            ...held,
          };
  if (Object.keys(chosen).length === 0) return undefined;
  return at === undefined ? chosen : { at, ...chosen };
}

function locationOperation(
  event: EncounterEvent,
  status: string | undefined,
  start: string | null | undefined,
  end: string | null | undefined,
  places: VisitPlaces,
  context: MappingContext,
): EncounterLocationOperation | null | undefined {
  // Side places only from ADT events about a visit that is not void (sidePlaces).
  const withSide = context.messageType === 'ADT' && status !== 'cancelled' && status !== 'entered-in-error';
  const side = (kind: Parameters<typeof sidePlaces>[0]): EncounterSidePlaces | undefined => (withSide ? sidePlaces(kind, places, context) : undefined);
  const operation = historyOperation(event, status, start, end, places, context, side);
  if (operation !== undefined && operation !== null) return operation;
  if (operation === null) return null;
  const only = side(event.planned === true || patientClassOf(context) === 'P' ? 'planned' : 'stay');
  return only === undefined ? undefined : { $merge: 'places', places: only };
}

/** The operation of the assigned location's history for the event, with the side places `side` gives for its kind. */
function historyOperation(
  event: EncounterEvent,
  status: string | undefined,
  start: string | null | undefined,
  end: string | null | undefined,
  places: VisitPlaces,
  context: MappingContext,
  side: (kind: Parameters<typeof sidePlaces>[0]) => EncounterSidePlaces | undefined,
): EncounterLocationOperation | null | undefined {
  if (event.location === 'keep') return undefined;
  const pv1 = firstSegment(context.message, 'PV1')!;
  const assigned = fieldOf(pv1, 3);
  // An entry only for a place PL-1..3 name (a facility alone is not where a patient lies), as before Locations.
  const place = isExplicitNull(assigned) ? undefined : toLocationDisplay(assigned[0]);
  if (event.requiresLocation === true && place === undefined) {
    throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', `PV1-3: ${context.triggerEvent} needs the assigned patient location`, {
      location: 'PV1-3',
    });
  }
  // `""` in PV1-3 removes the location history, as it removes any element.
  if (isExplicitNull(assigned)) return null;
  const entry = place === undefined ? undefined : ({ location: places.assigned ?? { display: place } } satisfies EncounterLocationEntry);

  // A visit start sent with its discharge time (an A01 for a visit already over) is a stay that has ended.
  const operation = status === 'finished' && event.location === 'arrive' ? 'leave' : event.location;
  switch (operation) {
    case 'arrive': {
      if (entry === undefined) return undefined;
      if (event.planned === true || patientClassOf(context) === 'P') return withPlaces({ $merge: 'arrive', entry: { ...entry, status: 'planned' } }, side('planned'));
      const at =
        event.arrivalTime === 'admit' && typeof start === 'string' ? start : event.timeRequired === true ? requireEventDateTime(context) : eventDateTime(context);
      const priorField = fieldOf(pv1, 6);
      const priorPlace = isEmptyField(priorField) || isExplicitNull(priorField) ? undefined : toLocationDisplay(priorField[0]);
      return withPlaces(
        {
          $merge: 'arrive',
          entry: { ...entry, status: 'active', ...(at === undefined ? {} : { period: { start: at } }) },
          ...(at === undefined ? {} : { at }),
          ...(priorPlace === undefined ? {} : { prior: { location: places.prior ?? { display: priorPlace }, status: 'completed' } }),
        },
        side('stay'),
      );
    }
    case 'leave': {
      const at = typeof end === 'string' ? end : eventDateTime(context);
      return withPlaces({ $merge: 'leave', ...(at === undefined ? {} : { at }), ...(entry === undefined ? {} : { entry }) }, side('leave'));
    }
    case 'cancel-arrive':
      return { $merge: 'cancel-arrive', entry: entry! };
    case 'cancel-leave':
      return { $merge: 'cancel-leave', ...(entry === undefined ? {} : { entry }) };
  }
}

function withPlaces<T extends EncounterLocationOperation>(operation: T, places: EncounterSidePlaces | undefined): T {
  return places === undefined ? operation : { ...operation, places };
}

/**
 * Encounter.hospitalization from PV1-14 admit source and PV1-36 discharge disposition, merged member by member: an
 * admission sends the first and a discharge the second, and neither should erase the other.
 */
function hospitalization(context: MappingContext): MembersOperation | undefined {
  const pv1 = firstSegment(context.message, 'PV1');
  const { options } = context;
  const set: Record<string, unknown> = {};
  const remove: string[] = [];
  for (const [field, name, table] of [
    [14, 'admitSource', 'HL70023'],
    [36, 'dischargeDisposition', 'HL70112'],
  ] as const) {
    const value = element(fieldOf(pv1, field), (rep) => toCodeableConcept(rep, options, table));
    if (value === null) remove.push(name);
    else if (value !== undefined) set[name] = value;
  }
  if (Object.keys(set).length === 0 && remove.length === 0) return undefined;
  return { $merge: 'members', ...(Object.keys(set).length > 0 ? { set } : {}), ...(remove.length > 0 ? { remove } : {}) };
}

/**
 * The prior visit an A06/A07 closed (MRG-5, or the MRG counterpart of the config's Encounter.identifier: MRG-6 for
 * PV1-50, MRG-3 for PID-18), when it is not the visit the message is about.
 */
function priorVisit(context: MappingContext, currentId: string): ResourceDraft | undefined {
  const mrg = segmentsNamed(context.message, 'MRG')[0];
  const prior = PRIOR_KEY_FIELD[sourcesOf(context.options, 'Encounter.identifier')];
  const priorNumber = sourceField(prior, { MRG: mrg }).find((repetition) => comp(repetition, 1) !== '');
  if (priorNumber === undefined) return undefined;
  const identifier = keyIdentifier(priorNumber, prior, context);
  const id = deterministicId('Encounter', identifier.system, identifier.value);
  if (id === currentId) return undefined;
  const at = requireEventDateTime(context);
  return updateDraft('Encounter', id, {
    identifier: [identifier],
    status: 'finished',
    subject: patientReference(context),
    period: { $merge: 'members', set: { end: at } } satisfies MembersOperation,
    location: { $merge: 'leave', at } satisfies EncounterLocationOperation,
  });
}

/**
 * What a pharmacy did with an order: RDS (pharmacy/treatment dispense, O13 from v2.4, O01 before) -> one
 * MedicationDispense per RXD (and the order's MedicationRequest, as pharmacy.ts maps an RDE, when the RDS repeats
 * the order's RXE), and RAS (pharmacy/treatment administration, O17 from v2.4, O01 before) -> one
 * MedicationAdministration per RXA. The OBX of either are Observations partOf the event (observations.ts).
 *
 * The IG publishes no RXD or RXA[MedicationAdministration] segment map; the fields map by their HL7 definitions, and
 * where the IG maps the same field elsewhere its choice is followed: RXA-20 completion status by its ConceptMap
 * table-hl70322-to-event-status (which immunization.ts follows too), the order's numbers (ORC-2, ORC-3) as the
 * administration's identifiers as in the IG's ORC[MedicationAdministration] map. Both resources refer to the order's
 * MedicationRequest, the one pharmacy.ts makes of an RDE with the same ORC (authorizingPrescription, request). RXD-10
 * dispensing provider and RXA-10 administering provider are performers, Practitioners as directory.ts makes of an XCN.
 *
 * Both are complete drafts (drafts.ts): a dispense or an administration is sent whole, and a correction replaces it.
 */

import { type Hl7Segment, fieldOf } from '../../formats/hl7v2/index.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { buildEach, reportIssue } from '../issues.ts';
import type { ResourceDraft } from '../types.ts';

import { buildEncounter } from './adt-encounter.ts';
import { buildPatient } from './adt-patient.ts';
import {
  type OrderEvent,
  atPosition,
  eventIds,
  medicationConcept,
  medicationOrderKey,
  medicationRequestReference,
  orderEvents,
  prescriptionNumber,
  visitReference,
} from './clinical-common.ts';
import {
  type Reference,
  codeTable,
  comp,
  hl7TableSystems,
  toCodeableConcept,
  toCodeableConceptIn,
  toFhirDateTime,
  toQuantity,
  toQuantityUnitOf,
} from './datatypes.ts';
import { practitionerReference } from './directory.ts';
import { buildVisitChargeItems } from './charge-items.ts';
import { codeOf, completeDraft, element, listElement } from './drafts.ts';
import { orderNumbers, singlePatientReference } from './message-common.ts';
import { buildObservations } from './observations.ts';
import { buildMedicationRequests } from './pharmacy.ts';
import type { MappingContext, MappingRow } from './context.ts';

// ---------------------------------------------------------------------------------------------------------------
// Tables

/**
 * HL7 table 0322 (completion status, RXA-20) -> medication-admin-status, as the IG's ConceptMap
 * table-hl70322-to-event-status: CP and PA completed, RE and NA not-done. PA (partially administered) is `completed`
 * there although `stopped` would say more; the IG's choice is kept so that Immunization and MedicationAdministration
 * read RXA-20 alike.
 */
const ADMINISTRATION_STATUS = codeTable<string>({ CP: 'completed', PA: 'completed', RE: 'not-done', NA: 'not-done' });

/**
 * HL7 table 0167 (substitution status, RXD-11) -> MedicationDispense.substitution.wasSubstituted: N (no substitute
 * was dispensed), 0 (no product selection indicated) and 1 (substitution not allowed by the prescriber) were not
 * substituted; G (generic), T (therapeutic) and 2-5, 7, 8 (the product selection codes of a substitution) were.
 */
const WAS_SUBSTITUTED = codeTable<boolean>({ N: false, '0': false, '1': false, G: true, T: true, '2': true, '3': true, '4': true, '5': true, '7': true, '8': true });

// ---------------------------------------------------------------------------------------------------------------
// MedicationDispense (RXD)

export function buildDispenses(context: MappingContext): ResourceDraft[] {
  return eachOrderEvent(context, 'RXD', buildDispense);
}

/** One resource per event segment (RXD, RXA) of the message's orders; an unreadable one costs itself, at its position. */
function eachOrderEvent(
  context: MappingContext,
  segmentName: 'RXD' | 'RXA',
  build: (event: OrderEvent, id: string, subject: Reference, encounter: Reference | undefined, context: MappingContext) => ResourceDraft,
): ResourceDraft[] {
  const events = orderEvents(context.message, segmentName);
  if (events.length === 0) return [];
  const subject = singlePatientReference(context);
  const encounter = visitReference(context);
  const ids = distinctIds(context, segmentName);
  return buildEach(
    events,
    (event) => build(event, ids.get(event.event)!, subject, encounter, context),
    (event, failure) => atPosition(failure.location, event.event, context.message),
  );
}

function buildDispense(event: OrderEvent, id: string, subject: Reference, encounter: Reference | undefined, context: MappingContext): ResourceDraft {
  const { options } = context;
  const { event: rxd } = event;
  const medication = medicationConcept(fieldOf(rxd, 2), 'L', context);
  if (medication === undefined) throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'RXD-2: dispense/give code is empty', { location: 'RXD-2' });
  const order = medicationOrderKey(event.orc, context);
  const prescription = prescriptionNumber(rxd, context);
  const substitution = codeOf(fieldOf(rxd, 11)).toUpperCase();
  const wasSubstituted = substitution === '' ? undefined : WAS_SUBSTITUTED.get(substitution);
  if (substitution !== '' && wasSubstituted === undefined) {
    reportIssue({ severity: 'warning', code: 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', location: 'RXD-11', detail: 'RXD-11: substitution status is not an HL7 table 0167 code; left out', value: substitution });
  }

  return completeDraft('MedicationDispense', id, {
    // HL7 v2 has no dispense status: an RDS reports a dispense that was made.
    status: 'completed',
    medicationCodeableConcept: medication,
    subject,
    context: encounter,
    performer: listElement([[fieldOf(rxd, 10), (rep) => performer(practitionerReference(rep, 'RXD-10', context))]]),
    authorizingPrescription:
      order !== undefined
        ? [medicationRequestReference(order)]
        : prescription !== undefined
          ? [{ type: 'MedicationRequest', identifier: prescription }]
          : undefined,
    quantity: element(fieldOf(rxd, 4), (rep) => toQuantity(comp(rep, 1), toQuantityUnitOf(fieldOf(rxd, 5)[0]), 'RXD-4')),
    whenHandedOver: element(fieldOf(rxd, 3), (rep) => toFhirDateTime(comp(rep, 1), 'RXD-3', options.timeZone)),
    note: fieldOf(rxd, 9).map((rep) => {
      const text = comp(rep, 2) || comp(rep, 1);
      return text === '' ? undefined : { text };
    }),
    substitution: wasSubstituted === undefined ? undefined : { wasSubstituted },
  });
}

// ---------------------------------------------------------------------------------------------------------------
// MedicationAdministration (RXA in RAS)

export function buildAdministrations(context: MappingContext): ResourceDraft[] {
  return eachOrderEvent(context, 'RXA', buildAdministration);
}

function buildAdministration(event: OrderEvent, id: string, subject: Reference, encounter: Reference | undefined, context: MappingContext): ResourceDraft {
  const { options } = context;
  const { timeZone } = options;
  const { event: rxa, orc } = event;
  const medication = medicationConcept(fieldOf(rxa, 5), 'L', context);
  if (medication === undefined) throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'RXA-5: administered code is empty', { location: 'RXA-5' });
  const start = toFhirDateTime(comp(fieldOf(rxa, 3)[0], 1), 'RXA-3', timeZone);
  if (start === undefined) throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'RXA-3: start of administration is empty', { location: 'RXA-3' });
  const end = element(fieldOf(rxa, 4), (rep) => toFhirDateTime(comp(rep, 1), 'RXA-4', timeZone)) ?? undefined;
  const status = administrationStatus(rxa);
  const numbers = orderNumbers(orc, undefined, 'ORC', context);
  const order = medicationOrderKey(orc, context);
  const rxr = event.segments.find((segment) => segment.name === 'RXR');
  const dose = element(fieldOf(rxa, 6), (rep) => toQuantity(comp(rep, 1), toQuantityUnitOf(fieldOf(rxa, 7)[0]), 'RXA-6')) ?? undefined;

  return completeDraft('MedicationAdministration', id, {
    identifier: [numbers.placer, numbers.filler],
    status,
    statusReason: status === 'not-done' ? fieldOf(rxa, 18).map((rep) => toCodeableConcept(rep, options, 'L')) : undefined,
    medicationCodeableConcept: medication,
    subject,
    context: encounter,
    // A period only when the end differs from the start: RXA-4 is required and senders repeat RXA-3 in it.
    effectiveDateTime: end === undefined || end === start ? start : undefined,
    effectivePeriod: end === undefined || end === start ? undefined : { start, end },
    performer: listElement([[fieldOf(rxa, 10), (rep) => performer(practitionerReference(rep, 'RXA-10', context))]]),
    reasonCode: fieldOf(rxa, 19).map((rep) => toCodeableConcept(rep, options, 'L')),
    request: order === undefined ? undefined : medicationRequestReference(order),
    note: fieldOf(rxa, 9).map((rep) => {
      const text = comp(rep, 2) || comp(rep, 1);
      return text === '' ? undefined : { text };
    }),
    // FHIR R4 (mad-1) wants a dose or a rate in every dosage: without RXA-6 the route and site have no dosage to go in.
    dosage:
      dose === undefined
        ? undefined
        : {
            route: rxr === undefined ? undefined : toCodeableConceptIn(fieldOf(rxr, 1)[0] ?? [], options, 'HL70162', hl7TableSystems('0162')),
            site: rxr === undefined ? undefined : toCodeableConceptIn(fieldOf(rxr, 2)[0] ?? [], options, 'HL70163', hl7TableSystems('0163')),
            dose,
          },
  });
}

/** RXD-10 dispensing provider, RXA-10 administering provider: the performer's actor, a Practitioner (XCN[Practitioner]). */
function performer(actor: Reference | undefined): { actor: Reference } | undefined {
  return actor === undefined ? undefined : { actor };
}

/**
 * The ids of the message's administrations or dispenses (clinical-common eventIds); a later one that names the same
 * order and counters as an earlier one is kept under its position, with an issue.
 */
function distinctIds(context: MappingContext, eventName: 'RXA' | 'RXD'): Map<Hl7Segment, string> {
  const { ids, duplicates } = eventIds(context, eventName);
  for (const segment of duplicates) {
    reportIssue({
      severity: 'warning',
      code: 'ANCHORLINE_ISSUE_DUPLICATE_KEY',
      location: atPosition(undefined, segment, context.message),
      detail: `another ${eventName} names the same order and sub-id counter; kept under its position`,
    });
  }
  return ids;
}

/** Status from RXA-21 action code (D: the record is deleted) and RXA-20 completion status; an empty RXA-20 is complete. */
function administrationStatus(rxa: Hl7Segment): string {
  if (codeOf(fieldOf(rxa, 21)).toUpperCase() === 'D') return 'entered-in-error';
  const code = codeOf(fieldOf(rxa, 20)).toUpperCase();
  if (code === '') return 'completed';
  const status = ADMINISTRATION_STATUS.get(code);
  if (status !== undefined) return status;
  reportIssue({ severity: 'warning', code: 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', location: 'RXA-20', detail: 'RXA-20: completion status is not an HL7 table 0322 code; read as unknown', value: code });
  return 'unknown';
}

/**
 * The order a dispense fills, when the RDS sends its pharmacy encoding (RXE): the MedicationRequest pharmacy.ts makes
 * of an RDE, which the dispense's authorizingPrescription names.
 */
function buildDispensedOrders(context: MappingContext): ResourceDraft[] {
  return context.message.segments.some((segment) => segment.name === 'RXE') ? buildMedicationRequests(context) : [];
}

/** The dispense and administration rows of the mapping table (mappers/hl7v2/registry.ts). */
export const MEDICATION_EVENT_MAPPINGS: readonly MappingRow[] = [
  // An FT1 of a dispense's order is its charge (financial.ts).
  ['RDS^O13', [buildPatient, buildEncounter, buildDispensedOrders, buildDispenses, buildVisitChargeItems, buildObservations]],
  // v2.3 sends RDS and RAS with trigger event O01, as every pharmacy message of that version.
  ['RDS^O01', [buildPatient, buildEncounter, buildDispensedOrders, buildDispenses, buildVisitChargeItems, buildObservations]],
  ['RAS^O17', [buildPatient, buildEncounter, buildAdministrations, buildObservations]],
  ['RAS^O01', [buildPatient, buildEncounter, buildAdministrations, buildObservations]],
];


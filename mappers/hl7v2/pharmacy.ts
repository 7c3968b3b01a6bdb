/**
 * Pharmacy orders -> one MedicationRequest draft per order:
 * - RDE^O11 (pharmacy/treatment encoded order): ORC/RXE, the pharmacy's encoding of the order;
 * - OMP^O09 (pharmacy/treatment order), and ORM^O01 where an ORC is followed by an RXO instead of an OBR (the general
 *   order message carried pharmacy orders before OMP existed): ORC/RXO, the placer's order.
 *
 * RXO maps after the IG's RXO[MedicationRequest] map: RXO-1 requested give code, RXO-2/3/4 give amount and units,
 * RXO-7 the administration instructions, RXO-11/12 dispense amount and units, RXO-13 refills, intent original-order.
 * RXE maps by its field definitions the same way: RXE-2 give code, RXE-3/4/5 give amount and units, RXE-7
 * instructions, RXE-10/11 dispense amount and units, RXE-12 refills, intent order. Both take RXR route and site, TQ1
 * timing (else the TQ in RXE-1, or in ORC-7 for an RXO, which has none of its own), and the ORC as for any order.
 * Like ServiceRequest, MedicationRequest is an update draft keyed on the placer order number, so order control
 * messages (DC, HD, CA) update the order they are about, and the pharmacy's RDE for a placer's OMP order updates the
 * request that order made.
 */

import { type Hl7Repetition, type Hl7Segment, fieldOf, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { deterministicId } from '../ids.ts';
import type { ResourceDraft } from '../types.ts';

import { buildEncounter, buildPatient } from './adt.ts';
import {
  type CodeableConcept,
  codeTable,
  comp,
  hl7TableSystems,
  localCodeSystem,
  toCodeableConceptIn,
  toDecimal,
  toFhirDateTime,
  toQuantity,
  toQuantityUnitOf,
} from './datatypes.ts';
import { visitReference } from './clinical-common.ts';
import { buildVisitChargeItems } from './charge-items.ts';
import { buildGuarantorAccount } from './financial.ts';
import { element, updateDraft } from './drafts.ts';
import {
  type OrderRequest,
  type OrderRequestKind,
  authoredOn,
  buildOrderRequests,
  invalidValue,
  missingField,
  type OrderTiming,
  orderTiming,
  orderingProvider,
  requestPriority,
} from './message-common.ts';
import { buildObservations } from './observations.ts';
import { PATIENT_GROUP } from './patient-group.ts';
import type { MappingContext, MappingRow } from './context.ts';

// ---------------------------------------------------------------------------------------------------------------
// Tables

/**
 * HL7 table 0119 (ORC-1) -> medicationrequest-status, following the IG's table-hl70119 for request-status with
 * MedicationRequest's finer codes: a cancellation (nothing was given) is cancelled, a discontinuation (therapy
 * stopped part way) is stopped.
 */
const MEDICATION_STATUS_BY_CONTROL = codeTable<string>({
  NW: 'active',
  OK: 'active',
  AF: 'active',
  CA: 'active',
  HD: 'active',
  OR: 'active',
  RO: 'active',
  XO: 'active',
  XR: 'active',
  XX: 'active',
  RL: 'on-hold',
  HR: 'on-hold',
  OH: 'on-hold',
  CR: 'cancelled',
  OC: 'cancelled',
  DF: 'cancelled',
  DC: 'stopped',
  DR: 'stopped',
  OD: 'stopped',
  RQ: 'stopped',
  RU: 'stopped',
  FU: 'completed',
});

/** HL7 table 0038 (ORC-5) -> medicationrequest-status, as orders.ts maps it to request-status. */
const MEDICATION_STATUS_BY_STATUS = codeTable<string>({
  A: 'active',
  IP: 'active',
  SC: 'active',
  CM: 'completed',
  CA: 'cancelled',
  DC: 'stopped',
  RP: 'stopped',
  HD: 'on-hold',
  ER: 'entered-in-error',
});

/**
 * Where an order detail segment (RXE or RXO) holds what a MedicationRequest is made of: field numbers, and the TQ
 * (quantity/timing) that stands in for TQ1 in senders before v2.5. Neither has order number fields: ORC-2 and ORC-3
 * name the order.
 */
interface PharmacyDetail {
  kind: OrderRequestKind;
  intent: 'order' | 'original-order';
  giveCode: number;
  giveMinimum: number;
  giveMaximum: number;
  giveUnits: number;
  instructions: number;
  dispenseAmount: number;
  dispenseUnits: number;
  refills: number;
  /** The XCN naming the prescriber where ORC-12 does not (RXO-14, the ordering provider's DEA number). */
  prescriber?: number;
  /** The TQ of senders before v2.5, and where it is. */
  quantityTiming: (orc: Hl7Segment, detail: Hl7Segment) => { tq: Hl7Repetition | undefined; location: string };
}

/** Where a field of the detail segment is, as issues name it (`RXO-13`, `RXE-12`). */
const fieldAt = (detail: Hl7Segment, field: number): string => `${detail.name}-${field}`;

const ENCODED_ORDER: PharmacyDetail = {
  kind: { detailName: 'RXE', numbersInDetail: false, statusByStatus: MEDICATION_STATUS_BY_STATUS, statusByControl: MEDICATION_STATUS_BY_CONTROL },
  intent: 'order',
  giveCode: 2,
  giveMinimum: 3,
  giveMaximum: 4,
  giveUnits: 5,
  instructions: 7,
  dispenseAmount: 10,
  dispenseUnits: 11,
  refills: 12,
  quantityTiming: (_orc, rxe) => ({ tq: fieldOf(rxe, 1)[0], location: 'RXE-1' }),
};

const REQUESTED_ORDER: PharmacyDetail = {
  // In an ORM^O01 an ORC followed by an OBR is a ServiceRequest (orders.ts), not an RXO missing.
  kind: { detailName: 'RXO', numbersInDetail: false, statusByStatus: MEDICATION_STATUS_BY_STATUS, statusByControl: MEDICATION_STATUS_BY_CONTROL, otherDetails: ['OBR'] },
  intent: 'original-order',
  giveCode: 1,
  giveMinimum: 2,
  giveMaximum: 3,
  giveUnits: 4,
  instructions: 7,
  dispenseAmount: 11,
  dispenseUnits: 12,
  refills: 13,
  prescriber: 14,
  quantityTiming: (orc) => ({ tq: fieldOf(orc, 7)[0], location: 'ORC-7' }),
};

/** Medication vocabularies senders name in RXE-2 beyond the shared ones (RxNorm is one of those). */
const MEDICATION_SYSTEMS: ReadonlyMap<string, string> = new Map([['NDC', 'http://hl7.org/fhir/sid/ndc']]);

const V3_GTS_ABBREVIATION = 'http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation';

/**
 * Repeat patterns (HL7 table 0335, user-defined) that v3 GTSAbbreviation, the code system of FHIR's preferred
 * TimingAbbreviation value set, has with the same meaning.
 */
const GTS_ABBREVIATIONS = new Set(['AM', 'PM', 'BID', 'TID', 'QID', 'QD', 'QOD', 'Q1H', 'Q2H', 'Q3H', 'Q4H', 'Q6H', 'Q8H', 'BED', 'WK', 'MO']);

// ---------------------------------------------------------------------------------------------------------------
// Builder

/** RDE: the pharmacy's encoded orders (ORC/RXE). */
export function buildMedicationRequests(context: MappingContext): ResourceDraft[] {
  return buildPharmacyOrders(context, ENCODED_ORDER);
}

/** OMP^O09: the placer's pharmacy orders (ORC/RXO). */
export function buildRequestedMedications(context: MappingContext): ResourceDraft[] {
  return buildPharmacyOrders(context, REQUESTED_ORDER);
}

/**
 * The pharmacy orders (ORC/RXO) an ORM^O01 may carry beside its service orders (orders.ts). An ORM without an RXO has
 * none, and what its ORCs lack is reported by the service orders' builder, once.
 */
export function buildRequestedMedicationsBesideServices(context: MappingContext): ResourceDraft[] {
  return segmentsNamed(context.message, 'RXO').length === 0 ? [] : buildPharmacyOrders(context, REQUESTED_ORDER);
}

function buildPharmacyOrders(context: MappingContext, detail: PharmacyDetail): ResourceDraft[] {
  return buildOrderRequests(context, detail.kind, (request, subject) => buildMedicationRequest(request, subject, detail, context));
}

function buildMedicationRequest(request: OrderRequest, subject: { reference: string }, fields: PharmacyDetail, context: MappingContext): ResourceDraft {
  const { options } = context;
  const { timeZone } = options;
  const { orc, detail, segments, numbers, key, status } = request;
  const medication = element(fieldOf(detail, fields.giveCode), (rep) => toCodeableConceptIn(rep, options, 'L', MEDICATION_SYSTEMS));
  if (medication === undefined || medication === null) throw missingField(fieldAt(detail, fields.giveCode), 'give code is empty');

  const rxr = segments.find((segment) => segment.name === 'RXR');
  const timing = orderTiming(segments, fields.quantityTiming(orc, detail));

  return updateDraft('MedicationRequest', deterministicId('MedicationRequest', key.system, key.value), {
    identifier: [numbers.placer, numbers.filler],
    status,
    intent: fields.intent,
    priority: requestPriority(timing.priority),
    medicationCodeableConcept: medication,
    subject,
    // The visit PV1 names; a message without one leaves it as stored.
    encounter: visitReference(context),
    authoredOn: authoredOn(request, timeZone),
    requester: orderingProvider(
      [[fieldOf(orc, 12), 'ORC-12'], ...(fields.prescriber === undefined ? [] : [[fieldOf(detail, fields.prescriber), fieldAt(detail, fields.prescriber)] as const])],
      context,
    ),
    note: request.note,
    dosageInstruction: [dosage(detail, timing, rxr, fields, context)],
    dispenseRequest: dispenseRequest(detail, fields),
  });
}

/**
 * One dosage: the administration instructions (RXE-7, RXO-7) as text, the repeat pattern and bounds as timing (TQ1-3/7/8,
 * else the TQ of older senders), the give amount minimum to maximum in the give units as the dose, RXR route and site.
 */
function dosage(detail: Hl7Segment, order: OrderTiming, rxr: Hl7Segment | undefined, fields: PharmacyDetail, context: MappingContext): Record<string, unknown> {
  const { options } = context;
  const unit = toQuantityUnitOf(fieldOf(detail, fields.giveUnits)[0]);
  const minimum = toQuantity(comp(fieldOf(detail, fields.giveMinimum)[0], 1), unit, fieldAt(detail, fields.giveMinimum));
  const maximum = toQuantity(comp(fieldOf(detail, fields.giveMaximum)[0], 1), unit, fieldAt(detail, fields.giveMaximum));
  if (minimum !== undefined && maximum !== undefined && (maximum.value ?? 0) < (minimum.value ?? 0)) {
    throw invalidValue(fieldAt(detail, fields.giveMaximum), 'give amount maximum is less than the minimum');
  }
  const instructions = fieldOf(detail, fields.instructions)[0];
  const timing = dosageTiming(order, context);
  return {
    text: comp(instructions, 2) || comp(instructions, 1) || undefined,
    timing: timing.timing,
    asNeededBoolean: timing.asNeeded ? true : undefined,
    site: rxr === undefined ? undefined : toCodeableConceptIn(fieldOf(rxr, 2)[0] ?? [], options, 'HL70163', hl7TableSystems('0163')),
    route: rxr === undefined ? undefined : toCodeableConceptIn(fieldOf(rxr, 1)[0] ?? [], options, 'HL70162', hl7TableSystems('0162')),
    doseAndRate:
      minimum === undefined ? undefined : [maximum === undefined ? { doseQuantity: minimum } : { doseRange: { low: minimum, high: maximum } }],
  };
}

function dosageTiming(order: OrderTiming, context: MappingContext): { timing?: Record<string, unknown>; asNeeded: boolean } {
  const { timeZone } = context.options;
  const { pattern, location } = order;
  const start = toFhirDateTime(order.start, location, timeZone);
  const end = toFhirDateTime(order.end, location, timeZone);
  const upper = pattern.toUpperCase();
  return {
    timing: {
      code: pattern === '' ? undefined : repeatPattern(pattern, context),
      repeat: start === undefined && end === undefined ? undefined : { boundsPeriod: { start, end } },
    },
    asNeeded: upper === 'PRN' || upper.endsWith(' PRN'),
  };
}

/** A repeat pattern: the GTS abbreviation when it has the same code, the sender's code (table 0335) beside it. */
function repeatPattern(pattern: string, context: MappingContext): CodeableConcept {
  const local = { system: localCodeSystem('HL70335', context.options), code: pattern };
  const upper = pattern.toUpperCase();
  return GTS_ABBREVIATIONS.has(upper) ? { coding: [{ system: V3_GTS_ABBREVIATION, code: upper }, local] } : { coding: [local] };
}

/** The dispense amount in its units (RXE-10/11, RXO-11/12) and the number of refills (RXE-12, RXO-13). */
function dispenseRequest(detail: Hl7Segment, fields: PharmacyDetail): Record<string, unknown> | undefined {
  const refillsAt = fieldAt(detail, fields.refills);
  const refills = toDecimal(comp(fieldOf(detail, fields.refills)[0], 1), refillsAt);
  if (refills !== undefined && (!Number.isInteger(refills) || refills < 0)) throw invalidValue(refillsAt, 'number of refills is not a whole number');
  const quantity = toQuantity(comp(fieldOf(detail, fields.dispenseAmount)[0], 1), toQuantityUnitOf(fieldOf(detail, fields.dispenseUnits)[0]), fieldAt(detail, fields.dispenseAmount));
  return { numberOfRepeatsAllowed: refills, quantity };
}

/** The pharmacy rows of the mapping table (mappers/hl7v2/registry.ts), with the visit the orders are placed in (PV1). */
// Their GT1 are the guarantors of the patient's account, their FT1 the charges of the orders (financial.ts).
export const PHARMACY_MAPPINGS: readonly MappingRow[] = [
  ['RDE^O11', [buildPatient, buildEncounter, ...PATIENT_GROUP, buildGuarantorAccount, buildMedicationRequests, buildVisitChargeItems, buildObservations]],
  ['OMP^O09', [buildPatient, buildEncounter, ...PATIENT_GROUP, buildGuarantorAccount, buildRequestedMedications, buildVisitChargeItems, buildObservations]],
];

/**
 * RDE^O11 (pharmacy/treatment encoded order) -> one MedicationRequest draft per ORC/RXE order.
 *
 * RXE (the pharmacy's encoding of an order) maps by its field definitions, the way the IG's RXO[MedicationRequest]
 * map treats the placer's RXO: RXE-2 give code, RXE-3/4/5 give amount and units, RXE-10/11 dispense amount and
 * units, RXE-12 refills, RXR route and site, and the ORC as for any order. Like ServiceRequest, MedicationRequest is an update draft keyed
 * on the placer order number, so order control messages (DC, HD, CA) update the order they are about.
 */

import { type Hl7Segment, fieldOf } from '../../formats/hl7v2/index.ts';
import { deterministicId } from '../ids.ts';
import type { ResourceDraft } from '../types.ts';

import { buildPatient } from './adt.ts';
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
import { practitionerReference } from './directory.ts';
import { buildChargeItemsOutsideVisit } from './charge-items.ts';
import { buildGuarantorAccount } from './financial.ts';
import { element, updateDraft } from './drafts.ts';
import {
  type OrderRequest,
  type OrderRequestKind,
  authoredOn,
  buildOrderRequests,
  invalidValue,
  missingField,
  requestPriority,
} from './message-common.ts';
import { buildObservations } from './observations.ts';
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

/** MedicationRequest's statuses and its detail segment, RXE, which has no order number fields: ORC-2 and ORC-3 name the order. */
const MEDICATION_REQUEST: OrderRequestKind = {
  detailName: 'RXE',
  numbersInDetail: false,
  statusByStatus: MEDICATION_STATUS_BY_STATUS,
  statusByControl: MEDICATION_STATUS_BY_CONTROL,
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

export function buildMedicationRequests(context: MappingContext): ResourceDraft[] {
  return buildOrderRequests(context, MEDICATION_REQUEST, (request, subject) => buildMedicationRequest(request, subject, context));
}

function buildMedicationRequest(request: OrderRequest, subject: { reference: string }, context: MappingContext): ResourceDraft {
  const { options } = context;
  const { timeZone } = options;
  const { orc, detail: rxe, segments, numbers, key, status } = request;
  const medication = element(fieldOf(rxe, 2), (rep) => toCodeableConceptIn(rep, options, 'L', MEDICATION_SYSTEMS));
  if (medication === undefined || medication === null) throw missingField('RXE-2', 'give code is empty');

  const rxr = segments.find((segment) => segment.name === 'RXR');

  return updateDraft('MedicationRequest', deterministicId('MedicationRequest', key.system, key.value), {
    identifier: [numbers.placer, numbers.filler],
    status,
    intent: 'order',
    priority: requestPriority(priorityCode(segments, rxe)),
    medicationCodeableConcept: medication,
    subject,
    authoredOn: authoredOn(request, timeZone),
    requester: element(fieldOf(orc, 12), (rep) => practitionerReference(rep, 'ORC-12', context)),
    note: request.note,
    dosageInstruction: [dosage(segments, rxe, rxr, context)],
    dispenseRequest: dispenseRequest(rxe),
  });
}

/**
 * One dosage from RXE: RXE-7 instructions as text, the repeat pattern and bounds as timing (TQ1-3/7/8, else the
 * TQ in RXE-1), RXE-3 (minimum) to RXE-4 (maximum) give amount in RXE-5 units as the dose, RXR route and site.
 */
function dosage(segments: Hl7Segment[], rxe: Hl7Segment, rxr: Hl7Segment | undefined, context: MappingContext): Record<string, unknown> {
  const { options } = context;
  const unit = toQuantityUnitOf(fieldOf(rxe, 5)[0]);
  const minimum = toQuantity(comp(fieldOf(rxe, 3)[0], 1), unit, 'RXE-3');
  const maximum = toQuantity(comp(fieldOf(rxe, 4)[0], 1), unit, 'RXE-4');
  if (minimum !== undefined && maximum !== undefined && (maximum.value ?? 0) < (minimum.value ?? 0)) {
    throw invalidValue('RXE-4', 'give amount maximum is less than the minimum');
  }
  const instructions = fieldOf(rxe, 7)[0];
  const timing = dosageTiming(segments, rxe, context);
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

function dosageTiming(segments: Hl7Segment[], rxe: Hl7Segment, context: MappingContext): { timing?: Record<string, unknown>; asNeeded: boolean } {
  const { timeZone } = context.options;
  const tq1 = segments.find((segment) => segment.name === 'TQ1');
  const tq = fieldOf(rxe, 1)[0];
  const pattern = tq1 !== undefined ? comp(fieldOf(tq1, 3)[0], 1) : comp(tq, 2, 1);
  const location = tq1 !== undefined ? 'TQ1-7' : 'RXE-1';
  const start = toFhirDateTime(tq1 !== undefined ? comp(fieldOf(tq1, 7)[0], 1) : comp(tq, 4, 1), location, timeZone);
  const end = toFhirDateTime(tq1 !== undefined ? comp(fieldOf(tq1, 8)[0], 1) : comp(tq, 5, 1), location, timeZone);
  const upper = pattern.toUpperCase();
  return {
    timing: {
      code: pattern === '' ? undefined : repeatPattern(pattern, context),
      repeat: start === undefined && end === undefined ? undefined : { boundsPeriod: { start, end } },
    },
    asNeeded: upper === 'PRN' || upper.endsWith(' PRN'),
  };
}

/** TQ1-9 priority, else RXE-1 component 6 (the TQ priority of senders before v2.5). */
function priorityCode(segments: Hl7Segment[], rxe: Hl7Segment): string {
  const tq1 = segments.find((segment) => segment.name === 'TQ1');
  return tq1 !== undefined ? comp(fieldOf(tq1, 9)[0], 1) : comp(fieldOf(rxe, 1)[0], 6);
}

/** A repeat pattern: the GTS abbreviation when it has the same code, the sender's code (table 0335) beside it. */
function repeatPattern(pattern: string, context: MappingContext): CodeableConcept {
  const local = { system: localCodeSystem('HL70335', context.options), code: pattern };
  const upper = pattern.toUpperCase();
  return GTS_ABBREVIATIONS.has(upper) ? { coding: [{ system: V3_GTS_ABBREVIATION, code: upper }, local] } : { coding: [local] };
}

/** RXE-10 dispense amount in RXE-11 units, RXE-12 number of refills. */
function dispenseRequest(rxe: Hl7Segment): Record<string, unknown> | undefined {
  const refills = toDecimal(comp(fieldOf(rxe, 12)[0], 1), 'RXE-12');
  if (refills !== undefined && (!Number.isInteger(refills) || refills < 0)) throw invalidValue('RXE-12', 'number of refills is not a whole number');
  const quantity = toQuantity(comp(fieldOf(rxe, 10)[0], 1), toQuantityUnitOf(fieldOf(rxe, 11)[0]), 'RXE-10');
  return { numberOfRepeatsAllowed: refills, quantity };
}

/** The pharmacy row of the mapping table (mappers/hl7v2/registry.ts). */
// Its GT1 are the guarantors of the patient's account, its FT1 the charges of the orders (financial.ts).
export const PHARMACY_MAPPINGS: readonly MappingRow[] = [['RDE^O11', [buildPatient, buildGuarantorAccount, buildMedicationRequests, buildChargeItemsOutsideVisit, buildObservations]]];

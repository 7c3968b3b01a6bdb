/**
 * ORM^O01 (general order) and OML^O21 (laboratory order) -> ServiceRequest drafts, one per ORC/OBR order, after the
 * HL7 v2-to-FHIR IG segment maps ORC[ServiceRequest] and OBR[ServiceRequest].
 *
 * Orders change over their life through order control codes (NW new, CA cancel, DC discontinue, HD hold, XO
 * change, SC status changed), so ServiceRequest is an update draft: a field the message does not send keeps what
 * the stored order has. The order is keyed on its placer order number, which the placer assigns before any filler
 * number exists, so every message about one order addresses the same ServiceRequest.
 */

import { type Hl7Repetition, type Hl7Segment, fieldOf } from '../../formats/hl7v2/index.ts';
import { deterministicId } from '../ids.ts';
import type { ResourceDraft } from '../types.ts';

import { buildEncounter, buildPatient } from './adt.ts';
import { visitReference } from './clinical-common.ts';
import { isAnchorlineError } from '../../errors/index.ts';
import { diagnosisConditionId } from './adt-diagnosis.ts';
import { specimenOf } from './results.ts';
import { type Reference, codeTable, toCodeableConcept, toFhirDateTime } from './datatypes.ts';
import { element, firstOfEachResource, listElement, updateDraft } from './drafts.ts';
import { type OrderRequest, type OrderRequestKind, authoredOn, buildOrderRequests, missingField, orderTiming, orderingProvider, requestPriority } from './message-common.ts';
import { buildVisitChargeItems } from './charge-items.ts';
import { buildGuarantorAccount } from './financial.ts';
import { buildObservations, orderObservationReferences } from './observations.ts';
import { PATIENT_GROUP } from './patient-group.ts';
import { buildRequestedMedicationsBesideServices } from './pharmacy.ts';
import type { MappingContext, MappingRow } from './context.ts';

// ---------------------------------------------------------------------------------------------------------------
// Tables

/**
 * HL7 table 0119 (ORC-1) -> request-status, as the v2-to-FHIR IG ConceptMap table-hl70119: a request (CA cancel,
 * DC discontinue, HD hold) leaves the order as it is until the other side confirms it (CR, DR, HR), except that the
 * IG has DC revoked at once. Ours beyond the IG's list: OR (released as requested), RO (replacement order), XO, XR,
 * XX (change requested, done) -> active; RL (release requested) -> on-hold; RQ, RU (replaced) -> revoked.
 */
const REQUEST_STATUS_BY_CONTROL = codeTable<string>({
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
  CR: 'revoked',
  DC: 'revoked',
  DF: 'revoked',
  DR: 'revoked',
  OC: 'revoked',
  OD: 'revoked',
  RQ: 'revoked',
  RU: 'revoked',
  FU: 'completed',
});

/**
 * HL7 table 0038 (order status, ORC-5) -> request-status. The IG publishes no table for it; the mapping follows the
 * definitions: in process or partly resulted -> active, completed -> completed, cancelled, discontinued or replaced
 * -> revoked, held -> on-hold, ER (order not found) -> entered-in-error.
 */
const REQUEST_STATUS_BY_STATUS = codeTable<string>({
  A: 'active',
  IP: 'active',
  SC: 'active',
  CM: 'completed',
  CA: 'revoked',
  DC: 'revoked',
  RP: 'revoked',
  HD: 'on-hold',
  ER: 'entered-in-error',
});

/**
 * ServiceRequest's statuses and its detail segment, OBR, which carries the order numbers beside the ORC. An ORC
 * followed by an RXO is a pharmacy order (pharmacy.ts), which an ORM^O01 may carry beside service orders.
 */
const SERVICE_REQUEST: OrderRequestKind = {
  detailName: 'OBR',
  numbersInDetail: true,
  statusByStatus: REQUEST_STATUS_BY_STATUS,
  statusByControl: REQUEST_STATUS_BY_CONTROL,
  otherDetails: ['RXO'],
};

// ---------------------------------------------------------------------------------------------------------------
// Builder

export function buildServiceRequests(context: MappingContext): ResourceDraft[] {
  return firstOfEachResource(buildOrderRequests(context, SERVICE_REQUEST, (request, subject) => buildServiceRequest(request, subject, context)));
}

function buildServiceRequest(request: OrderRequest, subject: { reference: string }, context: MappingContext): ResourceDraft[] {
  const { options } = context;
  const { timeZone } = options;
  const { orc, detail: obr, numbers, key, status } = request;
  const code = element(fieldOf(obr, 4), (rep) => toCodeableConcept(rep, options, 'L'));
  if (code === undefined || code === null) throw missingField('OBR-4', 'universal service identifier is empty');

  const timing = orderTiming(request.segments, olderQuantityTiming(orc, obr));
  const specimens = orderSpecimens(request, subject, context);

  const serviceRequest = updateDraft('ServiceRequest', deterministicId('ServiceRequest', key.system, key.value), {
    identifier: [numbers.placer, numbers.filler],
    status,
    intent: 'order',
    priority: requestPriority(timing.priority),
    code,
    subject,
    // The visit PV1 names, as the IG's ORM_O01 and OML_O21 maps have it; a message without one leaves it as stored.
    encounter: visitReference(context),
    ...occurrence(toFhirDateTime(timing.start, timing.location, timeZone), toFhirDateTime(timing.end, timing.location, timeZone)),
    authoredOn: authoredOn(request, timeZone),
    requester: orderingProvider(
      [
        [fieldOf(orc, 12), 'ORC-12'],
        [fieldOf(obr, 16), 'OBR-16'],
      ],
      context,
    ),
    reasonCode: listElement([[fieldOf(obr, 31), (rep) => toCodeableConcept(rep, options, 'L')]]),
    reasonReference: orderDiagnoses(request, context),
    // The order's OBX: ask-at-order-entry answers, as the IG's ORM_O01 and OML_O21 maps link them.
    supportingInfo: orderObservationReferences(request.segments, context),
    // The specimens the order is for (OML^O21's SPECIMEN group), as the IG's OML_O21 map links them.
    specimen: specimens.length === 0 ? undefined : specimens.map((specimen) => ({ reference: `Specimen/${specimen.id}` })),
    note: request.note,
  });
  return [...specimens, serviceRequest];
}

/**
 * The order's own DG1 (those after its OBR, as ORM_O01 and OML_O21 carry them) as the Conditions the patient group
 * makes of them (adt-diagnosis.ts), the IG's ServiceRequest.reasonReference. A DG1 without a code makes no Condition,
 * and its issue is the Condition builder's.
 */
function orderDiagnoses(request: OrderRequest, context: MappingContext): Reference[] | undefined {
  const reasons: Reference[] = [];
  for (const dg1 of request.segments.filter((segment) => segment.name === 'DG1')) {
    try {
      reasons.push({ reference: `Condition/${diagnosisConditionId(dg1, context)}` });
    } catch (error) {
      if (!isAnchorlineError(error)) throw error;
    }
  }
  return reasons.length === 0 ? undefined : reasons;
}

/** The order's SPM, each a Specimen; one that cannot be built costs itself, at its position. */
function orderSpecimens(request: OrderRequest, subject: { reference: string }, context: MappingContext): ResourceDraft[] {
  return request.segments
    .filter((segment) => segment.name === 'SPM')
    .map((spm) => specimenOf(spm, [request.key.system, request.key.value], subject, context))
    .filter((specimen): specimen is ResourceDraft => specimen !== undefined);
}

/** The TQ of an order from senders before v2.5: ORC-7, else OBR-27. */
function olderQuantityTiming(orc: Hl7Segment, obr: Hl7Segment): { tq: Hl7Repetition | undefined; location: string } {
  return fieldOf(orc, 7).length > 0 ? { tq: fieldOf(orc, 7)[0], location: 'ORC-7' } : { tq: fieldOf(obr, 27)[0], location: `${obr.name}-27` };
}

/** occurrence[x]: a period when an end is sent, else a dateTime; sending one type removes the other. */
function occurrence(start: string | undefined, end: string | undefined): Record<string, unknown> {
  if (end !== undefined) return { occurrencePeriod: { start, end }, occurrenceDateTime: null };
  if (start !== undefined) return { occurrenceDateTime: start, occurrencePeriod: null };
  return {};
}

/** The order rows of the mapping table (mappers/hl7v2/registry.ts). */
export const ORDER_MAPPINGS: readonly MappingRow[] = [
  // Their GT1 are the guarantors of the patient's account, their FT1 the charges of the orders (financial.ts). An
  // ORM^O01's orders are services (ORC/OBR) or, from senders before OMP^O09, pharmacy orders (ORC/RXO).
  ['ORM^O01', [buildPatient, buildEncounter, ...PATIENT_GROUP, buildGuarantorAccount, buildServiceRequests, buildRequestedMedicationsBesideServices, buildVisitChargeItems, buildObservations]],
  ['OML^O21', [buildPatient, buildEncounter, ...PATIENT_GROUP, buildGuarantorAccount, buildServiceRequests, buildVisitChargeItems, buildObservations]],
];

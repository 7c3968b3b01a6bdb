/**
 * Patient accounting: BAR (add and update patient accounts) and DFT (detail financial transactions) -> the patient's
 * Account, and one ChargeItem per FT1 charge, beside the Patient, Encounter, Condition (DG1), Procedure (PR1),
 * Coverage (IN1), RelatedPerson (NK1), AllergyIntolerance (AL1) and Observation (OBX) the same segments give in ADT.
 *
 * Account follows the IG's PID[Account] map: PID-18 patient account number -> Account.identifier, and the patient as
 * its subject. Senders that bill by visit leave PID-18 empty and send the account as the visit number (PV1-19); then
 * that is the account's number. Its status says what the message does to the account: BAR^P06 (end account) and
 * P02 (purge account) make it inactive, every other BAR and every DFT (charges are posted to an open account)
 * active. Its GT1 segments are its guarantors (guarantors.ts). Account is an update draft: the messages about an
 * account each say part of it.
 *
 * The IG publishes no FT1 map; FT1 maps by its field definitions: FT1-7 transaction code -> ChargeItem.code (FT1-8
 * description as its text; FT1-25 procedure code when FT1-7 is empty), FT1-10 quantity, FT1-4 transaction date ->
 * occurrence, FT1-5 posting date -> enteredDate, FT1-19 diagnoses -> reason, FT1-20 performed by -> performer,
 * FT1-24 entered by -> enterer (both Practitioners, XCN[Practitioner]), FT1-29 NDC -> productCodeableConcept, FT1-2 transaction id -> identifier (and the
 * id), the visit -> context, the Account -> account. Amounts (FT1-11, FT1-12, FT1-22) are left out: R4 ChargeItem
 * holds a price only as priceOverride, an override of the price list, which a posted amount is not. FT1-6 transaction
 * type (user-defined table 0017) says whether the line is a charge: a credit, payment or adjustment (CD, PY, AJ, CO)
 * is no ChargeItem, and is an information issue. A posted charge is final, so ChargeItem is a complete draft.
 */

import { type Hl7Repetition, type Hl7Segment, fieldOf, firstSegment, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { deterministicId } from '../ids.ts';
import { reportIssue } from '../issues.ts';
import type { IfAbsentOperation } from '../merge.ts';
import type { ResourceDraft } from '../types.ts';

import { buildAllergies } from './adt-allergy.ts';
import { conceptKey, keyIdentifier, patientId, sendingFacility, visitKey } from './adt-common.ts';
import { buildCoverages } from './adt-coverage.ts';
import { buildConditions, diagnosisConditionId } from './adt-diagnosis.ts';
import { buildEncounter } from './adt-encounter.ts';
import { buildPatient } from './adt-patient.ts';
import { buildRelatedPersons } from './adt-related-person.ts';
import { MEDICATION_CODE_SYSTEMS, PROCEDURE_CODE_SYSTEMS, atPosition, eachSegmentResource, visitReference } from './clinical-common.ts';
import {
  type CodeableConcept,
  type Identifier,
  type Reference,
  comp,
  identifierSystem,
  pruneEmpty,
  toCodeableConcept,
  toCodeableConceptIn,
  toFhirDateTime,
  toQuantity,
} from './datatypes.ts';
import { practitionerReference } from './directory.ts';
import { codeOf, completeDraft, element, listElement, updateDraft } from './drafts.ts';
import { guarantorsOf } from './guarantors.ts';
import { buildObservations, buildObservationsBesideAnyResults, buildResultsIfAny } from './observations.ts';
import { buildProcedures } from './procedures.ts';
import type { MappingContext, MappingRow, ResourceBuilder } from './context.ts';

// ---------------------------------------------------------------------------------------------------------------
// Account

/** BAR trigger events that close the account: P06 end account, P02 purge patient accounts. */
const CLOSING_EVENTS = new Set(['P02', 'P06']);

/** The account the message is about: PID-18, else (senders that bill by visit) PV1-19. */
function accountKey(context: MappingContext): { identifier: Identifier & { system: string; value: string }; id: string } | undefined {
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

/** The account the message names, or undefined with an issue when it has GT1 segments for an account it does not name. */
function guaranteedAccountKey(context: MappingContext): ReturnType<typeof accountKey> {
  const account = accountKey(context);
  if (account === undefined && segmentsNamed(context.message, 'GT1').length > 0) {
    reportIssue({
      severity: 'information',
      code: 'ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED',
      location: 'GT1',
      detail: 'GT1: the message names no account (PID-18 and PV1-19 are empty) for the guarantor to guarantee; kept in the raw message',
    });
  }
  return account;
}

/** The Account, after the RelatedPersons its guarantors name (guarantors.ts). */
export function buildAccount(context: MappingContext): ResourceDraft[] {
  const account = guaranteedAccountKey(context);
  if (account === undefined) return [];
  const patient = patientId(context);
  const { guarantor, relatedPersons } = guarantorsOf(patient, context);
  const closing = context.messageType === 'BAR' && CLOSING_EVENTS.has(context.triggerEvent);
  return [
    ...relatedPersons,
    updateDraft('Account', account.id, {
      identifier: [account.identifier],
      status: closing ? 'inactive' : 'active',
      subject: [{ reference: `Patient/${patient}` }],
      guarantor,
    }),
    episodeOfCare(account, patient, closing, context),
  ];
}

/**
 * The guarantors of a message that is not about the account itself (ADT, orders, pharmacy, immunization: their GT1
 * segments): the Account of PID-18, else PV1-19, with its guarantors, as buildAccount makes it, when the message has
 * GT1 segments. Such a message does not say whether the account is open, so its status is only filled in (active)
 * when nothing is stored: an account a BAR ended stays inactive. No EpisodeOfCare: which episode an account bills for
 * is the accounting system's to say (BAR).
 */
export function buildGuarantorAccount(context: MappingContext): ResourceDraft[] {
  if (segmentsNamed(context.message, 'GT1').length === 0) return [];
  const account = guaranteedAccountKey(context);
  if (account === undefined) return [];
  const patient = patientId(context);
  const { guarantor, relatedPersons } = guarantorsOf(patient, context);
  return [
    ...relatedPersons,
    updateDraft('Account', account.id, {
      identifier: [account.identifier],
      status: { $merge: 'if-absent', value: 'active' } satisfies IfAbsentOperation,
      subject: [{ reference: `Patient/${patient}` }],
      guarantor,
    }),
  ];
}

/**
 * The episode of care the account bills for: keyed by the account, with the patient, the account, and the message's
 * diagnoses (DG1, after the IG's DG1[EpisodeOfCare] map: each Condition the DG1 makes, DG1-6 type as its role, DG1-15
 * priority as its rank). Finished when the account is ended (BAR P02/P06).
 */
function episodeOfCare(account: { id: string; identifier: unknown }, patient: string, closing: boolean, context: MappingContext): ResourceDraft {
  const diagnosis = segmentsNamed(context.message, 'DG1').flatMap((dg1) => {
    // A DG1 that makes no Condition (no code) is reported where buildConditions reads it.
    let id: string;
    try {
      id = diagnosisConditionId(dg1, context);
    } catch {
      return [];
    }
    const rank = Number.parseInt(comp(fieldOf(dg1, 15)[0], 1), 10);
    return [{
      condition: { reference: `Condition/${id}` },
      role: element(fieldOf(dg1, 6), (rep) => toCodeableConcept(rep, context.options, 'HL70052')) ?? undefined,
      rank: Number.isInteger(rank) && rank > 0 ? rank : undefined,
    }];
  });
  return updateDraft('EpisodeOfCare', deterministicId('EpisodeOfCare', account.id), {
    identifier: [account.identifier],
    status: closing ? 'finished' : 'active',
    patient: { reference: `Patient/${patient}` },
    diagnosis: diagnosis.length > 0 ? diagnosis : undefined,
    account: [{ reference: `Account/${account.id}` }],
  });
}

// ---------------------------------------------------------------------------------------------------------------
// ChargeItem (FT1)

/** HL7 table 0017 (transaction type) codes of lines that are not charges: credit, payment, adjustment, co-payment. */
const NOT_CHARGES = new Set(['CD', 'PY', 'AJ', 'CO']);

/** The charges of a DFT: linked to its visit and to the Account the message builds (buildAccount). */
export function buildChargeItems(context: MappingContext): ResourceDraft[] {
  return chargeItemsOf(context, { visit: true, accountBuilt: true });
}

/**
 * The charges of a message that maps its visit but not its account (ADT A01-A08 and their kin, RDS: FT1 segments
 * sent with the visit or an order's dispense): linked to the visit's Encounter, and to the account by its identifier.
 */
export function buildVisitChargeItems(context: MappingContext): ResourceDraft[] {
  return chargeItemsOf(context, { visit: true, accountBuilt: false });
}

/**
 * The charges of a message that maps no visit (ORM, OML, ORU, RDE: an order's FT1; A28/A31: the person's): the
 * patient's, with the account by its identifier, and no Encounter to refer to.
 */
export function buildChargeItemsOutsideVisit(context: MappingContext): ResourceDraft[] {
  return chargeItemsOf(context, { visit: false, accountBuilt: false });
}

/**
 * One ChargeItem per FT1 charge. `visit`: the message's row maps the visit, so the charge refers to its Encounter.
 * `accountBuilt`: the row builds the Account (BAR, DFT), so the charge refers to it literally; otherwise by the
 * account's identifier, as nothing in the message creates the resource.
 */
function chargeItemsOf(context: MappingContext, { visit, accountBuilt }: { visit: boolean; accountBuilt: boolean }): ResourceDraft[] {
  const lines = segmentsNamed(context.message, 'FT1');
  if (lines.length === 0) return [];
  const patient = patientId(context);
  const encounter = visit ? visitReference(context) : undefined;
  const account = accountKey(context);
  const charges = lines.filter((ft1) => {
    const type = codeOf(fieldOf(ft1, 6)).toUpperCase();
    if (!NOT_CHARGES.has(type)) return true;
    reportIssue({
      severity: 'information',
      code: 'ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED',
      location: atPosition('FT1-6', ft1, context.message),
      detail: 'FT1-6: a credit, payment or adjustment is not a charge item; kept in the raw message',
      value: type,
    });
    return false;
  });
  const accountReference: (Reference & { type?: string; identifier?: Identifier }) | undefined =
    account === undefined ? undefined : accountBuilt ? { reference: `Account/${account.id}` } : { type: 'Account', identifier: account.identifier };
  return eachSegmentResource(charges, (ft1) => buildChargeItem(ft1, patient, encounter, accountReference, context), context.message);
}

function buildChargeItem(
  ft1: Hl7Segment,
  patient: string,
  encounter: Reference | undefined,
  account: (Reference & { type?: string; identifier?: Identifier }) | undefined,
  context: MappingContext,
): ResourceDraft {
  const { options } = context;
  const { timeZone } = options;
  const facility = sendingFacility(context);
  const code = chargeCode(ft1, context);
  const transactionId = comp(fieldOf(ft1, 2)[0], 1);
  const identifier = transactionId === '' ? undefined : pruneEmpty<Identifier>({ system: identifierSystem(facility, 'FT1-2', options), value: transactionId });
  const id =
    identifier?.system !== undefined
      ? deterministicId('ChargeItem', identifier.system, transactionId)
      : deterministicId('ChargeItem', patient, visitKey(context)?.id ?? '', comp(fieldOf(ft1, 1)[0], 1), conceptKey(code), comp(fieldOf(ft1, 4)[0], 1));
  const type = codeOf(fieldOf(ft1, 6)).toUpperCase();
  if (type !== '' && type !== 'CG') {
    reportIssue({ severity: 'information', code: 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', location: atPosition('FT1-6', ft1, context.message), detail: 'FT1-6: transaction type is not an HL7 table 0017 code; read as a charge', value: type });
  }

  return completeDraft('ChargeItem', id, {
    identifier: identifier === undefined ? undefined : [identifier],
    status: 'billable',
    code,
    subject: { reference: `Patient/${patient}` },
    context: encounter,
    ...occurrence(ft1, timeZone),
    performer: listElement([
      [
        fieldOf(ft1, 20),
        (rep) => {
          const actor = practitionerReference(rep, 'FT1-20', context);
          return actor === undefined ? undefined : { actor };
        },
      ],
    ]),
    quantity: element(fieldOf(ft1, 10), (rep) => toQuantity(comp(rep, 1), undefined, 'FT1-10')),
    enterer: element(fieldOf(ft1, 24), (rep) => practitionerReference(rep, 'FT1-24', context)),
    enteredDate: element(fieldOf(ft1, 5), (rep) => toFhirDateTime(comp(rep, 1), 'FT1-5', timeZone)),
    reason: fieldOf(ft1, 19).map((rep) => toCodeableConcept(rep, options, 'HL70051')),
    account: account === undefined ? undefined : [account],
    productCodeableConcept: element(fieldOf(ft1, 29), (rep) => toCodeableConceptIn(rep, options, 'NDC', MEDICATION_CODE_SYSTEMS)),
  });
}

/** FT1-7 transaction code (user-defined table 0132), FT1-8 description as text; FT1-25 procedure code when FT1-7 is empty. */
function chargeCode(ft1: Hl7Segment, context: MappingContext): CodeableConcept {
  const { options } = context;
  const description = comp(fieldOf(ft1, 8)[0], 1);
  const sent =
    toCodeableConceptIn(fieldOf(ft1, 7)[0] ?? [], options, 'HL70132', PROCEDURE_CODE_SYSTEMS) ??
    toCodeableConceptIn(fieldOf(ft1, 25)[0] ?? [], options, 'HL70088', PROCEDURE_CODE_SYSTEMS);
  const code = pruneEmpty<CodeableConcept>({ ...sent, text: sent?.text ?? (description || undefined) });
  if (code === undefined) throw new AnchorlineError('ANCHORLINE_ERR_MAPPING_MISSING_FIELD', 'FT1-7: the transaction code is empty (and FT1-25 and FT1-8 too)', { location: 'FT1-7' });
  return code;
}

/**
 * FT1-4 transaction date: a DR (v2.5: start ^ end, each a TS whose first subcomponent is the time) or a TS (v2.3).
 * A range is occurrencePeriod, a single time occurrenceDateTime; the other is null.
 */
function occurrence(ft1: Hl7Segment, timeZone: string): Record<string, unknown> {
  const range = element(fieldOf(ft1, 4), (rep: Hl7Repetition) => {
    const start = toFhirDateTime(comp(rep, 1, 1), 'FT1-4', timeZone);
    const end = toFhirDateTime(comp(rep, 2, 1), 'FT1-4', timeZone);
    return start === undefined && end === undefined ? undefined : { start, end };
  });
  if (range === null || range === undefined) return { occurrenceDateTime: null, occurrencePeriod: null };
  if (range.end === undefined || range.end === range.start) return { occurrenceDateTime: range.start, occurrencePeriod: null };
  return { occurrencePeriod: pruneEmpty(range), occurrenceDateTime: null };
}

// ---------------------------------------------------------------------------------------------------------------
// Rows

/** What a BAR's visit groups can describe (BAR_P01/P05: PV1, OBX, AL1, DG1, PR1, NK1, IN1; P02/P06: PID and PV1). */
const ACCOUNT: readonly ResourceBuilder[] = [
  buildPatient,
  buildEncounter,
  buildAccount,
  buildRelatedPersons,
  buildAllergies,
  buildConditions,
  buildProcedures,
  buildCoverages,
  buildObservations,
];

/**
 * A DFT: the account, its charges, and the visit, diagnoses, procedures and insurance they are billed under; the
 * orders a charge is for may come with their results (OBR with OBX), read as ORU results are.
 */
const TRANSACTIONS: readonly ResourceBuilder[] = [
  buildPatient,
  buildEncounter,
  buildAccount,
  buildConditions,
  buildProcedures,
  buildCoverages,
  buildResultsIfAny,
  buildChargeItems,
  buildObservationsBesideAnyResults,
];

/** The patient accounting rows of the mapping table (mappers/hl7v2/registry.ts). */
export const FINANCIAL_MAPPINGS: readonly MappingRow[] = [
  // P01 add patient accounts, P02 purge patient accounts, P05 update account, P06 end account, P10 transmit
  // ambulatory payment classification groups, P12 update diagnosis/procedure.
  ...(['P01', 'P02', 'P05', 'P06', 'P10', 'P12'] as const).map((event): MappingRow => [`BAR^${event}`, ACCOUNT]),
  // P03 post detail financial transaction, P11 post detail financial transactions - new.
  ['DFT^P03', TRANSACTIONS],
  ['DFT^P11', TRANSACTIONS],
];

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
 * The ChargeItems of FT1 segments are built in charge-items.ts, which every message type carrying FT1 shares.
 */

import { fieldOf, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { deterministicId } from '../ids.ts';
import { reportIssue } from '../issues.ts';
import type { IfAbsentOperation } from '../merge.ts';
import type { ResourceDraft } from '../types.ts';

import { buildAllergies } from './adt-allergy.ts';
import { accountKey, patientId } from './adt-common.ts';
import { buildCoverages } from './adt-coverage.ts';
import { buildConditions, diagnosisConditionId } from './adt-diagnosis.ts';
import { buildEncounter } from './adt-encounter.ts';
import { buildPatient } from './adt-patient.ts';
import { buildRelatedPersons } from './adt-related-person.ts';
import { buildChargeItems } from './charge-items.ts';
import { comp, toCodeableConcept } from './datatypes.ts';
import { element, updateDraft } from './drafts.ts';
import { guarantorsOf } from './guarantors.ts';
import { buildObservations, buildObservationsBesideAnyResults, buildResultsIfAny } from './observations.ts';
import { buildProcedures } from './procedures.ts';
import type { MappingContext, MappingRow, ResourceBuilder } from './context.ts';

// ---------------------------------------------------------------------------------------------------------------
// Account

/** BAR trigger events that close the account: P06 end account, P02 purge patient accounts. */
const CLOSING_EVENTS = new Set(['P02', 'P06']);

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

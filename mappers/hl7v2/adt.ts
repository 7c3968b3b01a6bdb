/**
 * ADT (admit, discharge, transfer and the patient and visit updates around them) -> Patient, Encounter,
 * RelatedPerson (NK1), AllergyIntolerance (AL1), Condition (DG1), Coverage (IN1), Procedure (PR1, procedures.ts),
 * Observation (OBX, observations.ts), Consent (CON, consents.ts), the people in roles of ROL (roles.ts: the primary care
 * provider, the CareTeam, the visit's participants, a procedure's performers), the Account with its guarantors (GT1,
 * financial.ts), ChargeItem (FT1) and the referral ServiceRequest and Task (RF1, referrals.ts) drafts, and patient
 * merges (A40, A47). This file is the table of which event produces what; each resource has its own file.
 *
 * Draft semantics follow HL7 v2 update rules per FHIR element: a field that was not sent leaves the element as
 * stored (undefined), a field sent as `""` removes it (null), anything else replaces it. Elements are replaced
 * whole: an element fed by several fields (name from PID-5 and PID-9, telecom from PID-13 and PID-14) takes what
 * the message sends for all of them, which matches senders that send complete segments, as ADT senders do. The
 * exceptions are elements that carry history or whose parts arrive in different events (Encounter.location,
 * period, classHistory, hospitalization), and lists that PV1, PD1 or PR1 fields and ROL segments feed together
 * (Encounter.participant, Patient.generalPractitioner, Procedure.performer): those are merge operations
 * (mappers/merge.ts).
 */

import { buildAllergies } from './adt-allergy.ts';
import { buildCoverages } from './adt-coverage.ts';
import { buildConditions } from './adt-diagnosis.ts';
import { buildEncounter } from './adt-encounter.ts';
import { buildPatientMerges } from './adt-merge.ts';
import { buildPatient, buildPatientFrom } from './adt-patient.ts';
import { buildRelatedPersons } from './adt-related-person.ts';
import { buildObservations, buildPersonObservations } from './observations.ts';
import { buildProcedures, buildProceduresOutsideVisit } from './procedures.ts';
import { buildChargeItemsOutsideVisit, buildVisitChargeItems } from './charge-items.ts';
import { buildGuarantorAccount } from './financial.ts';
import { buildReferrals } from './referrals.ts';
import { buildCareTeam } from './roles.ts';
import { buildConsents } from './consents.ts';
import { segmentsNamed } from '../../formats/hl7v2/index.ts';
import type { ResourceDraft } from '../types.ts';
import type { MappingContext, MappingRow, ResourceBuilder } from './context.ts';

export { patientId } from './adt-common.ts';
export { buildEncounter } from './adt-encounter.ts';
export { buildPatient, buildPatientFrom } from './adt-patient.ts';

// ---------------------------------------------------------------------------------------------------------------
// Which event produces what

/** Everything an ADT_A01-shaped message (A01, A04, A05, A06, A07, A08) or an A03 can describe, in dependency order. */
const VISIT_AND_PERSON: readonly ResourceBuilder[] = [
  buildPatient,
  buildCareTeam,
  buildEncounter,
  buildRelatedPersons,
  buildGuarantorAccount,
  buildAllergies,
  buildConditions,
  buildCoverages,
  buildProcedures,
  buildVisitChargeItems,
  buildReferrals,
  buildObservations,
  buildConsents,
];

/**
 * A02 and the cancel events (A11, A12) are about the visit's state. The structures of A02, A11 and A12 (ADT_A02,
 * ADT_A09) carry no next of kin, allergies or insurance. Their OBX (ADT_A02 and ADT_A09 carry them: a weight at
 * transfer) are measurements whatever the event, keyed by what they measure and when, so a restated one updates the
 * same Observation. Their ROL segments (after PID and after PV1) are the patient's and the visit's people.
 */
const VISIT_STATE: readonly ResourceBuilder[] = [buildPatient, buildCareTeam, buildEncounter, buildObservations];

/**
 * A13 (cancel discharge) uses ADT_A01 and A16 (pending discharge) ADT_A16, which carry the whole record; the event
 * is about the visit's state. A cancel restores what was there and a pending discharge has not happened, so what is
 * a state the visit's events change is left to the A08 that HL7 recommends for changes: AL1 and IN1, and DG1, whose
 * type (admitting, working, final: DG1-6) is the visit's phase that these events are about. What no discharge
 * changes is mapped: a PR1 is a procedure done at a time (keyed by its code and time, so a restated one is the same
 * Procedure), a GT1 the account's guarantor (the account's status is not touched), an RF1 a referral with its own
 * status (RF1-1).
 */
const VISIT_STATE_AND_RECORD: readonly ResourceBuilder[] = [
  buildPatient,
  buildCareTeam,
  buildEncounter,
  buildGuarantorAccount,
  buildProcedures,
  buildReferrals,
  buildObservations,
];

/**
 * A28 (add person information) and A31 (update person information) are about the person, not a visit: no
 * Encounter (their ROL after PV1 are reported), and no Condition either, because a DG1 diagnosis is typed by its
 * place in a visit (admitting, working, final: DG1-6) and a Condition without that visit would lose what it means.
 * A PR1 procedure and an FT1 charge are acts at a time, true without the visit: they are mapped as the patient's,
 * without an Encounter. Their OBX (height, weight) are the person's, without a visit.
 */
const PERSON: readonly ResourceBuilder[] = [
  buildPatient,
  buildCareTeam,
  buildRelatedPersons,
  buildGuarantorAccount,
  buildAllergies,
  buildCoverages,
  buildProceduresOutsideVisit,
  buildChargeItemsOutsideVisit,
  buildReferrals,
  buildPersonObservations,
  buildConsents,
];

/** The ADT rows of the mapping table (mappers/hl7v2/registry.ts). */
export const ADT_MAPPINGS: readonly MappingRow[] = [
  ['ADT^A01', VISIT_AND_PERSON],
  ['ADT^A02', VISIT_STATE],
  ['ADT^A03', VISIT_AND_PERSON],
  ['ADT^A04', VISIT_AND_PERSON],
  ['ADT^A05', VISIT_AND_PERSON],
  ['ADT^A06', VISIT_AND_PERSON],
  ['ADT^A07', VISIT_AND_PERSON],
  ['ADT^A08', VISIT_AND_PERSON],
  ['ADT^A11', VISIT_STATE],
  ['ADT^A12', VISIT_STATE],
  ['ADT^A13', VISIT_STATE_AND_RECORD],
  ['ADT^A28', PERSON],
  ['ADT^A31', PERSON],
  // A40 (merge patient) and A47 (change patient identifier list) both retire the record keyed by MRG-1 in favour of
  // the one keyed by PID-3: ids are derived from the identifier, so a changed identifier is a merge into a new id.
  ['ADT^A40', [buildPatientMerges]],
  ['ADT^A47', [buildPatientMerges]],
  // The older merge events retire the record keyed by MRG-1 in favour of the PID's, as A40 does: A18 (merge patient
  // information), A30 (merge person information), A34 (merge patient id only), A36 (merge patient id and account),
  // A39 (merge person).
  ['ADT^A18', [buildPatientMerges]],
  ['ADT^A30', [buildPatientMerges]],
  ['ADT^A34', [buildPatientMerges]],
  ['ADT^A36', [buildPatientMerges]],
  ['ADT^A39', [buildPatientMerges]],
  // Tracking, pending, leave of absence, deleted visits, cancels and doctor changes: the visit's state (adt-encounter.ts).
  ...(['A09', 'A10', 'A15', 'A21', 'A22', 'A23', 'A25', 'A26', 'A27', 'A32', 'A33', 'A38', 'A52', 'A53', 'A54', 'A55', 'A61', 'A62'] as const).map(
    (event): MappingRow => [`ADT^${event}`, VISIT_STATE],
  ),
  ['ADT^A16', VISIT_STATE_AND_RECORD],
  // A14 (pending admit) uses the ADT_A05 structure: everything an admit can say.
  ['ADT^A14', VISIT_AND_PERSON],
  // The patient is everything A29 (delete person), A35/A41 (account merges), A42 (visit merge), A43-A45 (moves),
  // A46/A48/A49 (identifier changes of v2.3), A50/A51 (visit number changes) say that this table maps yet; their MRG
  // segment is kept with the raw message.
  ...(['A29', 'A35', 'A41', 'A42', 'A43', 'A44', 'A45', 'A46', 'A48', 'A49', 'A50', 'A51'] as const).map((event): MappingRow => [`ADT^${event}`, [buildPatient]]),
  // Swaps (A17), links (A24) and unlinks (A37) are about two patients, one per PID; each is its own Patient.
  ['ADT^A17', [buildEveryPatient]],
  ['ADT^A24', [buildEveryPatient]],
  ['ADT^A37', [buildEveryPatient]],
  // A60 updates allergies (AL1, or IAM from v2.5 on).
  ['ADT^A60', [buildPatient, buildEncounter, buildAllergies]],
];

/** One Patient per PID segment, for events about two patients (swap, link, unlink). */
function buildEveryPatient(context: MappingContext): ResourceDraft[] {
  return segmentsNamed(context.message, 'PID').map((pid) => buildPatientFrom(pid, context));
}

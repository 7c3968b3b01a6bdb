/**
 * ADT (admit, discharge, transfer and the patient and visit updates around them) -> Patient, Encounter,
 * RelatedPerson (NK1), AllergyIntolerance (AL1), Condition (DG1) and Coverage (IN1) drafts, and patient merges
 * (A40, A47). This file is the table of which event produces what; each resource has its own adt-*.ts file.
 *
 * Draft semantics follow HL7 v2 update rules per FHIR element: a field that was not sent leaves the element as
 * stored (undefined), a field sent as `""` removes it (null), anything else replaces it. Elements are replaced
 * whole: an element fed by several fields (name from PID-5 and PID-9, telecom from PID-13 and PID-14) takes what
 * the message sends for all of them, which matches senders that send complete segments, as ADT senders do. The
 * exceptions are elements that carry history or whose parts arrive in different events (Encounter.location,
 * period, classHistory, hospitalization): those are merge operations (mappers/merge.ts).
 */

import { buildAllergies } from './adt-allergy.ts';
import { buildCoverages } from './adt-coverage.ts';
import { buildConditions } from './adt-diagnosis.ts';
import { buildEncounter } from './adt-encounter.ts';
import { buildPatientMerges } from './adt-merge.ts';
import { buildPatient } from './adt-patient.ts';
import { buildRelatedPersons } from './adt-related-person.ts';
import type { MappingRow, ResourceBuilder } from './context.ts';

export { patientId } from './adt-common.ts';
export { buildEncounter } from './adt-encounter.ts';
export { buildPatient, buildPatientFrom } from './adt-patient.ts';

// ---------------------------------------------------------------------------------------------------------------
// Which event produces what

/** Everything an ADT_A01-shaped message (A01, A04, A05, A06, A07, A08) or an A03 can describe, in dependency order. */
const VISIT_AND_PERSON: readonly ResourceBuilder[] = [buildPatient, buildEncounter, buildRelatedPersons, buildAllergies, buildConditions, buildCoverages];

/**
 * A02 and the cancel events (A11, A12, A13) are about the visit's state. The structures of A02, A11 and A12
 * (ADT_A02, ADT_A09) carry no next of kin, allergies or insurance; A13 uses ADT_A01, but a cancel restores what
 * was there and sends no new findings, so its AL1, DG1 and IN1 are left to the A08 that HL7 recommends for changes.
 */
const VISIT_STATE: readonly ResourceBuilder[] = [buildPatient, buildEncounter];

/**
 * A28 (add person information) and A31 (update person information) are about the person, not a visit: no
 * Encounter, and no Condition either, because a DG1 diagnosis is typed by its place in a visit (admitting, working,
 * final: DG1-6) and a Condition without that visit would lose what it means.
 */
const PERSON: readonly ResourceBuilder[] = [buildPatient, buildRelatedPersons, buildAllergies, buildCoverages];

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
  ['ADT^A13', VISIT_STATE],
  ['ADT^A28', PERSON],
  ['ADT^A31', PERSON],
  // A40 (merge patient) and A47 (change patient identifier list) both retire the record keyed by MRG-1 in favour of
  // the one keyed by PID-3: ids are derived from the identifier, so a changed identifier is a merge into a new id.
  ['ADT^A40', [buildPatientMerges]],
  ['ADT^A47', [buildPatientMerges]],
];

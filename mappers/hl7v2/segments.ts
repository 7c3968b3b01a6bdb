/**
 * The builders a message's own segments call for, for message types the mapping table does not list (a BAR, a DFT,
 * a PPR, a REF, a response that carries data) and for trigger events whose structure is a known one's. A message is
 * mapped by what it carries: a PID is a Patient, a PV1 a visit, an AL1 an allergy, an OBR with OBX results, an RXA
 * an administration, a CON a consent, and so on; what no builder reads stays in the raw message, and a segment that carries data but
 * has no builder is an issue on the message.
 */
import { type Hl7Message, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { reportIssue } from '../issues.ts';
import type { MappingContext, ResourceBuilder } from './context.ts';
import { buildAllergies } from './adt-allergy.ts';
import { buildCoverages } from './adt-coverage.ts';
import { buildConditions } from './adt-diagnosis.ts';
import { buildEncounter } from './adt-encounter.ts';
import { buildPatient } from './adt-patient.ts';
import { buildRelatedPersons } from './adt-related-person.ts';
import { buildDocumentReference } from './documents.ts';
import { buildImmunizations } from './immunization.ts';
import { buildServiceRequests } from './orders.ts';
import { buildMedicationRequests, buildRequestedMedications } from './pharmacy.ts';
import { buildResults } from './results.ts';
import { buildAppointment } from './scheduling.ts';
import { buildChargeItems, buildChargeItemsOutsideVisit, buildVisitChargeItems } from './charge-items.ts';
import { buildAccount, buildGuarantorAccount } from './financial.ts';
import { buildDispenses } from './medication-events.ts';
import { buildObservations, buildObservationsBesideResults } from './observations.ts';
import { buildProblems } from './problems.ts';
import { buildProcedures, buildProceduresOutsideVisit } from './procedures.ts';
import { buildReferrals } from './referrals.ts';
import { buildConsents } from './consents.ts';
import { buildCareTeam, reportUnmappedRoles } from './roles.ts';

/**
 * Segments that carry clinical or administrative data and that no builder, or not every message's builders, read, by
 * name: each present one that the message's builders do not read is reported once per message
 * (ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED) so that what was not mapped is visible.
 */
const DATA_SEGMENTS = [
  'PR1', 'FT1', 'GT1', 'IN2', 'IN3', 'ACC', 'UB1', 'UB2', 'PRB', 'GOL', 'PTH', 'VAR', 'IAM', 'RXD', 'RXG', 'RF1',
  'CON', 'DB1', 'DRG', 'PDA', 'PV2',
  // Read by no builder yet: participations (v2.7+, the successor of ROL), access restrictions, contacts, billing,
  // clinical trials, specimen containers, compound components, dietary orders.
  'PRT', 'ARV', 'CTD', 'BLG', 'CTI', 'SAC', 'RXC', 'ODS',
] as const;

/**
 * The data segments some builders read, with those builders: a message whose builders include none of a segment's
 * readers (an RAS with a PR1, an SIU with an FT1) reports that segment as not mapped. The others no builder reads.
 * ROL is accounted for one segment at a time, as what it means depends on the segment it follows (roles.ts).
 */
const SEGMENT_READERS: ReadonlyMap<string, readonly ResourceBuilder[]> = new Map([
  ['PR1', [buildProcedures, buildProceduresOutsideVisit]],
  ['FT1', [buildChargeItems, buildVisitChargeItems, buildChargeItemsOutsideVisit]],
  ['PRB', [buildProblems]],
  ['RXD', [buildDispenses]],
  ['GT1', [buildAccount, buildGuarantorAccount]],
  ['IN2', [buildCoverages]],
  ['RF1', [buildReferrals]],
  ['CON', [buildConsents]],
  ['PV2', [buildEncounter]],
]);

const has = (message: Hl7Message, name: string): boolean => segmentsNamed(message, name).length > 0;

/** The builders, in dependency order, that the segments of `message` call for. */
export function segmentBuilders(message: Hl7Message): ResourceBuilder[] {
  const builders: ResourceBuilder[] = [];
  if (has(message, 'PID')) builders.push(buildPatient);
  if (has(message, 'PID') && has(message, 'ROL')) builders.push(buildCareTeam);
  if (has(message, 'PV1')) builders.push(buildEncounter);
  if (has(message, 'NK1')) builders.push(buildRelatedPersons);
  if (has(message, 'GT1')) builders.push(buildGuarantorAccount);
  if (has(message, 'AL1')) builders.push(buildAllergies);
  if (has(message, 'DG1')) builders.push(buildConditions);
  if (has(message, 'IN1')) builders.push(buildCoverages);
  if (has(message, 'PR1')) builders.push(buildProcedures);
  if (has(message, 'PRB')) builders.push(buildProblems);
  if (has(message, 'TXA')) builders.push(buildDocumentReference);
  else if (has(message, 'OBR') && has(message, 'OBX')) builders.push(buildResults, buildObservationsBesideResults);
  else if (has(message, 'OBR')) builders.push(buildServiceRequests);
  if (has(message, 'RXA')) builders.push(buildImmunizations);
  if (has(message, 'RXE')) builders.push(buildMedicationRequests);
  // An RXO beside an RXE is the order the pharmacy encoded (an RDE^O25, an RDS): the RXE is what it maps.
  else if (has(message, 'RXO')) builders.push(buildRequestedMedications);
  if (has(message, 'RXD')) builders.push(buildDispenses);
  if (has(message, 'FT1')) builders.push(buildVisitChargeItems);
  if (has(message, 'SCH')) builders.push(buildAppointment);
  if (has(message, 'RF1')) builders.push(buildReferrals);
  if (has(message, 'CON')) builders.push(buildConsents);
  // OBX outside result reports and documents: observations of what they follow (observations.ts).
  if (has(message, 'OBX') && !has(message, 'TXA') && !has(message, 'OBR')) builders.push(buildObservations);
  builders.push(unmappedSegmentReporter(builders));
  return builders;
}

/**
 * A builder that builds nothing and reports each data segment of the message that none of `builders` (a row of the
 * mapping table, or what segmentBuilders chose) reads.
 */
export function unmappedSegmentReporter(builders: readonly ResourceBuilder[]): ResourceBuilder {
  const read = new Set(builders);
  const unread = DATA_SEGMENTS.filter((name) => !(SEGMENT_READERS.get(name) ?? []).some((reader) => read.has(reader)));
  return (context: MappingContext): undefined => {
    for (const name of unread) {
      if (!has(context.message, name)) continue;
      reportIssue({
        severity: 'information',
        code: 'ANCHORLINE_ISSUE_SEGMENT_NOT_MAPPED',
        location: name,
        detail: `${name} segments are kept in the raw message; ${context.messageType}^${context.triggerEvent} does not map them yet`,
      });
    }
    reportUnmappedRoles(context);
    return undefined;
  };
}

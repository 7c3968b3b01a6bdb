/**
 * Referrals (REF^I12-I15, RRI^I12-I15, and any message with an RF1): RF1 -> a ServiceRequest for the referral and a
 * Task that tracks it, with the providers of its PRD segments. Per the IG's RF1 and PRD maps and the FHIR referral
 * pattern (a ServiceRequest with category "Patient referral", whose workflow state a Task carries):
 *
 * - ServiceRequest: identifier RF1-6 originating referral id (placer) and RF1-11 external referral id; status from
 *   RF1-1 (table 0283: A accepted and P pending -> active, R rejected -> revoked, E expired -> completed); intent
 *   order; category SNOMED CT 3457005 Patient referral; priority RF1-2 (table 0280: S stat, A asap, R routine);
 *   code RF1-3 referral type (table 0281); reasonCode RF1-10; occurrencePeriod RF1-7 effective to RF1-8 expiration;
 *   authoredOn RF1-9 process date; requester the PRD with role RP (referring provider); performer the PRD with role
 *   RT (referred-to provider), else CP (consulting).
 * - Task: the same identifiers; status from RF1-1 (A accepted, P requested, R rejected, E cancelled); businessStatus
 *   RF1-4 disposition (table 0282); intent order; focus the ServiceRequest; for the patient; owner the performer.
 *
 * A PRD names its provider by PRD-7 identifier (PLN: id, type, state) and PRD-2 name: a Practitioner when it has an
 * identifier, else a display-only reference, as an XCN without its id (directory.ts explains why a name alone makes
 * no resource). The referral is keyed by RF1-6, else RF1-11, else by its message (message-common.ts
 * messageScopedKey).
 */
import { type Hl7Segment, fieldOf, segmentsNamed } from '../../formats/hl7v2/index.ts';
import { deterministicId } from '../ids.ts';
import type { ResourceDraft } from '../types.ts';

import { eachSegment } from './clinical-common.ts';
import { type AssigningAuthority, type CodeableConcept, type Reference, comp, hl7TableSystems, toCodeableConcept, toCodeableConceptIn, toFhirDateTime, toHumanName } from './datatypes.ts';
import { assignedIdentifier } from './directory.ts';
import { codeOf, completeDraft, updateDraft } from './drafts.ts';
import { type KeyIdentifier, eiKey, messageScopedKey, singlePatientReference } from './message-common.ts';
import type { MappingContext } from './context.ts';

const REFERRAL_CATEGORY: CodeableConcept = { coding: [{ system: 'http://snomed.info/sct', code: '3457005', display: 'Patient referral' }] };

/** RF1-1 referral status (table 0283) -> ServiceRequest.status and Task.status. */
const STATUS: Readonly<Record<string, { request: string; task: string }>> = {
  A: { request: 'active', task: 'accepted' },
  P: { request: 'active', task: 'requested' },
  R: { request: 'revoked', task: 'rejected' },
  E: { request: 'completed', task: 'cancelled' },
};

/** RF1-2 referral priority (table 0280) -> request priority. */
const PRIORITY: Readonly<Record<string, string>> = { S: 'stat', A: 'asap', R: 'routine' };

const NO_AUTHORITY: AssigningAuthority = Object.freeze({ namespace: '', universalId: '', universalIdType: '' });

/** PRD-1 provider role (table 0286). */
const REFERRING = 'RP';
const REFERRED_TO = 'RT';
const CONSULTING = 'CP';

export function buildReferrals(context: MappingContext): ResourceDraft[] {
  const referrals = segmentsNamed(context.message, 'RF1');
  if (referrals.length === 0) return [];
  const subject = singlePatientReference(context);
  const providers = providerReferences(context);
  return eachSegment(referrals, (rf1) => buildReferral(rf1, subject, providers, context), context.message).flat();
}

function buildReferral(rf1: Hl7Segment, subject: Reference, providers: Map<string, Reference[]>, context: MappingContext): ResourceDraft[] {
  const { options } = context;
  const { timeZone } = options;
  const originating = eiKey(fieldOf(rf1, 6)[0], 'RF1-6', context, 'PLAC');
  const external = eiKey(fieldOf(rf1, 11)[0], 'RF1-11', context);
  const key: KeyIdentifier = originating ?? external ?? messageScopedKey(rf1, 6, 'RF1-6: the referral has no originating (RF1-6) or external (RF1-11) identifier; it is keyed by the message control id and its position', context);
  const id = deterministicId('ServiceRequest', 'referral', key.system, key.value);
  const status = STATUS[codeOf(fieldOf(rf1, 1)).toUpperCase()];
  const requester = providers.get(REFERRING)?.[0];
  const performer = providers.get(REFERRED_TO) ?? providers.get(CONSULTING) ?? [];
  const identifier = [originating, external].filter((item) => item !== undefined);
  const request = updateDraft('ServiceRequest', id, {
    identifier: identifier.length > 0 ? identifier : undefined,
    status: status?.request ?? 'unknown',
    intent: 'order',
    category: [REFERRAL_CATEGORY],
    priority: PRIORITY[codeOf(fieldOf(rf1, 2)).toUpperCase()],
    code: coded(rf1, 3, '0281', context) ?? { text: 'Patient referral' },
    subject,
    occurrencePeriod: period(toFhirDateTime(comp(fieldOf(rf1, 7)[0], 1), 'RF1-7', timeZone), toFhirDateTime(comp(fieldOf(rf1, 8)[0], 1), 'RF1-8', timeZone)),
    authoredOn: toFhirDateTime(comp(fieldOf(rf1, 9)[0], 1), 'RF1-9', timeZone),
    requester,
    performer: performer.length > 0 ? performer : undefined,
    reasonCode: fieldOf(rf1, 10).flatMap((rep) => toCodeableConcept(rep, options, 'L') ?? []),
  });
  const disposition = coded(rf1, 4, '0282', context);
  const task = completeDraft('Task', deterministicId('Task', 'referral', key.system, key.value), {
    identifier: identifier.length > 0 ? identifier : undefined,
    basedOn: [{ reference: `ServiceRequest/${id}` }],
    status: status?.task ?? 'requested',
    businessStatus: disposition,
    intent: 'order',
    priority: request.priority,
    code: { coding: [{ system: 'http://hl7.org/fhir/CodeSystem/task-code', code: 'fulfill', display: 'Fulfill the focal request' }] },
    focus: { reference: `ServiceRequest/${id}` },
    for: subject,
    authoredOn: request.authoredOn,
    requester,
    owner: performer[0],
  });
  return [request, task];
}

/** RF1-n as a CodeableConcept: the sender's coding, and the v2 table's when the code is the table's. */
function coded(rf1: Hl7Segment, field: number, table: string, context: MappingContext): CodeableConcept | undefined {
  const rep = fieldOf(rf1, field)[0];
  if (rep === undefined || comp(rep, 1) === '') return undefined;
  return toCodeableConceptIn(rep, context.options, `HL7${table}`, hl7TableSystems(table));
}

function period(start: string | undefined, end: string | undefined): { start?: string; end?: string } | undefined {
  return start === undefined && end === undefined ? undefined : { ...(start === undefined ? {} : { start }), ...(end === undefined ? {} : { end }) };
}

/** Each PRD's provider as a reference, by PRD-1 role code (a PRD may hold several roles). */
function providerReferences(context: MappingContext): Map<string, Reference[]> {
  const byRole = new Map<string, Reference[]>();
  for (const prd of segmentsNamed(context.message, 'PRD')) {
    const reference = providerReference(prd, context);
    if (reference === undefined) continue;
    for (const rep of fieldOf(prd, 1)) {
      const role = comp(rep, 1).toUpperCase();
      if (role === '') continue;
      byRole.set(role, [...(byRole.get(role) ?? []), reference]);
    }
  }
  return byRole;
}

/** PRD-7 identifier (PLN-1 id, PLN-2 type) and PRD-2 name -> a Practitioner; a name alone stays a display. */
function providerReference(prd: Hl7Segment, context: MappingContext): Reference | undefined {
  const name = toHumanName(fieldOf(prd, 2)[0] ?? [], 'PRD-2', context.options.timeZone);
  const display = name === undefined ? undefined : [...(name.given ?? []), name.family].filter((part) => part !== undefined && part !== '').join(' ') || undefined;
  const pln = fieldOf(prd, 7)[0];
  const value = comp(pln, 1);
  if (value === '') return display === undefined ? undefined : { display };
  // PLN has no assigning authority: the id is the sender's, as an XCN id without XCN-9 is.
  const identifier = assignedIdentifier(value, NO_AUTHORITY, 'PRD-7', context, comp(pln, 2));
  const id = deterministicId('Practitioner', identifier.system, identifier.value);
  const reference = context.directory.add(updateDraft('Practitioner', id, { identifier: [identifier], name: name === undefined ? undefined : [name] }));
  return display === undefined ? { reference } : { reference, display };
}

/**
 * Reason for Referral section (IHE PCC 1.3.6.1.4.1.19376.1.5.3.1.3.1, LOINC 42349-1): why the patient is sent on,
 * in its narrative, and in C-CDA R2.1 a Patient Referral Act (2.16.840.1.113883.10.20.22.4.140, classCode PCPR) per
 * referral. C-CDA on FHIR maps no referral; US Core carries one as a ServiceRequest, which is what each act becomes:
 * - code: the act's code (a SNOMED CT referral procedure); category: SNOMED CT 3457005 Patient referral;
 * - status from the act's status, intent from its mood (INT plan, RQO order, PRP/ARQ/PRMS proposal);
 * - reasonCode: the values of its indications (RSON observations: the problem it is for);
 * - occurrence: its effectiveTime; priority from priorityCode; authoredOn and requester: its author; performer: the
 *   performer it is referred to; note: its comments.
 * A Note Activity in the section is a DocumentReference, as in a Notes section (notes.ts). A section of narrative
 * alone has nothing to convert; any other kind of statement in it is reported.
 */

import { actor } from './participants.ts';
import { noteActivity, NOTE_ACTIVITY } from './notes.ts';
import {
  asNodes,
  attr,
  concept,
  earliestAuthorTime,
  entryStatements,
  first,
  firstAuthor,
  hasTemplate,
  identifiers,
  moodOf,
  Narrative,
  narrativeExtension,
  notesOf,
  reasonCodesOf,
  REQUEST_STATUS_OF_ACT,
  resourceId,
  SectionResources,
  statusCodeOf,
  type FhirResource,
  type Node,
} from './cda-read.ts';
import type { SectionContext, SectionConverter, SectionOutput } from '../section-types.ts';

export const PATIENT_REFERRAL = { coding: [{ system: 'http://snomed.info/sct', code: '3457005', display: 'Patient referral' }] };

/** x_DocumentProcedureMood -> ServiceRequest.intent. */
const INTENT: Readonly<Record<string, string>> = { INT: 'plan', RQO: 'order', PRP: 'proposal', ARQ: 'proposal', PRMS: 'proposal' };

/** ActPriority -> request-priority. */
const PRIORITY: Readonly<Record<string, string>> = { R: 'routine', RR: 'routine', UR: 'urgent', EL: 'routine', A: 'asap', CR: 'asap', EM: 'urgent', P: 'asap', PRN: 'routine', S: 'stat', T: 'urgent', CS: 'stat', CSP: 'stat', CSR: 'stat' };

export const referralSection: SectionConverter = {
  name: 'reason for referral',
  roots: ['1.3.6.1.4.1.19376.1.5.3.1.3.1'],
  loincCodes: ['42349-1'],
  convert: convertReferrals,
};

function convertReferrals(section: Node, context: SectionContext): SectionOutput {
  const out = new SectionResources();
  const narrative = new Narrative(section.text);
  for (const { kind, node, at } of entryStatements(section, context)) {
    if (kind === 'act' && attr(node, 'classCode') === 'PCPR') out.entry(serviceRequest(node, context, narrative, out, at, { purpose: 'referral', category: PATIENT_REFERRAL }));
    else if (kind === 'act' && hasTemplate(node, NOTE_ACTIVITY)) out.entry(noteActivity(node, context, narrative, out, at));
    else {
      context.issue('warning', 'entries-not-converted', `a ${kind} in a Reason for Referral section that is neither a referral (an act of class PCPR) nor a note was not converted`, at);
      continue;
    }
    out.count();
  }
  return out.output();
}

/**
 * A statement of a requesting mood (a referral act, a planned procedure) as a ServiceRequest, as above; `purpose`
 * names its resource id when the statement has no id of its own, `category` its category when it has one.
 */
export function serviceRequest(act: Node, context: SectionContext, narrative: Narrative, out: SectionResources, at: string, options: { purpose: string; category?: unknown }): FhirResource {
  // A plan often gives the time it aims at as an interval's center (`<effectiveTime><center value=…/>`).
  const sent = first(act.effectiveTime);
  const center = first(sent?.center);
  const time = attr(sent, 'value') === undefined && sent?.low === undefined && sent?.high === undefined && center !== undefined ? center : sent;
  const period = context.period(time);
  const single = attr(time, 'value') !== undefined && time?.low === undefined && time?.high === undefined;
  const author = firstAuthor(act);
  const sites = asNodes(act.targetSiteCode).map((site) => concept(site, narrative)).filter((site) => site !== undefined);
  const performers = asNodes(act.performer)
    .map((performer) => actor(first(performer.assignedEntity), context, out))
    .filter((reference) => reference !== undefined);
  return {
    resourceType: 'ServiceRequest',
    id: resourceId('ServiceRequest', act, context, at, options.purpose),
    extension: narrativeExtension(act),
    identifier: identifiers(act, context),
    status: REQUEST_STATUS_OF_ACT[statusCodeOf(act) ?? ''] ?? 'unknown',
    intent: INTENT[moodOf(act)] ?? 'order',
    category: options.category === undefined ? undefined : [options.category],
    priority: PRIORITY[attr(first(act.priorityCode), 'code') ?? ''],
    code: concept(act.code, narrative),
    subject: { reference: context.patientReference },
    occurrenceDateTime: single ? context.dateTime(time) : undefined,
    occurrencePeriod: single ? undefined : period,
    authoredOn: earliestAuthorTime(act, context),
    requester: author === undefined ? undefined : actor(author, context, out),
    performer: performers.length > 0 ? performers : undefined,
    reasonCode: reasonCodesOf(act, narrative),
    bodySite: sites.length > 0 ? sites : undefined,
    note: notesOf(act, narrative),
  };
}

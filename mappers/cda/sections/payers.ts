/**
 * Payers section (2.16.840.1.113883.10.20.22.2.18): each Policy Activity (4.61) of a Coverage Activity (4.60) as a
 * Coverage. C-CDA on FHIR has no page for this section; the mapping reads the C-CDA templates the way FHIR's Coverage
 * describes itself:
 *
 * - payor: the Payer Performer (4.87, or the performer coded PAYOR) as an Organization: its represented
 *   organization's name, address and telecom, identified by the payer's id on the assignedEntity;
 * - beneficiary: the patient; relationship: the Covered Party's role code (4.89), mapped to FHIR's
 *   subscriber-relationship, the code as sent beside it; period: the Covered Party's time;
 * - subscriber and policyHolder: the patient when the covered party is the subscriber (SELF), else the Policy Holder
 *   (4.90) as a RelatedPerson; subscriberId: the policy holder's id, else the covered party's own member id when the
 *   patient is the subscriber;
 * - identifier: the policy's ids and the covered party's member id (type MB); type: the policy's code (a Source of
 *   Payment Typology or X12 insurance type code); order: the sequenceNumber of the policy in the coverage activity;
 *   class: the plan (the REFR act in DEF mood) when it is named.
 *
 * The guarantor (4.88) is no part of a Coverage (FHIR has it on Account) and is left to the narrative.
 */

import {
  asNodes,
  attr,
  concept,
  DATA_ABSENT_REASON,
  entryStatements,
  first,
  hasTemplate,
  identifiers,
  Narrative,
  relatedStatements,
  resourceId,
  SectionResources,
  statusCodeOf,
  type CodeableConcept,
  type FhirResource,
  type Identifier,
  type Node,
  type Reference,
} from './cda-read.ts';
import { organization, relatedPerson } from './participants.ts';
import type { SectionContext, SectionConverter, SectionOutput } from '../section-types.ts';

const POLICY_ACTIVITY = '2.16.840.1.113883.10.20.22.4.61';
const PAYER_PERFORMER = '2.16.840.1.113883.10.20.22.4.87';
const GUARANTOR_PERFORMER = '2.16.840.1.113883.10.20.22.4.88';
const COVERED_PARTY = '2.16.840.1.113883.10.20.22.4.89';
const POLICY_HOLDER = '2.16.840.1.113883.10.20.22.4.90';
/** v3 RoleClass and RoleCode: a relationship, which some senders put where the policy's type belongs. */
const RELATIONSHIP_SYSTEMS = new Set(['2.16.840.1.113883.5.110', '2.16.840.1.113883.5.111']);
const SUBSCRIBER_RELATIONSHIP = 'http://terminology.hl7.org/CodeSystem/subscriber-relationship';

/** v3 RoleCode of the covered party (the patient's relation to the subscriber) -> FHIR subscriber-relationship. */
const RELATIONSHIPS: Readonly<Record<string, string>> = {
  SELF: 'self', SPS: 'spouse', HUSB: 'spouse', WIFE: 'spouse', DOMPART: 'common', SIGOTHR: 'common',
  CHILD: 'child', CHLDADOPT: 'child', CHLDFOST: 'child', CHLDINLAW: 'child', DAU: 'child', DAUADOPT: 'child', DAUC: 'child', DAUFOST: 'child',
  DAUINLAW: 'child', NCHILD: 'child', SON: 'child', SONADOPT: 'child', SONC: 'child', SONFOST: 'child', SONINLAW: 'child', STPCHLD: 'child',
  STPDAU: 'child', STPSON: 'child',
  PRN: 'parent', FTH: 'parent', MTH: 'parent', NPRN: 'parent', NFTH: 'parent', NMTH: 'parent', STPPRN: 'parent', STPFTH: 'parent',
  STPMTH: 'parent', ADOPTP: 'parent', ADOPTF: 'parent', ADOPTM: 'parent',
};

/** ActStatus of the policy activity -> Coverage.status (financial resource status). */
const COVERAGE_STATUS: Readonly<Record<string, string>> = { nullified: 'entered-in-error', aborted: 'cancelled', cancelled: 'cancelled', new: 'draft' };

export const payersSection: SectionConverter = {
  name: 'payers',
  roots: ['2.16.840.1.113883.10.20.22.2.18', '1.3.6.1.4.1.19376.1.5.3.1.1.5.3.7'],
  loincCodes: ['48768-6'],
  convert: convertPayers,
};

function convertPayers(section: Node, context: SectionContext): SectionOutput {
  const out = new SectionResources();
  const narrative = new Narrative(section.text);
  for (const { kind, node, at } of entryStatements(section, context)) {
    if (kind !== 'act') continue;
    // A coverage activity holds its policies; a policy activity sent on its own is read as one.
    const policies = hasTemplate(node, POLICY_ACTIVITY)
      ? [{ policy: node, order: undefined }]
      : relatedStatements(node)
        .filter(({ typeCode, kind: innerKind, node: inner }) => innerKind === 'act' && (hasTemplate(inner, POLICY_ACTIVITY) || typeCode === 'COMP'))
        .map(({ node: inner, relationship }) => ({ policy: inner, order: Number(attr(first(relationship.sequenceNumber), 'value')) }));
    let any = false;
    for (const { policy, order } of policies) {
      out.entry(coverage(policy, context, out, narrative, order));
      any = true;
    }
    if (any) out.count();
    // An act with no statement in it at all (id and code unknown, nothing related) is a placeholder for "no
    // information": there was nothing to convert. One that holds something else has lost it.
    else if (relatedStatements(node).length === 0 && attr(first(node.code), 'code') === undefined) {
      context.issue('information', 'entries-not-converted', 'a coverage activity with no policy or anything else in it (a placeholder for no information) was not converted', at);
    } else context.issue('warning', 'entries-not-converted', 'a coverage activity without a policy activity was not converted', at);
  }
  return out.output();
}

function coverage(policy: Node, context: SectionContext, out: SectionResources, narrative: Narrative, order: number | undefined): FhirResource {
  const coveredParty = participantOf(policy, 'COV', COVERED_PARTY);
  const holder = participantOf(policy, 'HLD', POLICY_HOLDER);
  const coveredRole = first(coveredParty?.participantRole);
  const holderRole = first(holder?.participantRole);
  const relationshipCode = attr(first(coveredRole?.code), 'code');
  const relationship = relationshipCode === undefined ? undefined : RELATIONSHIPS[relationshipCode.toUpperCase()] ?? 'other';
  const self = relationship === 'self';
  const id = resourceId('Coverage', policy, context, context.location, 'coverage');

  const subscriber: Reference | undefined = self ? { reference: context.patientReference } : relatedPerson(holderRole, context, out, id);
  const memberIds = (coveredRole ? asNodes(coveredRole.id) : []).filter((memberId) => attr(memberId, 'extension') !== undefined && attr(memberId, 'nullFlavor') === undefined);
  const holderIds = (holderRole ? asNodes(holderRole.id) : []).filter((holderId) => attr(holderId, 'extension') !== undefined && attr(holderId, 'nullFlavor') === undefined);
  const subscriberId = attr(holderIds[0], 'extension') ?? (self ? attr(memberIds[0], 'extension') : undefined);
  const memberIdentifiers = (identifiers({ id: memberIds }, context) ?? []).map((identifier) => ({ ...identifier, type: MEMBER_NUMBER }));

  const typeCode = first(policy.code);
  const type = typeCode !== undefined && !RELATIONSHIP_SYSTEMS.has(attr(typeCode, 'codeSystem') ?? '') ? concept(typeCode, narrative) : undefined;
  const relationshipConcept = relationship === undefined ? undefined : withRelationship(relationship, concept(coveredRole?.code, narrative));
  const payor = payorOf(policy, context, out);
  const plan = planOf(policy, context, narrative);
  const allIdentifiers: Identifier[] = [...(identifiers(policy, context) ?? []), ...memberIdentifiers];
  return {
    resourceType: 'Coverage',
    id,
    identifier: allIdentifiers.length > 0 ? allIdentifiers : undefined,
    status: COVERAGE_STATUS[statusCodeOf(policy) ?? ''] ?? 'active',
    type,
    policyHolder: subscriber === undefined ? undefined : { reference: subscriber.reference },
    subscriber: subscriber === undefined ? undefined : { reference: subscriber.reference },
    subscriberId,
    beneficiary: { reference: context.patientReference },
    relationship: relationshipConcept,
    period: context.period(first(coveredParty?.time)),
    // Coverage.payor is required: a policy naming no payer says the payer is not known.
    payor: [payor ?? { extension: [{ url: DATA_ABSENT_REASON, valueCode: 'unknown' }] }],
    class: plan === undefined ? undefined : [plan],
    order: order !== undefined && Number.isInteger(order) && order >= 1 ? order : undefined,
  };
}

const MEMBER_NUMBER: CodeableConcept = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MB', display: 'Member Number' }] };

function withRelationship(code: string, sent: CodeableConcept | undefined): CodeableConcept {
  const coding = [{ system: SUBSCRIBER_RELATIONSHIP, code }, ...(sent?.coding ?? [])];
  return { coding, ...(sent?.text !== undefined ? { text: sent.text } : {}) };
}

function participantOf(policy: Node, typeCode: string, template: string): Node | undefined {
  const participants = asNodes(policy.participant);
  return participants.find((participant) => hasTemplate(participant, template)) ?? participants.find((participant) => attr(participant, 'typeCode') === typeCode);
}

/** The payer: the Payer Performer, the performer coded PAYOR, or else the one performer that is no guarantor. */
function payorOf(policy: Node, context: SectionContext, out: SectionResources): Reference | undefined {
  const performers = asNodes(policy.performer);
  const payer = performers.find((performer) => hasTemplate(performer, PAYER_PERFORMER))
    ?? performers.find((performer) => attr(first(first(performer.assignedEntity)?.code), 'code') === 'PAYOR')
    ?? performers.find((performer) => !hasTemplate(performer, GUARANTOR_PERFORMER) && attr(first(first(performer.assignedEntity)?.code), 'code') !== 'GUAR');
  const assigned = first(payer?.assignedEntity);
  if (assigned === undefined) return undefined;
  const represented = first(assigned.representedOrganization) ?? {};
  const reference = organization(represented, context, out, { ids: assigned, addr: assigned.addr, telecom: assigned.telecom });
  return reference === undefined ? undefined : { reference: reference.reference, ...(reference.display !== undefined ? { display: reference.display } : {}) };
}

/** The plan the policy refers to (REFR act in DEF mood): its id as the class value, its text as the name. */
function planOf(policy: Node, context: SectionContext, narrative: Narrative): Record<string, unknown> | undefined {
  const plan = relatedStatements(policy).find(({ typeCode, kind, node }) => typeCode === 'REFR' && kind === 'act' && attr(node, 'moodCode') === 'DEF')?.node;
  if (plan === undefined) return undefined;
  // The plan's own id, not the one normalize.ts put first.
  const own = context.idOf(plan);
  const planId = asNodes(plan.id).find((id, i) => attr(id, 'nullFlavor') === undefined && attr(id, 'root') !== undefined && !(i === 0 && attr(id, 'root') === own));
  const name = narrative.textOf(plan.text);
  const value = attr(planId, 'extension') ?? attr(planId, 'root') ?? name;
  if (value === undefined) return undefined;
  return {
    type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/coverage-class', code: 'plan', display: 'Plan' }] },
    value,
    ...(name !== undefined ? { name } : {}),
  };
}

/**
 * Interventions section of a Care Plan (2.16.840.1.113883.10.20.21.2.3, LOINC 62387-6): what is planned, or was done,
 * for the patient's health concerns and goals. Each Intervention Act (2.16.840.1.113883.10.20.22.4.131, done) or
 * Planned Intervention Act (4.146, planned) groups its parts as related statements: planned acts, procedures,
 * observations, encounters, medication and supply orders (4.39-4.44), done procedures, medications and instructions.
 *
 * C-CDA on FHIR maps no intervention. Each becomes a CarePlan (intent `plan`) that lists its parts as activities, so
 * that what the care plan says is to be done, or was, is kept as data:
 * - status from the act's status (a done intervention completed); the act's code as the category; period from its
 *   effectiveTime; its earliest author time as `created`; the section narrative it points at as description;
 * - each related statement with a code is an activity: `detail.kind` the request resource its kind is (a medication
 *   a MedicationRequest, a supply a DeviceRequest, an encounter an Appointment, anything else a ServiceRequest),
 *   `detail.code` its code, `detail.status` from its mood and status (planned: not-started, or what its status says;
 *   done: completed), its time as `detail.scheduledPeriod`, its narrative as description.
 * References to goals and health concerns (Entry Reference, 4.122) are context, not activities: once the document is
 * converted they link the CarePlan to the Goals (`goal`) and Conditions (`addresses`) they name. Hand-offs (4.141) and
 * coverage (4.129) are context too. An intervention with neither a code nor an activity says nothing and is reported, as is
 * a statement of another kind in the section.
 */

import {
  concept,
  earliestAuthorTime,
  entryStatements,
  first,
  hasTemplate,
  identifiers,
  moodOf,
  Narrative,
  narrativeExtension,
  notesOf,
  ownIdKey,
  relatedStatements,
  REQUEST_STATUS_OF_ACT,
  resourceId,
  SectionResources,
  statusCodeOf,
  type FhirResource,
  type Node,
} from './cda-read.ts';
import { ENTRY_REFERENCE, statementIdOf } from '../normalize.ts';
import type { SectionContext, SectionConverter, SectionOutput } from '../section-types.ts';

const INTERVENTION_ACTS = ['2.16.840.1.113883.10.20.22.4.131', '2.16.840.1.113883.10.20.22.4.146'];
/** Entry Reference, Handoff Communication, Planned Coverage: context of an intervention, not its parts. */
const NOT_ACTIVITIES = [ENTRY_REFERENCE, '2.16.840.1.113883.10.20.22.4.141', '2.16.840.1.113883.10.20.22.4.129'];

/** ActStatus of a planned part -> CarePlan.activity.detail.status. */
const ACTIVITY_STATUS: Readonly<Record<string, string>> = {
  new: 'not-started', active: 'not-started', held: 'on-hold', suspended: 'on-hold', completed: 'completed', aborted: 'stopped', cancelled: 'cancelled', nullified: 'entered-in-error',
};

/** The request resource type each kind of statement is, as care-plan-activity-kind names them. */
const ACTIVITY_KIND: Readonly<Record<string, string>> = { substanceAdministration: 'MedicationRequest', supply: 'DeviceRequest', encounter: 'Appointment' };

export const interventionsSection: SectionConverter = {
  name: 'interventions',
  roots: ['2.16.840.1.113883.10.20.21.2.3'],
  loincCodes: ['62387-6'],
  convert: convertInterventions,
};

function convertInterventions(section: Node, context: SectionContext): SectionOutput {
  const out = new SectionResources();
  const entryReferences: Array<{ resource: FhirResource; targets: string[] }> = [];
  const narrative = new Narrative(section.text);
  for (const { kind, node, at } of entryStatements(section, context)) {
    if (kind !== 'act' || !hasTemplate(node, INTERVENTION_ACTS)) {
      context.issue('warning', 'entries-not-converted', `a ${kind} in an Interventions section that is not an intervention act was not converted`, at);
      continue;
    }
    const plan = intervention(node, context, narrative, at);
    if (plan === undefined) continue;
    out.entry(plan);
    out.count();
    // The id an Entry Reference was sent with (not the one normalize gave the reference itself) names its target.
    const targets = relatedStatements(node).flatMap(({ node: related }) => {
      const sent = hasTemplate(related, [ENTRY_REFERENCE]) ? ownIdKey(related, context) : undefined;
      return sent === undefined ? [] : [statementIdOf(...sent)];
    });
    if (targets.length > 0) entryReferences.push({ resource: plan, targets });
  }
  return { ...out.output(), entryReferences };
}

/**
 * Links each intervention to what its Entry References point at, once the whole document is converted: a Goal as
 * CarePlan.goal, a Condition (a health concern, a problem) as CarePlan.addresses. A reference to anything else, or to
 * a statement that was not converted (or is in another document), links nothing.
 */
export function linkInterventions(resources: readonly FhirResource[], entryReferences: ReadonlyArray<{ resource: FhirResource; targets: string[] }>): void {
  if (entryReferences.length === 0) return;
  const typeOf = new Map<string, string>();
  for (const resource of resources) if (resource.resourceType === 'Goal' || resource.resourceType === 'Condition') typeOf.set(resource.id as string, resource.resourceType);
  for (const { resource, targets } of entryReferences) {
    const goal: Array<{ reference: string }> = [];
    const addresses: Array<{ reference: string }> = [];
    for (const target of new Set(targets)) {
      const type = typeOf.get(target);
      if (type === 'Goal') goal.push({ reference: `Goal/${target}` });
      else if (type === 'Condition') addresses.push({ reference: `Condition/${target}` });
    }
    if (goal.length > 0) resource.goal = goal;
    if (addresses.length > 0) resource.addresses = addresses;
  }
}

function activity(statement: Node, kind: string, context: SectionContext, narrative: Narrative): Record<string, unknown> | undefined {
  const code = concept(statement.code, narrative);
  const description = narrative.textOf(statement.text);
  if (code === undefined && description === undefined) return undefined;
  const planned = moodOf(statement) !== 'EVN';
  const status = statusCodeOf(statement) ?? '';
  const period = context.period(first(statement.effectiveTime));
  return {
    detail: {
      kind: ACTIVITY_KIND[kind] ?? 'ServiceRequest',
      code,
      status: planned ? (ACTIVITY_STATUS[status] ?? 'unknown') : status === 'completed' || status === '' ? 'completed' : (ACTIVITY_STATUS[status] ?? 'unknown'),
      scheduledPeriod: period,
      description,
    },
  };
}

function intervention(act: Node, context: SectionContext, narrative: Narrative, at: string): FhirResource | undefined {
  const code = concept(act.code, narrative);
  const activities = relatedStatements(act)
    .filter(({ node }) => !hasTemplate(node, NOT_ACTIVITIES))
    .map(({ kind, node }) => activity(node, kind, context, narrative))
    .filter((each) => each !== undefined);
  if (code === undefined && activities.length === 0) {
    context.issue('warning', 'entries-not-converted', 'an intervention with neither a code nor any part with a code or text was not converted', at);
    return undefined;
  }
  const done = moodOf(act) === 'EVN';
  const status = statusCodeOf(act) ?? '';
  return {
    resourceType: 'CarePlan',
    id: resourceId('CarePlan', act, context, at, 'intervention'),
    extension: narrativeExtension(act),
    identifier: identifiers(act, context),
    status: done && (status === 'completed' || status === '') ? 'completed' : (REQUEST_STATUS_OF_ACT[status] ?? 'unknown'),
    intent: 'plan',
    category: code === undefined ? undefined : [code],
    title: done ? 'Intervention' : 'Planned intervention',
    description: narrative.textOf(act.text),
    subject: { reference: context.patientReference },
    period: context.period(first(act.effectiveTime)),
    created: earliestAuthorTime(act, context),
    activity: activities.length > 0 ? activities : undefined,
    note: notesOf(act, narrative),
  };
}

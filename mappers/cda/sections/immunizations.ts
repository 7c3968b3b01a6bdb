/**
 * Immunizations section: each Immunization Activity (2.16.840.1.113883.10.20.22.4.52) as an Immunization, following
 * C-CDA on FHIR (CF-immunizations): negationInd -> status not-done with the Immunization Refusal Reason as
 * statusReason; statusCode by ConceptMap CF-ImmunizationStatus; route, approach site, dose (the decimal as sent),
 * lot, manufacturer (an Organization), performers (function AP), indications, comments, repeatNumber as the dose
 * number.
 *
 * Taken over from @medplum/ccda rather than corrected afterwards: it drops the route, site, dose, negation,
 * refusal reason and indications, names the manufacturer by display only, and makes a planned immunization (moodCode
 * INT) a completed one. Correcting that would mean carrying each of those values from the document to resources.ts
 * as facts; reading the activity here is the simpler whole. A planned immunization is a MedicationRequest for the
 * vaccine (substance-administration.ts), as FHIR R4 has no planned Immunization.
 */

import {
  asNodes,
  attr,
  concept,
  entryStatements,
  first,
  hasTemplate,
  identifiers,
  isNegated,
  moodOf,
  Narrative,
  narrativeExtension,
  notesOf,
  quantity,
  reasonCodesOf,
  relatedStatements,
  resourceId,
  SectionResources,
  statusCodeOf,
  texts,
  type FhirResource,
  type Node,
  type Reference,
} from './cda-read.ts';
import { actor, organization } from './participants.ts';
import { medicationActivity, REQUEST_INTENTS } from './substance-administration.ts';
import type { SectionContext, SectionConverter, SectionOutput } from '../section-types.ts';

const REFUSAL_REASON = '2.16.840.1.113883.10.20.22.4.53';
const PERFORMER_FUNCTION = 'http://terminology.hl7.org/CodeSystem/v2-0443';

/** ConceptMap CF-ImmunizationStatus: every state but completed and nullified is an immunization not given. */
const IMMUNIZATION_STATUS: Readonly<Record<string, string>> = {
  completed: 'completed', nullified: 'entered-in-error', aborted: 'not-done', cancelled: 'not-done', held: 'not-done', new: 'not-done',
  obsolete: 'not-done', suspended: 'not-done',
};

export const immunizationsSection: SectionConverter = {
  name: 'immunizations',
  roots: ['2.16.840.1.113883.10.20.22.2.2', '2.16.840.1.113883.10.20.22.2.2.1', '1.3.6.1.4.1.19376.1.5.3.1.3.23'],
  loincCodes: ['11369-6'],
  convert: convertImmunizations,
};

function convertImmunizations(section: Node, context: SectionContext): SectionOutput {
  const out = new SectionResources();
  const narrative = new Narrative(section.text);
  for (const { kind, node, at } of entryStatements(section, context)) {
    if (kind !== 'substanceAdministration') continue;
    const mood = moodOf(node);
    const resource = mood === 'EVN'
      ? immunization(node, context, out, narrative)
      : REQUEST_INTENTS[mood] !== undefined ? medicationActivity(node, context, out, { narrative }, at) : undefined;
    if (resource === undefined) {
      if (mood !== 'EVN' && REQUEST_INTENTS[mood] === undefined) context.issue('warning', 'entries-not-converted', `an immunization activity with moodCode ${mood} was not converted`, at);
      continue;
    }
    out.entry(resource);
    out.count();
  }
  return out.output();
}

function immunization(activity: Node, context: SectionContext, out: SectionResources, narrative: Narrative): FhirResource {
  const product = first(first(activity.consumable)?.manufacturedProduct);
  const material = first(product?.manufacturedMaterial);
  const manufacturer = organization(first(product?.manufacturerOrganization), context, out);
  const refusal = relatedStatements(activity).find(({ typeCode, kind, node }) => typeCode === 'RSON' && kind === 'observation' && hasTemplate(node, REFUSAL_REASON));
  const negated = isNegated(activity);
  const performers = asNodes(activity.performer)
    .map((performer) => actor(first(performer.assignedEntity), context, out))
    .filter((reference): reference is Reference => reference !== undefined)
    .map((reference) => ({
      function: { coding: [{ system: PERFORMER_FUNCTION, code: 'AP', display: 'Administering Provider' }] },
      actor: { reference: reference.reference },
    }));
  const doseNumber = Number(attr(first(activity.repeatNumber), 'value'));
  const times = asNodes(activity.effectiveTime);
  const occurrence = context.dateTime(times[0]);
  // Immunization.status has no "not given for a reason" apart from not-done: a refusal reason says the same.
  const status = negated ? 'not-done' : (IMMUNIZATION_STATUS[statusCodeOf(activity) ?? ''] ?? 'completed');
  return {
    resourceType: 'Immunization',
    id: resourceId('Immunization', activity, context, context.location, 'immunization'),
    extension: narrativeExtension(activity),
    identifier: identifiers(activity, context),
    status,
    statusReason: status === 'not-done' && refusal !== undefined ? concept(refusal.node.code, narrative) : undefined,
    vaccineCode: concept(material?.code, narrative),
    patient: { reference: context.patientReference },
    occurrenceDateTime: occurrence,
    lotNumber: texts(material?.lotNumberText)[0],
    manufacturer: manufacturer === undefined ? undefined : { reference: manufacturer.reference },
    site: concept(activity.approachSiteCode, narrative),
    route: concept(activity.routeCode, narrative),
    doseQuantity: quantity(activity.doseQuantity),
    performer: performers.length > 0 ? performers : undefined,
    note: notesOf(activity, narrative),
    reasonCode: reasonCodesOf(activity, narrative),
    protocolApplied: Number.isInteger(doseNumber) && doseNumber >= 1 ? [{ doseNumberPositiveInt: doseNumber }] : undefined,
  };
}

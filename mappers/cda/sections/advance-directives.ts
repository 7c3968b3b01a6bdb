/**
 * Advance directives section (2.16.840.1.113883.10.20.22.2.21, .21.1): each Advance Directive Observation (4.48),
 * sent alone or in an Advance Directive Organizer (4.108), as a Consent with scope "adr".
 *
 * C-CDA on FHIR maps no advance directives, and the later guidance (C-CDA 3.0, the PACIO advance directive guide)
 * reads an R2.1 Advance Directive Observation as an Observation of what the directive says, keeping Consent for the
 * directive document itself. The product's users expect the patient's directives where FHIR keeps consents, and an
 * R2.1 observation is exactly one directive of the patient with its span and, often, the document that holds it; so
 * each is a Consent: category "acd" with the observation's code (and the organizer's) beside it, provision.code the
 * directive (the observation's value), provision.period its effectiveTime, dateTime the earliest author time, the
 * patient as the one who made it, and the referenced document (reference/externalDocument) as sourceAttachment
 * when it is named by a URL, else as sourceReference by its id.
 *
 * FHIR requires a Consent to name the policy it is made under (ppc-1); a C-CDA document never says which law or
 * rule governs a directive, so policyRule states that it is not known. The custodian (CST) and verifier (VRF)
 * participants have no element that takes them (Consent.organization takes an organization, verification a patient
 * or related person) and are left to the narrative. A negated observation ("no advance directive") is no consent.
 */

import {
  asNodes,
  attr,
  componentStatements,
  concept,
  DATA_ABSENT_REASON,
  earliestAuthorTime,
  entryStatements,
  first,
  hasTemplate,
  identifiers,
  isNegated,
  Narrative,
  narrativeExtension,
  resourceId,
  SectionResources,
  statusCodeOf,
  type CodeableConcept,
  type FhirResource,
  type Node,
} from './cda-read.ts';
import { iiIdentifier } from '../resources.ts';
import type { SectionContext, SectionConverter, SectionOutput } from '../section-types.ts';

const ADVANCE_DIRECTIVE_ORGANIZER = '2.16.840.1.113883.10.20.22.4.108';
const ADR_SCOPE = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'adr', display: 'Advanced Care Directive' }] };
const ADVANCE_DIRECTIVE_CATEGORY = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentcategorycodes', code: 'acd', display: 'Advance Directive' }] };

/** ActStatus -> Consent.status. */
const CONSENT_STATUS: Readonly<Record<string, string>> = {
  nullified: 'entered-in-error', aborted: 'inactive', cancelled: 'inactive', obsolete: 'inactive', new: 'proposed',
};

export const advanceDirectivesSection: SectionConverter = {
  name: 'advance directives',
  roots: ['2.16.840.1.113883.10.20.22.2.21', '2.16.840.1.113883.10.20.22.2.21.1', '1.3.6.1.4.1.19376.1.5.3.1.3.34', '1.3.6.1.4.1.19376.1.5.3.1.3.35'],
  loincCodes: ['42348-3'],
  convert: convertAdvanceDirectives,
};

function convertAdvanceDirectives(section: Node, context: SectionContext): SectionOutput {
  const out = new SectionResources();
  const narrative = new Narrative(section.text);
  for (const { kind, node, at } of entryStatements(section, context)) {
    if (kind === 'organizer' || hasTemplate(node, ADVANCE_DIRECTIVE_ORGANIZER)) {
      let any = false;
      for (const inner of componentStatements(node, at)) {
        if (inner.kind !== 'observation') continue;
        const consent = directive(inner.node, node, context, narrative, inner.at);
        if (consent === undefined) continue;
        out.entry(consent);
        any = true;
      }
      if (any) out.count();
    } else if (kind === 'observation') {
      const consent = directive(node, undefined, context, narrative, at);
      if (consent === undefined) continue;
      out.entry(consent);
      out.count();
    }
  }
  return out.output();
}

function directive(observation: Node, organizer: Node | undefined, context: SectionContext, narrative: Narrative, at: string): FhirResource | undefined {
  if (isNegated(observation)) {
    context.issue('information', 'entries-not-converted', 'an advance directive observation stating that there is no such directive was not converted (no consent to record)', at);
    return undefined;
  }
  const categories: CodeableConcept[] = [ADVANCE_DIRECTIVE_CATEGORY];
  for (const code of [concept(observation.code, narrative), concept(organizer?.code, narrative)]) {
    if (code === undefined) continue;
    const key = JSON.stringify(code.coding ?? code.text);
    if (!categories.some((known) => JSON.stringify(known.coding ?? known.text) === key)) categories.push(code);
  }
  const value = first(observation.value);
  const directiveCode = value !== undefined && (attr(value, 'code') !== undefined || value.translation !== undefined || value.originalText !== undefined) ? concept(value, narrative) : undefined;
  const period = context.period(first(observation.effectiveTime));
  const provision = directiveCode !== undefined || period !== undefined ? { ...(period ? { period } : {}), ...(directiveCode ? { code: [directiveCode] } : {}) } : undefined;
  return {
    resourceType: 'Consent',
    id: resourceId('Consent', observation, context, at, 'consent'),
    extension: narrativeExtension(observation),
    identifier: identifiers(observation, context),
    status: CONSENT_STATUS[statusCodeOf(observation) ?? ''] ?? 'active',
    scope: ADR_SCOPE,
    category: categories,
    patient: { reference: context.patientReference },
    dateTime: earliestAuthorTime(observation, context) ?? (organizer === undefined ? undefined : earliestAuthorTime(organizer, context)),
    performer: [{ reference: context.patientReference }],
    ...sourceOf(observation),
    policyRule: { extension: [{ url: DATA_ABSENT_REASON, valueCode: 'unknown' }] },
    provision,
  };
}

/** The document holding the directive (reference/externalDocument): by its URL when it has one, else by its id. */
function sourceOf(observation: Node): Record<string, unknown> {
  for (const reference of asNodes(observation.reference)) {
    const document = first(reference.externalDocument);
    if (document === undefined) continue;
    const text = first(document.text);
    const url = attr(first(text?.reference), 'value');
    const title = attr(first(document.code), 'displayName');
    if (url !== undefined && !url.startsWith('#')) {
      return { sourceAttachment: { ...(attr(text, 'mediaType') ? { contentType: attr(text, 'mediaType') } : {}), url, ...(title ? { title } : {}) } };
    }
    const id = asNodes(document.id).find((documentId) => attr(documentId, 'root') !== undefined && attr(documentId, 'nullFlavor') === undefined);
    if (id !== undefined) return { sourceReference: { identifier: iiIdentifier(id), ...(title ? { display: title } : {}) } };
  }
  return {};
}

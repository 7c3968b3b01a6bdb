/**
 * Sections of assessments -> Observation: Functional Status (2.16.840.1.113883.10.20.22.2.14, IHE
 * 1.3.6.1.4.1.19376.1.5.3.1.3.17, LOINC 47420-5), Mental Status (2.16.840.1.113883.10.20.22.2.56, LOINC 10190-7)
 * Nutrition (2.16.840.1.113883.10.20.22.2.57, LOINC 61144-2) and Health Status Evaluations and Outcomes
 * (2.16.840.1.113883.10.20.22.2.61, LOINC 11383-7). Each observation is an Observation with a value of
 * whatever type it was sent (observations.ts); an organizer (Functional or Mental Status Organizer, R1.1 Result
 * Organizer) is a grouping Observation whose members are its observations, as US Core's screening and assessment
 * panels are; what an observation relates (an Assessment Scale's supporting observations, a Nutritional Status's
 * assessments) are its members; a problem act (CCD R1.0) stands for the observations it holds.
 *
 * Category, after US Core's Observation Screening Assessment profile: survey, and the US Core category of the
 * section (functional-status, cognitive-status). Nutrition has no US Core category: survey alone.
 *
 * @medplum/ccda read these sections' observations without a category or with the category of a problem
 * observation's template ("exam"), and left values other than PQ, CD, ST and INT out.
 */

import type { SectionConverter } from '../section-types.ts';

import { convertObservation, OBSERVATION_STATUS, spanOf, statusFor, type ObservationOptions } from './observations.ts';
import {
  asNodes,
  conceptOf,
  entryStatements,
  fixedConcept,
  identifiersOf,
  Narrative,
  relatedObservations,
  resourceId,
  unknownConcept,
  type Concept,
  type FhirResource,
  type Node,
  type Reference,
  type SectionContext,
} from './statements.ts';

const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const US_CORE_CATEGORY = 'http://hl7.org/fhir/us/core/CodeSystem/us-core-category';
const SURVEY = fixedConcept(OBSERVATION_CATEGORY, 'survey', 'Survey');

function assessmentSection(name: string, roots: string[], loincCodes: string[], category: Concept[]): SectionConverter {
  return { name, roots, loincCodes, convert: (section, context) => convertAssessments(section, context, category) };
}

export const functionalStatusSection = assessmentSection(
  'functional status',
  ['2.16.840.1.113883.10.20.22.2.14', '1.3.6.1.4.1.19376.1.5.3.1.3.17'],
  ['47420-5'],
  [SURVEY, fixedConcept(US_CORE_CATEGORY, 'functional-status', 'Functional Status')],
);

/**
 * Health Status Evaluations and Outcomes (2.16.840.1.113883.10.20.22.2.61, LOINC 11383-7): Outcome Observations
 * (4.144), each the evaluation of progress toward a goal, are assessments as the others are.
 */
export const healthStatusEvaluationsSection = assessmentSection('health status evaluations and outcomes', ['2.16.840.1.113883.10.20.22.2.61'], ['11383-7'], [SURVEY]);

export const mentalStatusSection = assessmentSection(
  'mental status',
  ['2.16.840.1.113883.10.20.22.2.56'],
  ['10190-7'],
  [SURVEY, fixedConcept(US_CORE_CATEGORY, 'cognitive-status', 'Cognitive Status')],
);

export const nutritionSection = assessmentSection('nutrition', ['2.16.840.1.113883.10.20.22.2.57'], ['61144-2'], [SURVEY]);

function convertAssessments(section: Node, context: SectionContext, category: Concept[]): { resources: FhirResource[]; entries: FhirResource[]; converted: number } {
  const narrative = new Narrative(section.text);
  const resources: FhirResource[] = [];
  const entries: FhirResource[] = [];
  let converted = 0;
  for (const { kind, node: element, at } of entryStatements(section, context)) {
    const options: ObservationOptions = { category, narrative, resources: [], location: at };
    // CCD R1.0 and HITSP C32 documents wrap each functional status in a problem act: its observations are the entries.
    const observations = kind === 'act' ? relatedObservations(element, 'SUBJ') : [];
    const made = kind === 'organizer'
      ? [panel(element, context, options)]
      : kind === 'observation' ? [convertObservation(element, context, options)] : observations.map((observation) => convertObservation(observation, context, options));
    const references = made.filter((reference) => reference !== undefined);
    if (references.length === 0) {
      // An act that only names another document (reference/externalDocument: the discharge summary an outcome was
      // judged by) holds nothing of this document's to convert.
      if (kind === 'act' && observations.length === 0 && asNodes(element.reference).some((reference) => reference.externalDocument !== undefined)) {
        context.issue('information', 'entries-not-converted', 'an act that only refers to another document (externalDocument) was not converted: that document is not part of this one', at);
      }
      continue;
    }
    converted++;
    for (const each of references.map((reference) => options.resources.find((resource) => `${resource.resourceType}/${resource.id}` === reference.reference)!)) entries.push(each);
    for (const each of options.resources) resources.push(each);
  }
  return { resources, entries, converted };
}

/**
 * An organizer as a grouping Observation (code, status, time, members; no value), pushed first onto
 * options.resources, its members after it. Its time is its own effectiveTime, else the span of its members'.
 */
export function panel(organizer: Node, context: SectionContext, options: ObservationOptions): Reference | undefined {
  const start = options.resources.length;
  const id = resourceId('Observation', organizer, context, context.compositionId, `organizer-${start}`);
  const resource: FhirResource = { resourceType: 'Observation', id };
  options.resources.push(resource);
  const members = asNodes(organizer.component)
    .flatMap((component) => asNodes(component.observation))
    .map((observation) => convertObservation(observation, context, options, id))
    .filter((reference) => reference !== undefined);
  if (members.length === 0) {
    options.resources.length = start;
    return undefined;
  }
  Object.assign(resource, {
    identifier: identifiersOf(organizer, context),
    status: statusFor(organizer, true, OBSERVATION_STATUS, 'final'),
    category: options.category.length > 0 ? options.category : undefined,
    code: conceptOf(organizer.code, context, options.narrative) ?? unknownConcept(),
    subject: { reference: context.patientReference },
    ...spanOf(organizer, options.resources.slice(start + 1), context),
    hasMember: members,
  });
  return { reference: `Observation/${id}` };
}

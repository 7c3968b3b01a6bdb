/**
 * Results section (2.16.840.1.113883.10.20.22.2.3 and .3.1, IHE Coded Results 1.3.6.1.4.1.19376.1.5.3.1.3.28, LOINC
 * 30954-2) -> DiagnosticReport and Observation, after C-CDA on FHIR "Results" (CF-results): each Result Organizer is a
 * DiagnosticReport whose results are its Result Observations, each an Observation (observations.ts); a result sent
 * without an organizer is an Observation alone.
 *
 * The section is converted here entirely rather than adding DiagnosticReports to what @medplum/ccda makes of it: it
 * makes the organizer an Observation grouping the results (hasMember), which a DiagnosticReport beside it would
 * duplicate, and its result Observations leave out what a clinician reads a result by (interpretation, method,
 * reference range texts, values of types other than PQ, CD, ST and INT, the status of results still pending, the
 * time of an organizer sent as low/high). Correcting each of them would mean reading every observation again; read
 * once here, the ids stay the ones it gave (normalize.ts), so stored results are updated, not duplicated.
 *
 * | C-CDA Result Organizer    | DiagnosticReport                                                          |
 * | id, code, statusCode      | identifier, code, status (ConceptMap CF-ResultReportStatus)              |
 * | effectiveTime             | effectiveDateTime / effectivePeriod (else the span of its results)       |
 * | sdtc:category             | category (LAB, v2-0074, when not sent: the section is the laboratory's)  |
 * | author                    | performer                                                                 |
 * | component/observation     | result                                                                    |
 *
 * The category: C-CDA on FHIR derives it from the LOINC CLASSTYPE of the organizer's code, a terminology look-up this
 * conversion does not make (it is pure, offline); like @medplum/ccda, which filed every result as laboratory, results
 * are filed as LAB unless the organizer says otherwise (sdtc:category).
 */

import type { SectionConverter } from '../section-types.ts';

import { convertObservation, spanOf, statusFor, type ObservationOptions } from './observations.ts';
import {
  asNodes,
  authorReference,
  conceptOf,
  entryStatements,
  fixedConcept,
  identifiersOf,
  Narrative,
  one,
  resourceId,
  unknownConcept,
  type Concept,
  type FhirResource,
  type Node,
  type Reference,
  type SectionContext,
} from './statements.ts';

const V2_0074 = 'http://terminology.hl7.org/CodeSystem/v2-0074';
const LAB = fixedConcept(V2_0074, 'LAB', 'Laboratory');
const LABORATORY = fixedConcept('http://terminology.hl7.org/CodeSystem/observation-category', 'laboratory', 'Laboratory');

export const resultsSection: SectionConverter = {
  name: 'results',
  roots: ['2.16.840.1.113883.10.20.22.2.3', '2.16.840.1.113883.10.20.22.2.3.1', '1.3.6.1.4.1.19376.1.5.3.1.3.28'],
  loincCodes: ['30954-2'],
  convert(section, context) {
    const narrative = new Narrative(section.text);
    const resources: FhirResource[] = [];
    const entries: FhirResource[] = [];
    let converted = 0;
    for (const { kind, node: element, at: location } of entryStatements(section, context)) {
      const made: FhirResource[] = [];
      const reference = kind === 'organizer'
        ? report(element, context, narrative, made, location)
        : kind === 'observation' ? convertObservation(element, context, { category: [LABORATORY], narrative, resources: made, location }) : undefined;
      if (reference === undefined) continue;
      converted++;
      entries.push(made[0]!);
      for (const each of made) resources.push(each);
    }
    return { resources, entries, converted };
  },
};

/**
 * A Result Organizer as a DiagnosticReport, pushed first onto `made`, then its Observations and the people they
 * name. An organizer nested in it (a culture's isolates) adds its results to the report. Undefined when none of its
 * results could be converted.
 */
function report(organizer: Node, context: SectionContext, narrative: Narrative, made: FhirResource[], location: string): Reference | undefined {
  const id = resourceId('DiagnosticReport', organizer, context, context.compositionId, 'result-organizer');
  const resource: FhirResource = { resourceType: 'DiagnosticReport', id };
  made.push(resource);
  const sentCategory = conceptOf(one(organizer['sdtc:category']), context, narrative);
  const isLab = sentCategory === undefined || (sentCategory.coding ?? []).some((coding) => coding.code === 'LAB');
  const options: ObservationOptions = { category: isLab ? [LABORATORY] : [], narrative, resources: made, location };
  const results = resultObservations(organizer)
    .map((observation) => convertObservation(observation, context, options, id))
    .filter((reference) => reference !== undefined);
  if (results.length === 0) {
    made.length = 0;
    // Each result says why it was left out (a negated placeholder, "results not available"); the organizer is not
    // converted for that reason alone, said at it.
    context.issue('information', 'entries-not-converted', 'a result organizer none of whose results could be converted was not converted', location);
    return undefined;
  }
  const observations = made.filter((item) => item.resourceType === 'Observation');
  const valued = observations.some((observation) => Object.keys(observation).some((name) => name.startsWith('value')));
  const performers = asNodes(organizer.author)
    .map((author) => authorReference(author, context, made))
    .filter((reference) => reference !== undefined);
  Object.assign(resource, {
    identifier: identifiersOf(organizer, context),
    status: statusFor(organizer, valued, REPORT_STATUS, 'unknown'),
    category: [sentCategory ?? LAB] satisfies Concept[],
    code: conceptOf(organizer.code, context, narrative) ?? unknownConcept(),
    subject: { reference: context.patientReference },
    ...spanOf(organizer, observations, context),
    performer: performers.length > 0 ? performers : undefined,
    result: results,
  });
  return { reference: `DiagnosticReport/${id}` };
}

/** The observations of an organizer's components, those of organizers nested in it included. */
function resultObservations(organizer: Node): Node[] {
  return asNodes(organizer.component).flatMap((component) => [
    ...asNodes(component.observation),
    ...asNodes(component.organizer).flatMap(resultObservations),
  ]);
}

/**
 * C-CDA on FHIR ConceptMap CF-ResultReportStatus (ActStatus -> DiagnosticReportStatus); an active organizer whose
 * results carry values is preliminary rather than registered, as its observations are (observations.ts).
 */
const REPORT_STATUS: Readonly<Record<string, string>> = {
  completed: 'final',
  aborted: 'cancelled',
  cancelled: 'cancelled',
  held: 'registered',
  suspended: 'registered',
  new: 'registered',
  nullified: 'entered-in-error',
};

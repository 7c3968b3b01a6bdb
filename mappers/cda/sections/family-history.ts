/**
 * Family History section (2.16.840.1.113883.10.20.22.2.15, IHE 1.3.6.1.4.1.19376.1.5.3.1.3.14, LOINC 10157-6) ->
 * FamilyMemberHistory: one per Family History Organizer (one relative), its Family History Observations as
 * conditions. @medplum/ccda read the organizer as an Observation with no code and its observations as bare
 * Observations, which named neither the relative nor that the conditions were theirs, not the patient's.
 *
 * | C-CDA                                                             | FamilyMemberHistory                  |
 * | organizer/id, statusCode                                          | identifier, status                   |
 * | subject/relatedSubject/code (v3 RoleCode)                         | relationship                         |
 * | .../subject/name, administrativeGenderCode, birthTime             | name, sex, bornDate                  |
 * | .../subject/sdtc:deceasedInd, sdtc:deceasedTime, a death observation | deceasedBoolean, deceasedDate      |
 * | component/observation value                                       | condition.code                       |
 * | its Age Observation (else its effectiveTime)                      | condition.onsetAge (onsetPeriod)     |
 * | its Family History Death Observation (CAUS)                       | condition.outcome Dead, contributedToDeath |
 *
 * FHIR R4 has no way to say a relative did not have a condition: a negated observation ("no family history of X")
 * is left out, with an issue.
 */

import type { SectionConverter } from '../section-types.ts';

import { comments } from './observations.ts';
import {
  ageQuantity,
  asNodes,
  codeValue,
  conceptOf,
  effectiveOf,
  entryStatements,
  hasTemplate,
  identifiersOf,
  isNegated,
  Narrative,
  one,
  relatedObservations,
  relationships,
  resourceId,
  SNOMED_DEAD,
  statusOf,
  textOf,
  unknownConcept,
  unnormalizedDate,
  type FhirResource,
  type Node,
  type SectionContext,
} from './statements.ts';

const AGE_OBSERVATION = ['2.16.840.1.113883.10.20.22.4.31'];
const AGE_CODE = '445518008';
const DEATH_OBSERVATION = ['2.16.840.1.113883.10.20.22.4.47'];
const DEAD = '419099009';
const ADMINISTRATIVE_GENDER = 'http://hl7.org/fhir/administrative-gender';
/** v3 AdministrativeGender -> FHIR administrative-gender. */
const SEX: Readonly<Record<string, { code: string; display: string }>> = {
  M: { code: 'male', display: 'Male' },
  F: { code: 'female', display: 'Female' },
  UN: { code: 'other', display: 'Other' },
  UNK: { code: 'unknown', display: 'Unknown' },
};
/** Organizer statusCode -> FamilyMemberHistory.status (partial | completed | entered-in-error | health-unknown). */
const STATUS: Readonly<Record<string, string>> = { completed: 'completed', active: 'partial', nullified: 'entered-in-error' };

export const familyHistorySection: SectionConverter = {
  name: 'family history',
  roots: ['2.16.840.1.113883.10.20.22.2.15', '1.3.6.1.4.1.19376.1.5.3.1.3.14'],
  loincCodes: ['10157-6'],
  convert(section, context) {
    const narrative = new Narrative(section.text);
    const resources: FhirResource[] = [];
    const entries: FhirResource[] = [];
    let converted = 0;
    for (const { kind, node: element, at: location } of entryStatements(section, context)) {
      // An organizer per relative; an observation sent without one is a relative's condition all the same.
      const history = kind === 'organizer' ? familyMember(element, asNodes(element.component).flatMap((component) => asNodes(component.observation)), context, narrative, location)
        : kind === 'observation' ? familyMember(element, [element], context, narrative, location)
        : undefined;
      if (history === undefined) continue;
      converted++;
      resources.push(history);
      entries.push(history);
    }
    return { resources, entries, converted };
  },
};

function familyMember(holder: Node, observations: Node[], context: SectionContext, narrative: Narrative, location: string): FhirResource | undefined {
  const relatedSubject = one(one(holder.subject)?.relatedSubject);
  const person = one(relatedSubject?.subject);
  const conditions = observations
    .map((observation) => {
      if (!isNegated(observation)) return condition(observation, context, narrative);
      context.issue('information', 'value-not-converted', 'a family history observation stated as absent (negationInd) was left out: FamilyMemberHistory cannot say a relative did not have a condition', location);
      return undefined;
    })
    .filter((item) => item !== undefined);
  // Nothing left to say: no relative named and no condition of theirs.
  if (conditions.length === 0 && relatedSubject === undefined) return undefined;

  const died = observations.some((observation) => deathObservation(observation) !== undefined);
  const deceasedInd = String(one(person?.['sdtc:deceasedInd'])?.['@_value'] ?? '').trim().toLowerCase();
  const deceasedDate = unnormalizedDate(person?.['sdtc:deceasedTime']);
  const bornDate = unnormalizedDate(person?.birthTime);
  const gender = one(person?.administrativeGenderCode)?.['@_code'];
  const sex = typeof gender === 'string' ? SEX[gender.trim().toUpperCase()] : undefined;
  const name = personName(person);
  const status = STATUS[statusOf(holder) ?? 'completed'] ?? 'completed';
  return {
    resourceType: 'FamilyMemberHistory',
    id: resourceId('FamilyMemberHistory', holder, context, context.compositionId, 'family-member'),
    identifier: identifiersOf(holder, context),
    status,
    patient: { reference: context.patientReference },
    name,
    relationship: conceptOf(relatedSubject?.code, context, narrative) ?? unknownConcept(),
    sex: sex === undefined ? undefined : { coding: [{ system: ADMINISTRATIVE_GENDER, ...sex }] },
    bornDate,
    ...(deceasedDate !== undefined ? { deceasedDate } : deceasedInd === 'true' || died ? { deceasedBoolean: true } : deceasedInd === 'false' ? { deceasedBoolean: false } : {}),
    condition: conditions.length > 0 ? conditions : undefined,
  };
}

function condition(observation: Node, context: SectionContext, narrative: Narrative): Record<string, unknown> {
  const death = deathObservation(observation);
  const age = relationships(observation, 'SUBJ')
    .flatMap((relationship) => asNodes(relationship.observation))
    .find((related) => hasTemplate(related, AGE_OBSERVATION) || codeValue(related) === AGE_CODE);
  const onsetAge = ageQuantity(one(age?.value));
  const onsetPeriod = onsetAge === undefined ? periodOf(effectiveOf(observation.effectiveTime, context)) : undefined;
  const notes = comments(observation, narrative);
  return {
    // FamilyMemberHistory.condition.code is required: a condition sent as a nullFlavor is said to be unknown.
    code: conceptOf(observation.value, context, narrative) ?? unknownConcept(narrative.textOf(observation.text)),
    ...(death !== undefined ? { outcome: conceptOf(death.value, context, narrative) ?? SNOMED_DEAD, contributedToDeath: true } : {}),
    ...(onsetAge !== undefined ? { onsetAge } : onsetPeriod !== undefined ? { onsetPeriod } : {}),
    ...(notes.length > 0 ? { note: notes.map((text) => ({ text })) } : {}),
  };
}

/** The Family History Death Observation a condition caused (entryRelationship CAUS), when it has one. */
function deathObservation(observation: Node): Node | undefined {
  return relatedObservations(observation, 'CAUS').find((related) => hasTemplate(related, DEATH_OBSERVATION) || one(related.value)?.['@_code'] === DEAD);
}

/** The relative's onset time as a Period (FamilyMemberHistory's onset has no dateTime). */
function periodOf(effective: { effectiveDateTime?: string; effectivePeriod?: { start?: string; end?: string } }): { start?: string; end?: string } | undefined {
  if (effective.effectiveDateTime !== undefined) return { start: effective.effectiveDateTime };
  return effective.effectivePeriod;
}

/** The relative's name as one string (FamilyMemberHistory.name). */
function personName(person: Node | undefined): string | undefined {
  const name = asNodes(person?.name)[0] ?? (typeof person?.name === 'string' ? { '#text': person.name } : undefined);
  if (name === undefined) return undefined;
  const parts = ['prefix', 'given', 'family', 'suffix'].flatMap((part) => {
    const value = name[part];
    return (Array.isArray(value) ? value : value === undefined ? [] : [value]).map((item) => textOf(item)).filter((item): item is string => item !== undefined);
  });
  const text = parts.length > 0 ? parts.join(' ') : textOf(name);
  return text === undefined || text === '' ? undefined : text;
}

/**
 * Sections of problems and diagnoses -> Condition, after C-CDA on FHIR "Problem Concern Act -> Condition" (CF-problems),
 * which other sections' problems follow with another category (ConceptMap CF-ProblemCategory):
 *
 * | section                                   | templateId (2.16.840.1.113883.10.20.22.2.) | Condition.category  |
 * | Problems                                  | 5, 5.1                                    | problem-list-item   |
 * | Health Concerns                           | 58                                        | health-concern      |
 * | Admission Diagnosis                       | 43                                        | encounter-diagnosis |
 * | (Hospital) Discharge Diagnosis            | 24                                        | encounter-diagnosis |
 * | Preoperative / Postoperative Diagnosis    | 34 / 35                                   | encounter-diagnosis |
 * | Postprocedure Diagnosis                   | 36                                        | encounter-diagnosis |
 *
 * Every problem observation of an act is a Condition of its own (an act may hold several); status comes from its
 * Problem Status observation, else from the concern act's statusCode; negationInd makes it refuted. Diagnoses made in
 * an encounter point at the encounter the document is about (componentOf/encompassingEncounter).
 *
 * @medplum/ccda converted the problems and health concerns sections before: it kept only the first observation of
 * an act, filed a negated problem ("no known problems") as a confirmed one, read no Problem Status, age at onset or
 * comment, filed health concerns as problem-list items and found none in R2.1 Health Concern Acts (their problems
 * are REFR, not SUBJ). The first problem of an act keeps the id it gave (the act's), so stored Conditions stay the
 * same resources.
 */

import { ENTRY_REFERENCE } from '../normalize.ts';
import type { SectionConverter } from '../section-types.ts';

import { comments, convertObservation } from './observations.ts';
import {
  absentReason,
  ageQuantity,
  asNodes,
  authorReference,
  codeValue,
  conceptOf,
  documentEncounter,
  earliestAuthorTime,
  fixedConcept,
  hasTemplate,
  identifiersOf,
  isNegated,
  latestAuthor,
  Narrative,
  narrativeReference,
  one,
  relatedActs,
  relatedObservations,
  ownIdKey,
  relationships,
  repeatsEarlierStatement,
  resourceId,
  entryStatements,
  statusOf,
  unknownConcept,
  DATA_ABSENT_REASON,
  type Concept,
  type FhirResource,
  type Node,
  type Reference,
  type SectionContext,
} from './statements.ts';

const C = '2.16.840.1.113883.10.20.22.2.';
const IHE = '1.3.6.1.4.1.19376.1.5.3.1.3.';
const CONDITION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/condition-category';
const CONDITION_CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const CONDITION_VER_STATUS = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';
const ASSERTED_DATE = 'http://hl7.org/fhir/StructureDefinition/condition-assertedDate';

type Category = 'problem-list-item' | 'encounter-diagnosis' | 'health-concern';

const CATEGORY_DISPLAY: Readonly<Record<Category, string>> = {
  'problem-list-item': 'Problem List Item',
  'encounter-diagnosis': 'Encounter Diagnosis',
  'health-concern': 'Health Concern',
};

/** Concern acts, whose statusCode says whether the concern is still followed (Problem, Health and Risk Concern). */
const CONCERN_ACTS = ['2.16.840.1.113883.10.20.22.4.3', '2.16.840.1.113883.10.20.22.4.132', '2.16.840.1.113883.10.20.22.4.136'];
const RISK_CONCERN_ACT = '2.16.840.1.113883.10.20.22.4.136';
/** Problem Status (R1.1 and R2.1) and its LOINC code. */
const PROBLEM_STATUS = ['2.16.840.1.113883.10.20.22.4.6'];
const PROBLEM_STATUS_CODE = '33999-4';
/** Age Observation and its SNOMED CT code ("Age at onset"). */
const AGE_OBSERVATION = ['2.16.840.1.113883.10.20.22.4.31'];
const AGE_CODE = '445518008';
/** Date of Diagnosis Act and its LOINC code. */
const DATE_OF_DIAGNOSIS = ['2.16.840.1.113883.10.20.22.4.502'];
const DATE_OF_DIAGNOSIS_CODE = '77975-1';
const PROBLEM_OBSERVATION = ['2.16.840.1.113883.10.20.22.4.4'];
/** Health Status Observation: the patient's overall health, an Observation rather than a concern. */
const HEALTH_STATUS = ['2.16.840.1.113883.10.20.22.4.5'];
const HEALTH_STATUS_CODE = '11323-3';
/** Priority Preference and Entry Reference: what a concern relates that is no problem of its own. */
const NOT_PROBLEMS = ['2.16.840.1.113883.10.20.22.4.143', ENTRY_REFERENCE, ...PROBLEM_STATUS, ...HEALTH_STATUS];

/** C-CDA on FHIR ConceptMap CF-ProblemStatus: Problem Status observation value (SNOMED CT) -> clinicalStatus. */
const PROBLEM_STATUS_VALUES: Readonly<Record<string, string>> = {
  '55561003': 'active',
  '73425007': 'inactive',
  '413322009': 'resolved',
  '246455001': 'recurrence',
  '263855007': 'relapse',
  '277022003': 'remission',
};

const CLINICAL_DISPLAY: Readonly<Record<string, string>> = {
  active: 'Active',
  recurrence: 'Recurrence',
  relapse: 'Relapse',
  inactive: 'Inactive',
  remission: 'Remission',
  resolved: 'Resolved',
};

/** C-CDA on FHIR ConceptMap CF-ConditionClinicalStatus: concern act statusCode -> clinicalStatus. */
const CONCERN_STATUS: Readonly<Record<string, string>> = { active: 'active', completed: 'inactive', aborted: 'inactive', suspended: 'inactive' };

function conditionSection(name: string, roots: string[], loincCodes: string[], category: Category, accepts?: (kind: string, node: Node) => boolean): SectionConverter {
  return { name, roots, loincCodes, convert: (section, context) => convertSection(section, context, category, accepts) };
}

/** The diagnosis acts and problem observations an Assessment section may carry. */
const DIAGNOSIS_ACTS = ['2.16.840.1.113883.10.20.22.4.3', '2.16.840.1.113883.10.20.22.4.33', '2.16.840.1.113883.10.20.22.4.80', '2.16.840.1.113883.10.20.22.4.34', '2.16.840.1.113883.10.20.22.4.65'];

export const problemsSection = conditionSection('problems', [`${C}5`, `${C}5.1`, `${IHE}6`], ['11450-4'], 'problem-list-item');
export const healthConcernsSection = conditionSection('health concerns', [`${C}58`], ['75310-3'], 'health-concern');
export const admissionDiagnosesSection = conditionSection('admission diagnoses', [`${C}43`, `${IHE}3`], ['46241-6', '42347-5'], 'encounter-diagnosis');
export const dischargeDiagnosesSection = conditionSection('discharge diagnoses', [`${C}24`, `${IHE}7`], ['11535-2', '78375-3'], 'encounter-diagnosis');
export const preoperativeDiagnosesSection = conditionSection('preoperative diagnoses', [`${C}34`], ['10219-4'], 'encounter-diagnosis');
export const postoperativeDiagnosesSection = conditionSection('postoperative diagnoses', [`${C}35`], ['10218-6'], 'encounter-diagnosis');
export const postprocedureDiagnosesSection = conditionSection('postprocedure diagnoses', [`${C}36`], ['59769-0'], 'encounter-diagnosis');
/**
 * Assessment section (2.8 / 51848-0): narrative in C-CDA, but some senders put the diagnoses of the visit in it
 * (Hospital Discharge Diagnosis acts, Problem Concern acts): those are encounter diagnoses. Any other statement (an
 * assessment scale, a result) is not a diagnosis and is reported.
 */
export const assessmentSection = conditionSection('assessment', [`${C}8`], ['51848-0'], 'encounter-diagnosis', (kind, node) =>
  (kind === 'act' && hasTemplate(node, DIAGNOSIS_ACTS)) || (kind === 'observation' && hasTemplate(node, PROBLEM_OBSERVATION)));

interface Reading {
  context: SectionContext;
  narrative: Narrative;
  category: Category;
  /** The document's encounter, for encounter diagnoses. */
  encounter: Reference | undefined;
  resources: FhirResource[];
  location: string;
  /** The own ids (root and extension) of the problem observations of this section converted so far. */
  seen: Set<string>;
}

function convertSection(section: Node, context: SectionContext, category: Category, accepts?: (kind: string, node: Node) => boolean): { resources: FhirResource[]; entries: FhirResource[]; converted: number } {
  const reading: Reading = {
    context,
    narrative: new Narrative(section.text),
    category,
    encounter: category === 'encounter-diagnosis' ? documentEncounter(context) : undefined,
    resources: [],
    location: context.location,
    seen: new Set(),
  };
  const entries: FhirResource[] = [];
  let converted = 0;
  for (const { kind, node: element, at } of entryStatements(section, context)) {
    reading.location = at;
    if (accepts !== undefined && !accepts(kind, element)) {
      context.issue('warning', 'entries-not-converted', `a ${kind} that is neither a diagnosis act nor a problem observation was not converted`, at);
      continue;
    }
    const made = kind === 'act' ? fromAct(element, reading) : kind === 'observation' ? fromObservation(element, reading) : [];
    if (made.length > 0) converted++;
    for (const each of made) entries.push(each);
  }
  return { resources: reading.resources, entries, converted };
}

/**
 * A concern or diagnosis act: a Condition per problem observation it holds (SUBJ). R2.1 Health and Risk Concern
 * Acts relate their problems as REFR, beside the other entries the concern is about (an allergy, a result, a
 * medication), which are converted in their own sections: of those, only Problem Observations are the concern's,
 * and only those not given earlier in the document (a REFR repeating a Problems section entry, id and all, refers to
 * that entry: it is its Condition already).
 */
function fromAct(act: Node, reading: Reading): FhirResource[] {
  const candidates = [
    ...relatedObservations(act, 'SUBJ'),
    ...(reading.category === 'health-concern' ? relatedObservations(act, 'REFR').filter((observation) => hasTemplate(observation, PROBLEM_OBSERVATION)) : []),
  ];
  const observations: Node[] = [];
  for (const observation of candidates) {
    if (hasTemplate(observation, NOT_PROBLEMS) || refersElsewhere(observation, reading)) continue;
    observations.push(observation);
    const key = ownIdKey(observation, reading.context);
    if (key !== undefined) reading.seen.add(key.join('\u0000'));
  }
  // Why an act makes no Condition, said at the act: a reader of the issues sees it once, not as a section's count.
  if (observations.length === 0) {
    const why = isNegated(act)
      ? 'a concern stated as absent (negationInd) was not converted: there is no condition to record'
      : candidates.length === 0
        ? 'an act with no problem observation of its own (its narrative alone, or references to entries of other sections) was not converted: what it refers to is converted where it is given'
        : 'an act whose problem observations are entries given elsewhere in the document was not converted again';
    reading.context.issue('information', 'entries-not-converted', why, reading.location);
  }
  return observations.map((observation, index) => conditionOf(observation, act, index === 0, reading));
}

/**
 * Whether a problem observation a concern relates (REFR) is one given earlier in another section, id and all: the
 * concern refers to it. One whose id repeats a problem of this section is a sender reusing an id for another
 * problem (C-CDA's own Care Plan example does), and is converted.
 */
function refersElsewhere(observation: Node, reading: Reading): boolean {
  if (reading.category !== 'health-concern') return false;
  const key = ownIdKey(observation, reading.context);
  return key !== undefined && repeatsEarlierStatement(observation, reading.context) && !reading.seen.has(key.join('\u0000'));
}

/** An observation sent as an entry of its own: a problem observation without its act, or a health status. */
function fromObservation(observation: Node, reading: Reading): FhirResource[] {
  if (hasTemplate(observation, HEALTH_STATUS) || codeValue(observation) === HEALTH_STATUS_CODE) {
    const resources: FhirResource[] = [];
    const reference = convertObservation(observation, reading.context, { category: [], narrative: reading.narrative, resources, location: reading.location });
    for (const each of resources) reading.resources.push(each);
    return reference === undefined ? [] : resources.slice(0, 1);
  }
  return [conditionOf(observation, undefined, false, reading)];
}

/**
 * The Condition of one problem observation. The first of a concern act takes the act's id (as @medplum/ccda gave
 * it) and identifiers; the others their own.
 */
function conditionOf(observation: Node, act: Node | undefined, first: boolean, reading: Reading): FhirResource {
  const { context, narrative } = reading;
  const negated = isNegated(observation) || (act !== undefined && isNegated(act));
  // A problem whose value is a nullFlavor (masked, unknown) is still a problem with a status and a time: its code
  // says why it is not known.
  const code = conceptOf(observation.value, context, narrative) ?? textConcept(observation, narrative) ?? unknownConcept(undefined, absentReason(one(observation.value)));
  const takesActId = first && act !== undefined && context.idOf(act) !== undefined;
  const id = takesActId ? context.idOf(act!)! : resourceId('Condition', observation, context, context.compositionId, 'condition');
  const time = one(observation.effectiveTime);
  const onset = context.dateTime(one(time?.low)) ?? (typeof time?.['@_value'] === 'string' ? context.dateTime(time) : undefined);
  const high = one(time?.high);
  const abatement = context.dateTime(high);
  // C-CDA marks a resolved problem whose end is not known with high nullFlavor="UNK" (C-CDA on FHIR).
  const abatedUnknown = abatement === undefined && high?.['@_nullFlavor'] === 'UNK';
  const author = latestAuthor(observation, context) ?? (act === undefined ? undefined : latestAuthor(act, context));
  const notes = [...comments(observation, narrative), ...(act === undefined ? [] : comments(act, narrative))];
  // What supports the problem: its own supporting observations, and a concern's (Health Concern Act SPRT).
  const evidence = [...relatedObservations(observation, 'SPRT'), ...(act === undefined ? [] : relatedObservations(act, 'SPRT'))]
    .map((support) => conceptOf(support.value, context, narrative))
    .filter((concept) => concept !== undefined)
    .map((concept) => ({ code: [concept] }));
  const assertedDate = relatedActs(observation)
    .filter((related) => hasTemplate(related, DATE_OF_DIAGNOSIS) || codeValue(related) === DATE_OF_DIAGNOSIS_CODE)
    .map((related) => context.dateTime(one(related.effectiveTime)))
    .find((date) => date !== undefined);
  const extension = [
    ...(narrativeReference(observation) ?? []),
    ...(assertedDate === undefined ? [] : [{ url: ASSERTED_DATE, valueDateTime: assertedDate }]),
  ];
  const category: Concept[] = [fixedConcept(CONDITION_CATEGORY, reading.category, CATEGORY_DISPLAY[reading.category])];
  // A risk is not a problem the patient has: the Risk Concern Act's code ("at risk") says what kind of concern it is.
  if (act !== undefined && hasTemplate(act, [RISK_CONCERN_ACT])) {
    const risk = conceptOf(act.code, context, narrative);
    if (risk !== undefined) category.push(risk);
  }
  const identifiers = [...((takesActId ? identifiersOf(act!, context) : undefined) ?? []), ...(identifiersOf(observation, context) ?? [])];
  const clinical = clinicalStatus(observation, act, abatement !== undefined || abatedUnknown, reading);
  const recordedDate = earliestAuthorTime(observation, context) ?? (act === undefined ? undefined : earliestAuthorTime(act, context) ?? context.dateTime(one(act.effectiveTime)));
  const people: FhirResource[] = [];

  const condition: FhirResource = {
    resourceType: 'Condition',
    id,
    extension: extension.length > 0 ? extension : undefined,
    identifier: identifiers.length > 0 ? identifiers : undefined,
    clinicalStatus: clinical === undefined ? undefined : fixedConcept(CONDITION_CLINICAL, clinical, CLINICAL_DISPLAY[clinical] ?? clinical),
    verificationStatus: negated
      ? fixedConcept(CONDITION_VER_STATUS, 'refuted', 'Refuted')
      // A health concern is a concern, not a diagnosis: it is not said to be confirmed.
      : reading.category === 'health-concern' ? undefined : fixedConcept(CONDITION_VER_STATUS, 'confirmed', 'Confirmed'),
    category,
    code,
    subject: { reference: context.patientReference },
    encounter: reading.encounter,
    ...(onset !== undefined ? { onsetDateTime: onset } : onsetAge(observation)),
    ...(abatement !== undefined ? { abatementDateTime: abatement } : {}),
    ...(abatedUnknown ? { _abatementDateTime: { extension: [{ url: DATA_ABSENT_REASON, valueCode: 'unknown' }] } } : {}),
    recordedDate,
    recorder: authorReference(author, context, people),
    evidence: evidence.length > 0 ? evidence : undefined,
    note: notes.length > 0 ? notes.map((text) => ({ text })) : undefined,
  };
  // The Condition comes before the people it names.
  reading.resources.push(condition, ...people);
  return condition;
}

/** The observation's own text (or the narrative it points at) as the concept, for a problem sent without a value. */
function textConcept(observation: Node, narrative: Narrative): Concept | undefined {
  const text = narrative.textOf(observation.text);
  return text === undefined ? undefined : { text };
}

/**
 * clinicalStatus: the Problem Status observation's value (CF-ProblemStatus), else the concern act's statusCode
 * (CF-ConditionClinicalStatus; diagnosis acts say nothing of the problem's course). A problem with an end (or one
 * marked ended at an unknown time) is inactive whatever its status says (C-CDA on FHIR; FHIR con-4). A problem-list
 * item says nothing at all only when sent without an act: it is on the list, so active, as @medplum/ccda had it.
 */
function clinicalStatus(observation: Node, act: Node | undefined, abated: boolean, reading: Reading): string | undefined {
  const statusObservation = relatedObservations(observation, 'REFR').find((related) => hasTemplate(related, PROBLEM_STATUS) || codeValue(related) === PROBLEM_STATUS_CODE);
  const statusValue = one(statusObservation?.value)?.['@_code'];
  let status = typeof statusValue === 'string' ? PROBLEM_STATUS_VALUES[statusValue] : undefined;
  if (status === undefined && act !== undefined && hasTemplate(act, CONCERN_ACTS)) status = CONCERN_STATUS[statusOf(act) ?? ''];
  if (status === undefined && reading.category === 'problem-list-item') status = 'active';
  if (abated && (status === undefined || status === 'active' || status === 'recurrence' || status === 'relapse')) status = 'inactive';
  return status;
}

/** onsetAge from the Age Observation a problem carries (entryRelationship SUBJ, inversionInd), when it reads as an age. */
function onsetAge(observation: Node): { onsetAge?: Record<string, unknown> } {
  const age = relationships(observation, 'SUBJ')
    .flatMap((relationship) => asNodes(relationship.observation))
    .find((related) => hasTemplate(related, AGE_OBSERVATION) || codeValue(related) === AGE_CODE);
  const quantity = ageQuantity(one(age?.value));
  return quantity === undefined ? {} : { onsetAge: quantity };
}

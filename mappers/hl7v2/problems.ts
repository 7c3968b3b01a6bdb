/**
 * PPR (patient problem: PC1 add, PC2 update, PC3 delete) -> one Condition per PRB, on the patient's problem list.
 *
 * The IG publishes no PRB segment map; the fields map by their HL7 definitions onto the elements the IG's
 * DG1[Condition] map uses for the same meaning: PRB-3 problem id -> code, PRB-4 problem instance id -> identifier
 * (and the id, so PC1, PC2 and PC3 about one problem address one Condition), PRB-7 established -> recordedDate,
 * PRB-9 actual resolution -> abatementDateTime, PRB-13 confirmation status -> verificationStatus, PRB-14 life cycle
 * status -> clinicalStatus, PRB-16 onset -> onsetDateTime (PRB-17 onset text -> onsetString), the NTE after the PRB
 * -> note. A PC3, or PRB-1 action code DE, deletes the problem: verificationStatus entered-in-error.
 *
 * A problem changes piecemeal over its life (PC2 sends what changed), so Condition is an update draft (drafts.ts).
 * PRB-13 and PRB-14 are user-defined tables: their codes and words are read by meaning (A, ACTIVE -> active), and
 * one the mapper cannot read is an information issue with the value kept there, and the element left as stored.
 */

import { type Hl7Repetition, type Hl7Segment, fieldOf } from '../../formats/hl7v2/index.ts';
import { buildEach, reportIssue } from '../issues.ts';
import type { ResourceDraft } from '../types.ts';

import { buildEncounter } from './adt-encounter.ts';
import { buildPatient } from './adt-patient.ts';
import { atPosition, problemCode, problemId, visitReference } from './clinical-common.ts';
import { type CodeableConcept, type Reference, codeTable, comp, toFhirDateTime } from './datatypes.ts';
import { element, updateDraft } from './drafts.ts';
import { type Annotation, noteOf, singlePatientReference } from './message-common.ts';
import { buildObservations } from './observations.ts';
import type { MappingContext, MappingRow } from './context.ts';

const CONDITION_CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const CONDITION_VERIFICATION = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';

const PROBLEM_LIST_ITEM: CodeableConcept = {
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'problem-list-item', display: 'Problem List Item' }],
};

const concept = (system: string, code: string, display: string): CodeableConcept => ({ coding: [{ system, code, display }] });

const CLINICAL = {
  active: concept(CONDITION_CLINICAL, 'active', 'Active'),
  recurrence: concept(CONDITION_CLINICAL, 'recurrence', 'Recurrence'),
  relapse: concept(CONDITION_CLINICAL, 'relapse', 'Relapse'),
  inactive: concept(CONDITION_CLINICAL, 'inactive', 'Inactive'),
  remission: concept(CONDITION_CLINICAL, 'remission', 'Remission'),
  resolved: concept(CONDITION_CLINICAL, 'resolved', 'Resolved'),
};

/** PRB-14 codes and words senders use -> condition-clinical (upper-cased before the lookup). */
const CLINICAL_STATUS = codeTable<CodeableConcept>({
  A: CLINICAL.active,
  ACTIVE: CLINICAL.active,
  RECURRENCE: CLINICAL.recurrence,
  RELAPSE: CLINICAL.relapse,
  I: CLINICAL.inactive,
  INACTIVE: CLINICAL.inactive,
  REMISSION: CLINICAL.remission,
  R: CLINICAL.resolved,
  RESOLVED: CLINICAL.resolved,
});

const ENTERED_IN_ERROR = concept(CONDITION_VERIFICATION, 'entered-in-error', 'Entered in Error');

/** PRB-13 codes and words senders use -> condition-ver-status (upper-cased before the lookup). */
const VERIFICATION_STATUS = codeTable<CodeableConcept>({
  C: concept(CONDITION_VERIFICATION, 'confirmed', 'Confirmed'),
  CONFIRMED: concept(CONDITION_VERIFICATION, 'confirmed', 'Confirmed'),
  P: concept(CONDITION_VERIFICATION, 'provisional', 'Provisional'),
  PROVISIONAL: concept(CONDITION_VERIFICATION, 'provisional', 'Provisional'),
  D: concept(CONDITION_VERIFICATION, 'differential', 'Differential'),
  DIFFERENTIAL: concept(CONDITION_VERIFICATION, 'differential', 'Differential'),
  U: concept(CONDITION_VERIFICATION, 'unconfirmed', 'Unconfirmed'),
  UNCONFIRMED: concept(CONDITION_VERIFICATION, 'unconfirmed', 'Unconfirmed'),
  REFUTED: concept(CONDITION_VERIFICATION, 'refuted', 'Refuted'),
  E: ENTERED_IN_ERROR,
  'ENTERED-IN-ERROR': ENTERED_IN_ERROR,
});

// ---------------------------------------------------------------------------------------------------------------
// Builder

interface Problem {
  prb: Hl7Segment;
  notes: Annotation[];
}

export function buildProblems(context: MappingContext): ResourceDraft[] {
  const problems: Problem[] = [];
  for (const segment of context.message.segments) {
    if (segment.name === 'PRB') problems.push({ prb: segment, notes: [] });
    else if (segment.name === 'NTE' && problems.length > 0 && lastNonNote(context, segment) === problems[problems.length - 1]!.prb) {
      const note = noteOf(segment);
      if (note !== undefined) problems[problems.length - 1]!.notes.push(note);
    }
  }
  if (problems.length === 0) return [];
  const subject = singlePatientReference(context);
  const encounter = visitReference(context);
  return buildEach(
    problems,
    (problem) => buildProblem(problem, subject, encounter, context),
    (problem, failure) => atPosition(failure.location, problem.prb, context.message),
  );
}

/** The segment before the NTE run that `nte` is part of: NTE after a PRB are that problem's notes. */
function lastNonNote(context: MappingContext, nte: Hl7Segment): Hl7Segment | undefined {
  const { segments } = context.message;
  for (let index = segments.indexOf(nte) - 1; index >= 0; index--) if (segments[index]!.name !== 'NTE') return segments[index];
  return undefined;
}

function buildProblem(problem: Problem, subject: Reference, encounter: Reference | undefined, context: MappingContext): ResourceDraft {
  const { prb } = problem;
  const { timeZone } = context.options;
  const code = problemCode(prb, context);
  const { id, identifier } = problemId(prb, code, context);
  const time = (field: number) => element(fieldOf(prb, field), (rep) => toFhirDateTime(comp(rep, 1), `PRB-${field}`, timeZone));

  const deleted = context.triggerEvent === 'PC3' || comp(fieldOf(prb, 1)[0], 1).toUpperCase() === 'DE';
  const abatement = time(9);
  // A deleted problem's life cycle status (senders write `Deleted` there) is not read: it has none (con-5 below).
  let clinicalStatus = deleted ? null : element(fieldOf(prb, 14), (rep) => statusConcept(rep, CLINICAL_STATUS, 'PRB-14', 'problem life cycle status'));
  // FHIR R4 con-4: an abated condition is inactive, resolved or in remission. PRB-9 is when the problem was resolved.
  if (!deleted && typeof abatement === 'string' && clinicalStatus === undefined) clinicalStatus = CLINICAL.resolved;
  if (typeof abatement === 'string' && clinicalStatus !== null && clinicalStatus !== undefined && ![CLINICAL.inactive, CLINICAL.remission, CLINICAL.resolved].includes(clinicalStatus)) {
    reportIssue({ severity: 'warning', code: 'ANCHORLINE_ISSUE_INVALID_VALUE', location: 'PRB-9', detail: 'PRB-9: a resolution date on a problem whose life cycle status (PRB-14) is not resolved, inactive or in remission; the date was left out', value: comp(fieldOf(prb, 9)[0], 1) });
  }
  const abated = typeof abatement === 'string' && (clinicalStatus === CLINICAL.inactive || clinicalStatus === CLINICAL.remission || clinicalStatus === CLINICAL.resolved);
  const onset = time(16);
  const onsetText = element(fieldOf(prb, 17), (rep) => comp(rep, 1) || undefined);

  return updateDraft('Condition', id, {
    identifier: identifier === undefined ? undefined : [identifier],
    // FHIR R4 con-5: a condition entered in error has no clinical status, and then (con-4) no abatement either.
    clinicalStatus,
    verificationStatus: deleted ? ENTERED_IN_ERROR : element(fieldOf(prb, 13), (rep) => statusConcept(rep, VERIFICATION_STATUS, 'PRB-13', 'problem confirmation status')),
    category: [PROBLEM_LIST_ITEM],
    code,
    subject,
    encounter,
    ...(typeof onset === 'string'
      ? { onsetDateTime: onset, onsetString: null }
      : typeof onsetText === 'string'
        ? { onsetString: onsetText, onsetDateTime: null }
        : onset === null || onsetText === null
          ? { onsetDateTime: null, onsetString: null }
          : {}),
    abatementDateTime: abated ? abatement : deleted || abatement === null ? null : undefined,
    recordedDate: time(7),
    note: problem.notes.length > 0 ? problem.notes : undefined,
  });
}

/**
 * A status from a user-defined table, read by its code or, failing that, its text (CE-1, then CE-2); one the table
 * above does not know is an information issue and leaves the element as stored.
 */
function statusConcept(repetition: Hl7Repetition, table: ReadonlyMap<string, CodeableConcept>, location: string, name: string): CodeableConcept | undefined {
  const code = comp(repetition, 1);
  const text = comp(repetition, 2);
  const known = table.get(code.toUpperCase()) ?? table.get(text.toUpperCase());
  if (known !== undefined) return known;
  if (code === '' && text === '') return undefined;
  reportIssue({ severity: 'information', code: 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', location, detail: `${location}: ${name} is not one the mapper can read; left as stored`, value: code || text });
  return undefined;
}

/** The problem rows of the mapping table (mappers/hl7v2/registry.ts). */
export const PROBLEM_MAPPINGS: readonly MappingRow[] = (['PC1', 'PC2', 'PC3'] as const).map(
  (event): MappingRow => [`PPR^${event}`, [buildPatient, buildEncounter, buildProblems, buildObservations]],
);

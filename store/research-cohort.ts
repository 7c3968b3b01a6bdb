/**
 * A project's cohort, as its Group describes it, over the clinical store: the patients a release may read, before
 * consent decides (workers/research-refresh.ts). Read only.
 *
 * A Group names its patients either explicitly (`member`, an entity `Patient/x`; inactive members and members whose
 * period has ended are left out) or by criteria (`characteristic`, all of which must hold; `exclude: true` negates
 * one). Criteria are coded in COHORT_CRITERION:
 *   gender        valueCodeableConcept: an administrative-gender code (male, female, other, unknown)
 *   birth-date    period: the patient's birth date falls in it (start and end inclusive, either may be absent)
 *   condition     valueCodeableConcept: the patient has a current Condition with one of these codes
 *   observation   valueCodeableConcept: the patient has a current Observation with one of these codes
 * A Group with both starts from its members and keeps those that meet the criteria.
 */
import { AnchorlineError } from '../errors/index.ts';
import { blindIndexOf } from './blind-index.ts';
import type { Queryable } from './db.ts';
import { readCurrent } from './resources.ts';

export const COHORT_CRITERION = 'urn:anchorline:research-criterion';
export const COHORT_CRITERIA = ['gender', 'birth-date', 'condition', 'observation'] as const;

type Json = Record<string, unknown>;

const array = (value: unknown): Json[] => (Array.isArray(value) ? (value.filter((v) => v && typeof v === 'object') as Json[]) : []);

interface Coding {
  system?: string;
  code: string;
}

function codings(concept: unknown): Coding[] {
  return array((concept as Json | undefined)?.coding).flatMap((c) => (typeof c.code === 'string' && c.code !== '' ? [{ ...(typeof c.system === 'string' ? { system: c.system } : {}), code: c.code }] : []));
}

/** The problems of a Group as a cohort definition (empty: usable), each with the element it is about. */
export function cohortProblems(group: Json): Array<{ location: string; detail: string }> {
  const problems: Array<{ location: string; detail: string }> = [];
  if (group.type !== 'person') problems.push({ location: 'Group.type', detail: 'a cohort is a Group of type person' });
  const members = array(group.member);
  const characteristics = array(group.characteristic);
  if (members.length === 0 && characteristics.length === 0) problems.push({ location: 'Group', detail: 'a cohort names its members or gives characteristics' });
  members.forEach((member, i) => {
    const reference = (member.entity as Json | undefined)?.reference;
    if (typeof reference !== 'string' || !/^Patient\/[A-Za-z0-9\-.]{1,64}$/.test(reference)) problems.push({ location: `Group.member[${i}].entity`, detail: 'a member is a reference Patient/<id>' });
  });
  characteristics.forEach((characteristic, i) => {
    const code = codings(characteristic.code).find((c) => c.system === COHORT_CRITERION)?.code;
    if (!code || !(COHORT_CRITERIA as readonly string[]).includes(code)) {
      problems.push({ location: `Group.characteristic[${i}].code`, detail: `a criterion is coded in ${COHORT_CRITERION}: ${COHORT_CRITERIA.join(', ')}` });
    } else if (code === 'birth-date') {
      const period = characteristic.period as Json | undefined;
      if (!period || (typeof period.start !== 'string' && typeof period.end !== 'string')) problems.push({ location: `Group.characteristic[${i}].period`, detail: 'birth-date needs a period with a start, an end or both' });
    } else if (codings(characteristic.valueCodeableConcept).length === 0) {
      problems.push({ location: `Group.characteristic[${i}].valueCodeableConcept`, detail: `${code} needs a valueCodeableConcept with at least one code` });
    }
  });
  return problems;
}

/** The patients (`Patient/x`) a Group describes, sorted; throws for a Group that is not a usable cohort. */
export async function cohortPatients(db: Queryable, group: Json, now: Date = new Date()): Promise<string[]> {
  const problems = cohortProblems(group);
  if (problems.length > 0) throw new AnchorlineError('ANCHORLINE_ERR_RESEARCH_PROJECT_INVALID', `${problems[0]!.location}: ${problems[0]!.detail}`);
  let patients: Set<string>;
  const members = array(group.member);
  if (members.length > 0) {
    patients = new Set(
      members
        .filter((m) => m.inactive !== true && !(typeof (m.period as Json | undefined)?.end === 'string' && Date.parse((m.period as Json).end as string) < now.getTime()))
        .map((m) => (m.entity as Json).reference as string),
    );
  } else {
    const all = await db.query<{ id: string }>(`SELECT id FROM fhir_current WHERE resource_type = 'Patient' AND NOT deleted`);
    patients = new Set(all.rows.map((r) => `Patient/${r.id}`));
  }
  for (const characteristic of array(group.characteristic)) {
    if (patients.size === 0) break;
    const code = codings(characteristic.code).find((c) => c.system === COHORT_CRITERION)!.code;
    const matching = await criterionPatients(db, code, characteristic, [...patients]);
    const exclude = characteristic.exclude === true;
    patients = new Set([...patients].filter((p) => matching.has(p) !== exclude));
  }
  // Only patients the store holds: a member that was never stored (or was merged away) has nothing to release.
  const stored = await db.query<{ id: string }>(`SELECT id FROM fhir_current WHERE resource_type = 'Patient' AND NOT deleted AND id = ANY($1::text[])`, [[...patients].map((p) => p.slice('Patient/'.length))]);
  return stored.rows.map((r) => `Patient/${r.id}`).sort();
}

async function criterionPatients(db: Queryable, code: string, characteristic: Json, among: string[]): Promise<Set<string>> {
  const ids = among.map((p) => p.slice('Patient/'.length));
  if (code === 'gender') {
    const genders = codings(characteristic.valueCodeableConcept).map((c) => c.code);
    const blind = await blindIndexOf(db);
    const result = await db.query<{ id: string }>(`SELECT id FROM fhir_search_token WHERE resource_type = 'Patient' AND param = 'gender' AND code_hash = ANY($1::bigint[]) AND id = ANY($2::text[])`, [genders.map((g) => blind.codeHash('gender', g)), ids]);
    return new Set(result.rows.map((r) => `Patient/${r.id}`));
  }
  if (code === 'birth-date') {
    const period = characteristic.period as Json;
    // A birth date is compared as written (YYYY, YYYY-MM or YYYY-MM-DD) with the period's dates cut to the same
    // precision, so that a year of birth is in a period that covers part of that year only when the bounds allow it.
    // Read through the store's resource reads, not from the content column: a Patient's content may be sealed
    // under the patient's key (store/keys.ts), which those reads open.
    const births: Array<{ patient: string; birthDate: string }> = [];
    for (const id of ids) {
      const stored = await readCurrent(db, 'Patient', id);
      if (stored && !stored.deleted && typeof stored.content.birthDate === 'string') births.push({ patient: `Patient/${id}`, birthDate: stored.content.birthDate });
    }
    const start = typeof period.start === 'string' ? period.start : undefined;
    const end = typeof period.end === 'string' ? period.end : undefined;
    return new Set(
      births
        .filter(({ birthDate }) => (start === undefined || birthDate >= start.slice(0, birthDate.length)) && (end === undefined || birthDate <= end.slice(0, birthDate.length)))
        .map((b) => b.patient),
    );
  }
  const type = code === 'condition' ? 'Condition' : 'Observation';
  const wanted = codings(characteristic.valueCodeableConcept);
  const blind = await blindIndexOf(db);
  // A coding without a system matches the code in any system (code_hash), one with a system only there (token_hash).
  const result = await db.query<{ patient: string }>(
    `SELECT DISTINCT p.reference AS patient
       FROM fhir_search_token c
       JOIN unnest($2::bigint[], $3::bigint[]) AS w(code_hash, token_hash) ON c.code_hash = w.code_hash AND (w.token_hash IS NULL OR c.token_hash = w.token_hash)
       JOIN fhir_search_token p ON p.resource_type = c.resource_type AND p.id = c.id AND p.param = 'patient'
       JOIN fhir_current cur ON cur.resource_type = c.resource_type AND cur.id = c.id AND NOT cur.deleted
      WHERE c.resource_type = $1 AND c.param = 'code' AND p.reference = ANY($4::text[])`,
    [type, wanted.map((w) => blind.codeHash('code', w.code)), wanted.map((w) => (w.system ? blind.tokenHash('code', w.system, w.code) : null)), among],
  );
  return new Set(result.rows.map((r) => r.patient));
}

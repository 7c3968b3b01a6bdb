/**
 * An OMOP CDM (v5.4) view of one project's research data: the tables person, observation_period,
 * condition_occurrence and measurement, derived on request from the de-identified rows of the research schema (never
 * from the clinical store), so that what an OMOP tool reads is what a FHIR search or a Bulk Data export would.
 *
 * What it is and is not:
 * - Ids are integers, as OMOP needs: the first 52 bits of the row's pseudonymous id (a keyed hash already, so no
 *   clinical id is involved), or of its SHA-256 when the id is not hexadecimal. They are stable within the project and
 *   its secret, like the pseudonyms.
 * - Concepts: gender is mapped to its standard concepts (8507 male, 8532 female, 8551 unknown); condition and
 *   measurement codes are not (the engine holds no OMOP vocabulary), so their concept ids are 0 and the code is in
 *   the *_source_value column as `system|code` cut to OMOP's 50 characters. Type concepts are 32817 (EHR).
 * - Dates are the de-identified (shifted) ones. observation_period spans a person's earliest to latest dated row.
 */
import { createHash } from 'node:crypto';
import { LOSSLESS_JSON_TYPES, type Queryable } from './db.ts';
import { quoted, researchSchema } from './research.ts';

export const OMOP_TABLES = ['person', 'observation_period', 'condition_occurrence', 'measurement'] as const;
export type OmopTable = (typeof OMOP_TABLES)[number];

export type OmopValue = string | number | null;

/** OMOP's type concept for records taken from an EHR. */
const EHR = 32817;
const GENDER: Record<string, number> = { male: 8507, female: 8532, unknown: 8551 };
const COLUMNS: Record<OmopTable, string[]> = {
  person: ['person_id', 'gender_concept_id', 'year_of_birth', 'month_of_birth', 'day_of_birth', 'race_concept_id', 'ethnicity_concept_id', 'person_source_value', 'gender_source_value'],
  observation_period: ['observation_period_id', 'person_id', 'observation_period_start_date', 'observation_period_end_date', 'period_type_concept_id'],
  condition_occurrence: ['condition_occurrence_id', 'person_id', 'condition_concept_id', 'condition_start_date', 'condition_end_date', 'condition_type_concept_id', 'condition_source_value', 'condition_source_concept_id'],
  measurement: ['measurement_id', 'person_id', 'measurement_concept_id', 'measurement_date', 'measurement_type_concept_id', 'value_as_number', 'unit_source_value', 'measurement_source_value', 'measurement_source_concept_id'],
};

type Json = Record<string, unknown>;

/** An OMOP integer id from a pseudonymous id: 52 bits, below 2^53, so it survives any JSON or CSV reader. */
export function omopId(pseudonym: string): number {
  const hex = /^[0-9a-f]{13,}$/.test(pseudonym) ? pseudonym : createHash('sha256').update(pseudonym).digest('hex');
  return Number.parseInt(hex.slice(0, 13), 16);
}

const day = (value: unknown): string | null => (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}/.test(value) ? value.slice(0, 10) : null);

function firstCoding(concept: unknown): string | null {
  const coding = ((concept as Json | undefined)?.coding as Json[] | undefined)?.find((c) => typeof c?.code === 'string');
  if (!coding) return null;
  return `${typeof coding.system === 'string' ? coding.system : ''}|${coding.code as string}`.slice(0, 50);
}

function personOf(resource: Json): number | null {
  const reference = ((resource.subject ?? resource.patient) as Json | undefined)?.reference;
  return typeof reference === 'string' && reference.startsWith('Patient/') ? omopId(reference.slice('Patient/'.length)) : null;
}

/** One OMOP table of project `projectId`, as columns and rows. */
export async function omopTable(db: Queryable, schema: string, projectId: string, table: OmopTable): Promise<{ columns: string[]; rows: OmopValue[][] }> {
  const research = quoted(researchSchema(schema));
  const rowsOf = async (type: string): Promise<Array<{ id: string; content: Json }>> =>
    (await db.query({ text: `SELECT id, content FROM ${research}.resource WHERE project_id = $1 AND resource_type = $2 ORDER BY id`, values: [projectId, type], types: LOSSLESS_JSON_TYPES })).rows as Array<{ id: string; content: Json }>;
  const columns = COLUMNS[table];
  if (table === 'person') {
    const rows = (await rowsOf('Patient')).map(({ id, content }): OmopValue[] => {
      const birth = typeof content.birthDate === 'string' ? content.birthDate : '';
      const gender = typeof content.gender === 'string' ? content.gender : null;
      return [omopId(id), gender ? (GENDER[gender] ?? 0) : 0, birth.length >= 4 ? Number(birth.slice(0, 4)) : null, birth.length >= 7 ? Number(birth.slice(5, 7)) : null, birth.length >= 10 ? Number(birth.slice(8, 10)) : null, 0, 0, id, gender];
    });
    return { columns, rows };
  }
  if (table === 'observation_period') {
    const result = await db.query<{ patient: string; first: Date; last: Date }>(
      `SELECT r.patient, min(d.low) AS first, max(d.high - interval '1 millisecond') AS last
         FROM ${research}.resource r JOIN ${research}.search_date d ON d.project_id = r.project_id AND d.resource_type = r.resource_type AND d.id = r.id
        WHERE r.project_id = $1 AND r.patient IS NOT NULL AND r.resource_type <> 'Patient' AND d.high < '9999-01-01'
        GROUP BY r.patient ORDER BY r.patient`,
      [projectId],
    );
    const rows = result.rows.map((r): OmopValue[] => {
      const person = omopId(r.patient.slice('Patient/'.length));
      return [person, person, r.first.toISOString().slice(0, 10), r.last.toISOString().slice(0, 10), EHR];
    });
    return { columns, rows };
  }
  if (table === 'condition_occurrence') {
    const rows = (await rowsOf('Condition')).map(({ id, content }): OmopValue[] => [
      omopId(id),
      personOf(content),
      0,
      day(content.onsetDateTime) ?? day((content.onsetPeriod as Json | undefined)?.start) ?? day(content.recordedDate),
      day(content.abatementDateTime) ?? day((content.onsetPeriod as Json | undefined)?.end),
      EHR,
      firstCoding(content.code),
      0,
    ]);
    return { columns, rows };
  }
  const rows = (await rowsOf('Observation'))
    .filter(({ content }) => content.valueQuantity !== undefined)
    .map(({ id, content }): OmopValue[] => {
      const quantity = content.valueQuantity as Json;
      const value = Number(String(quantity.value));
      return [
        omopId(id),
        personOf(content),
        0,
        day(content.effectiveDateTime) ?? day((content.effectivePeriod as Json | undefined)?.start) ?? day(content.issued),
        EHR,
        Number.isFinite(value) ? value : null,
        typeof quantity.unit === 'string' ? quantity.unit.slice(0, 50) : typeof quantity.code === 'string' ? quantity.code.slice(0, 50) : null,
        firstCoding(content.code),
        0,
      ];
    });
  return { columns, rows };
}

/** A table as CSV (RFC 4180: a header line, CRLF, fields with a comma, quote or line break quoted). */
export function omopCsv(table: { columns: string[]; rows: OmopValue[][] }): string {
  const field = (value: OmopValue): string => {
    if (value === null) return '';
    const text = String(value);
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return [table.columns.join(','), ...table.rows.map((row) => row.map(field).join(','))].join('\r\n') + '\r\n';
}

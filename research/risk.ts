/**
 * The release risk check: k-anonymity over the quasi-identifiers of de-identified records, and distinct
 * l-diversity of a sensitive attribute within each equivalence class. A release is refused while any class is
 * smaller than k or holds fewer than l distinct sensitive values; the report names those classes by their
 * quasi-identifier values and sizes only (never a direct identifier, never a record), so it can be shown to the
 * project's owner as the reason for the refusal.
 *
 * Records whose quasi-identifier is missing form classes of their own with the value `*` (suppressed): a missing
 * birth year is as much a value an attacker can match on as a present one.
 */

/** One equivalence class: records alike on every quasi-identifier. */
export interface EquivalenceClass {
  /** The quasi-identifier values that define the class (`*` for missing). */
  values: Record<string, string>;
  size: number;
  /** Distinct values of the sensitive attribute in the class, when one was named. */
  distinctSensitive?: number;
}

export interface RiskReport {
  k: number;
  l?: number;
  quasiIdentifiers: string[];
  records: number;
  /** Number of equivalence classes. */
  groups: number;
  /** Size of the smallest class (0 when there are no records). */
  smallestGroup: number;
  /** The fewest distinct sensitive values of any class, when a sensitive attribute was named. */
  smallestDiversity?: number;
  /** Classes smaller than k, or with fewer than l distinct sensitive values; largest risk (smallest class) first. */
  offending: EquivalenceClass[];
  /** No offending class: the release may go ahead. */
  satisfied: boolean;
}

export type QuasiIdentifierRecord = Record<string, string | undefined>;

const SUPPRESSED = '*';

/**
 * k-anonymity (and distinct l-diversity on `options.sensitive` when given) of `records` over `quasiIdentifiers`.
 * No records: satisfied (nothing is released).
 */
export function kAnonymity(records: QuasiIdentifierRecord[], quasiIdentifiers: string[], k: number, options: { sensitive?: string; l?: number } = {}): RiskReport {
  const classes = new Map<string, { values: Record<string, string>; size: number; sensitive: Set<string> }>();
  for (const record of records) {
    const values: Record<string, string> = {};
    for (const qi of quasiIdentifiers) {
      const value = record[qi];
      values[qi] = value === undefined || value === '' ? SUPPRESSED : value;
    }
    const key = JSON.stringify(quasiIdentifiers.map((qi) => values[qi]));
    let found = classes.get(key);
    if (!found) {
      found = { values, size: 0, sensitive: new Set() };
      classes.set(key, found);
    }
    found.size += 1;
    if (options.sensitive !== undefined) found.sensitive.add(record[options.sensitive] ?? SUPPRESSED);
  }
  const all = [...classes.values()].map((c): EquivalenceClass => ({
    values: c.values,
    size: c.size,
    ...(options.sensitive === undefined ? {} : { distinctSensitive: c.sensitive.size }),
  }));
  const l = options.sensitive === undefined ? undefined : options.l;
  const offending = all
    .filter((c) => c.size < k || (l !== undefined && (c.distinctSensitive ?? 0) < l))
    .sort((a, b) => a.size - b.size || (a.distinctSensitive ?? 0) - (b.distinctSensitive ?? 0));
  return {
    k,
    ...(l === undefined ? {} : { l }),
    quasiIdentifiers: [...quasiIdentifiers],
    records: records.length,
    groups: all.length,
    smallestGroup: all.length === 0 ? 0 : Math.min(...all.map((c) => c.size)),
    ...(options.sensitive === undefined ? {} : { smallestDiversity: all.length === 0 ? 0 : Math.min(...all.map((c) => c.distinctSensitive ?? 0)) }),
    offending,
    satisfied: offending.length === 0,
  };
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => value !== null && typeof value === 'object' && !Array.isArray(value);

/**
 * The quasi-identifiers the row helper knows, read from a de-identified Patient: `gender`; `birthYear` (also
 * `birthDate`: the year the default configuration leaves); `postalCode` (also `postalPrefix`: the generalised
 * code), `state` (also `region`), `country`, `city`, `district` of the first address; `deceased` (true/false);
 * `maritalStatus` (its first code); `language` (the first communication language). Any other name is read as a
 * dotted path into the Patient (`address.state`, first value found).
 */
const PATIENT_QUASI_IDENTIFIERS: Record<string, (patient: Json) => string | undefined> = {
  gender: (p) => stringAt(p, ['gender']),
  birthYear: (p) => stringAt(p, ['birthDate'])?.slice(0, 4),
  birthDate: (p) => stringAt(p, ['birthDate'])?.slice(0, 4),
  postalCode: (p) => stringAt(p, ['address', 'postalCode']),
  postalPrefix: (p) => stringAt(p, ['address', 'postalCode']),
  state: (p) => stringAt(p, ['address', 'state']),
  region: (p) => stringAt(p, ['address', 'state']),
  country: (p) => stringAt(p, ['address', 'country']),
  city: (p) => stringAt(p, ['address', 'city']),
  district: (p) => stringAt(p, ['address', 'district']),
  deceased: (p) => (p.deceasedBoolean === true || typeof p.deceasedDateTime === 'string' ? 'true' : p.deceasedBoolean === false ? 'false' : undefined),
  maritalStatus: (p) => stringAt(p, ['maritalStatus', 'coding', 'code']),
  language: (p) => stringAt(p, ['communication', 'language', 'coding', 'code']),
};

/**
 * Sensitive attributes the row helper derives from a patient's other resources (options.related): `condition`
 * (the set of the patient's Condition codes, as `system|code`, sorted and joined by `,`) and `observation` (the same
 * of Observation codes). Any other name is read from the Patient like a quasi-identifier.
 */
const SENSITIVE_FROM_RELATED: Record<string, string> = { condition: 'Condition', observation: 'Observation' };

/**
 * One row per Patient among `patients` (other resource types are skipped) with the named quasi-identifiers, and the
 * sensitive attribute when `options.sensitive` is given. Works on de-identified resources: patients and the
 * resources about them are matched by their (pseudonymous) references.
 */
export function quasiIdentifierRows(patients: Json[], quasiIdentifiers: string[], options: { sensitive?: string; related?: Json[] } = {}): QuasiIdentifierRecord[] {
  const codesByPatient = new Map<string, Set<string>>();
  const relatedType = options.sensitive === undefined ? undefined : SENSITIVE_FROM_RELATED[options.sensitive];
  if (relatedType !== undefined) {
    for (const resource of options.related ?? []) {
      if (resource.resourceType !== relatedType) continue;
      const subject = stringAt(resource, ['subject', 'reference']) ?? stringAt(resource, ['patient', 'reference']);
      const id = subject?.match(/(?:^|\/)Patient\/([^/]+)$/)?.[1];
      if (id === undefined) continue;
      const codes = codesByPatient.get(id) ?? new Set<string>();
      const coding = (isObject(resource.code) && Array.isArray(resource.code.coding) ? resource.code.coding : []).find(isObject);
      if (coding && typeof coding.code === 'string') codes.add(`${typeof coding.system === 'string' ? coding.system : ''}|${coding.code}`);
      codesByPatient.set(id, codes);
    }
  }
  const rows: QuasiIdentifierRecord[] = [];
  for (const patient of patients) {
    if (patient.resourceType !== 'Patient') continue;
    const row: QuasiIdentifierRecord = {};
    for (const qi of quasiIdentifiers) row[qi] = readQuasiIdentifier(patient, qi);
    if (options.sensitive !== undefined) {
      if (relatedType !== undefined) {
        const codes = codesByPatient.get(typeof patient.id === 'string' ? patient.id : '');
        row[options.sensitive] = codes && codes.size > 0 ? [...codes].sort().join(',') : undefined;
      } else {
        row[options.sensitive] = readQuasiIdentifier(patient, options.sensitive);
      }
    }
    rows.push(row);
  }
  return rows;
}

function readQuasiIdentifier(patient: Json, name: string): string | undefined {
  const known = PATIENT_QUASI_IDENTIFIERS[name];
  return known ? known(patient) : stringAt(patient, name.split('.'));
}

/** The first string (or number, as text) at a dotted path, through arrays. */
function stringAt(value: unknown, path: readonly string[]): string | undefined {
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = stringAt(item, path);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (path.length === 0) return typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
  if (!isObject(value)) return undefined;
  return stringAt(value[path[0]!], path.slice(1));
}

/**
 * Structural checks every mapper output must pass: the FHIR R4 rules a draft can break without a schema, checked
 * element by element for the resources the mappers produce. Not a full validator; the element lists below are the
 * R4 definitions of the elements we emit, with their cardinality.
 */

import { expect } from 'vitest';

import type { ResourceDraft } from '../../mappers/index.ts';

type Cardinality = 'one' | 'many';

/** R4 top-level elements the mappers may emit, with max cardinality. */
const ELEMENTS: Record<string, Record<string, Cardinality>> = {
  Patient: {
    identifier: 'many',
    active: 'one',
    name: 'many',
    telecom: 'many',
    gender: 'one',
    birthDate: 'one',
    deceasedBoolean: 'one',
    deceasedDateTime: 'one',
    address: 'many',
    maritalStatus: 'one',
    multipleBirthBoolean: 'one',
    multipleBirthInteger: 'one',
    communication: 'many',
  },
  Encounter: {
    identifier: 'many',
    status: 'one',
    class: 'one',
    subject: 'one',
    period: 'one',
    location: 'many',
    hospitalization: 'one',
    participant: 'many',
  },
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
// FHIR R4 date and dateTime regular expressions (datatypes.html).
const DATE = /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$/;
const DATE_TIME =
  /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$/;

const CODES: Record<string, ReadonlySet<string>> = {
  'Patient.gender': new Set(['male', 'female', 'other', 'unknown']),
  'Encounter.status': new Set(['planned', 'arrived', 'triaged', 'in-progress', 'onleave', 'finished', 'cancelled', 'entered-in-error', 'unknown']),
  'HumanName.use': new Set(['usual', 'official', 'temp', 'nickname', 'anonymous', 'old', 'maiden']),
  'ContactPoint.system': new Set(['phone', 'fax', 'email', 'pager', 'url', 'sms', 'other']),
  'ContactPoint.use': new Set(['home', 'work', 'temp', 'old', 'mobile']),
  'Address.use': new Set(['home', 'work', 'temp', 'old', 'billing']),
  'Address.type': new Set(['postal', 'physical', 'both']),
};

/**
 * Only JSON values (no functions, class instances or non-finite numbers), no '', [] or {} anywhere, and no null below
 * the top level (null only means "remove" on a draft's elements).
 */
function expectNoEmpties(value: unknown, where: string): void {
  expect(value, where).not.toBeNull();
  expect(['string', 'number', 'boolean', 'object'], `${where} is not a JSON value`).toContain(typeof value);
  if (typeof value === 'number') expect(Number.isFinite(value), `${where} is not a finite number`).toBe(true);
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    expect(Object.getPrototypeOf(value), `${where} is not a plain object`).toBe(Object.prototype);
  }
  expect(value, where).not.toBe('');
  if (typeof value === 'string') expect(value.trim(), `${where} has surrounding whitespace`).toBe(value);
  if (Array.isArray(value)) {
    expect(value.length, `${where} is an empty array`).toBeGreaterThan(0);
    value.forEach((item, i) => expectNoEmpties(item, `${where}[${i}]`));
  } else if (typeof value === 'object' && value !== null) {
    expect(Object.keys(value).length, `${where} is an empty object`).toBeGreaterThan(0);
    for (const [key, element] of Object.entries(value)) {
      expect(element, `${where}.${key}`).not.toBeUndefined();
      expectNoEmpties(element, `${where}.${key}`);
    }
  }
}

function expectCode(kind: string, value: unknown): void {
  if (value === undefined || value === null) return;
  expect(CODES[kind]!.has(value as string), `${kind} '${String(value)}'`).toBe(true);
}

export function expectValidDrafts(drafts: ResourceDraft[]): void {
  for (const draft of drafts) {
    const allowed = ELEMENTS[draft.resourceType];
    expect(allowed, draft.resourceType).toBeDefined();
    expect(draft.id).toMatch(UUID);
    for (const [name, value] of Object.entries(draft)) {
      if (name === 'resourceType' || name === 'id') continue;
      expect(Object.hasOwn(allowed!, name), `${draft.resourceType}.${name} is not an R4 element we emit`).toBe(true);
      expect(value, `${draft.resourceType}.${name}`).not.toBeUndefined();
      if (value === null) continue;
      expect(Array.isArray(value), `${draft.resourceType}.${name} cardinality`).toBe(allowed![name] === 'many');
      expectNoEmpties(value, `${draft.resourceType}.${name}`);
    }
    // A choice element holds one type.
    for (const prefix of ['deceased', 'multipleBirth']) {
      const present = Object.entries(draft).filter(([name, value]) => name.startsWith(prefix) && value !== null);
      expect(present.length, `${prefix}[x]`).toBeLessThanOrEqual(1);
    }
    if (draft.resourceType === 'Patient') checkPatient(draft);
    if (draft.resourceType === 'Encounter') checkEncounter(draft);
  }
}

interface Loose {
  [key: string]: unknown;
}

function checkPatient(patient: ResourceDraft): void {
  expectCode('Patient.gender', patient['gender']);
  if (typeof patient['birthDate'] === 'string') expect(patient['birthDate']).toMatch(DATE);
  if (typeof patient['deceasedDateTime'] === 'string') expect(patient['deceasedDateTime']).toMatch(DATE_TIME);
  for (const name of (patient['name'] as Loose[] | null | undefined) ?? []) {
    expectCode('HumanName.use', name['use']);
    if (name['family'] !== undefined) expect(typeof name['family']).toBe('string');
    for (const list of ['given', 'prefix', 'suffix']) if (name[list] !== undefined) expect(Array.isArray(name[list])).toBe(true);
  }
  for (const contact of (patient['telecom'] as Loose[] | null | undefined) ?? []) {
    expectCode('ContactPoint.system', contact['system']);
    expectCode('ContactPoint.use', contact['use']);
    // cpt-2: a value requires a system.
    if (contact['value'] !== undefined) expect(contact['system']).toBeDefined();
  }
  for (const address of (patient['address'] as Loose[] | null | undefined) ?? []) {
    expectCode('Address.use', address['use']);
    expectCode('Address.type', address['type']);
    if (address['line'] !== undefined) expect(Array.isArray(address['line'])).toBe(true);
  }
  for (const identifier of (patient['identifier'] as Loose[] | null | undefined) ?? []) expect(typeof identifier['value']).toBe('string');
  for (const communication of (patient['communication'] as Loose[] | null | undefined) ?? []) expect(communication['language']).toBeDefined();
}

function checkEncounter(encounter: ResourceDraft): void {
  expectCode('Encounter.status', encounter['status']);
  const klass = encounter['class'] as Loose | null | undefined;
  if (klass) expect(Array.isArray(klass), 'Encounter.class is a single Coding in R4').toBe(false);
  const period = encounter['period'] as Loose | null | undefined;
  if (period) for (const bound of ['start', 'end']) if (period[bound] !== undefined) expect(period[bound]).toMatch(DATE_TIME);
  expect((encounter['subject'] as Loose)['reference']).toMatch(/^Patient\/[0-9a-f-]{36}$/);
  for (const participant of (encounter['participant'] as Loose[] | null | undefined) ?? []) {
    expect(Array.isArray(participant['type'])).toBe(true);
    expect(Array.isArray(participant['individual'])).toBe(false);
  }
  for (const location of (encounter['location'] as Loose[] | null | undefined) ?? []) expect(location['location']).toBeDefined();
}

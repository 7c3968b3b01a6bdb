/**
 * Structural checks every mapper output must pass: the FHIR R4 rules a draft can break without a schema, checked
 * element by element for the resources the mappers produce. Not a full validator; the element lists below are the
 * R4 definitions of the elements we emit, with their cardinality.
 */

import { expect } from 'vitest';

import { type ResourceDraft, isElementMergeOperation, mergeDraft } from '../../mappers/index.ts';

type Cardinality = 'one' | 'many';

/** R4 top-level elements the mappers may emit, with max cardinality. */
const ELEMENTS: Record<string, Record<string, Cardinality>> = {
  Patient: {
    identifier: 'many',
    // gender's extension sibling: the code as sent when it is not a table 0001 code (originalText).
    _gender: 'one',
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
    // PID-6, -10, -17, -22, -23, -26, -28 (mappers/hl7v2/adt-patient-extensions.ts).
    extension: 'many',
    // PD1-3 and PD1-4 (adt-patient.ts), NK1 (adt-related-person.ts patientContacts).
    generalPractitioner: 'many',
    contact: 'many',
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
    classHistory: 'many',
  },
  RelatedPerson: {
    identifier: 'many',
    active: 'one',
    patient: 'one',
    relationship: 'many',
    name: 'many',
    telecom: 'many',
    gender: 'one',
    birthDate: 'one',
    address: 'many',
    period: 'one',
  },
  AllergyIntolerance: {
    clinicalStatus: 'one',
    type: 'one',
    category: 'many',
    criticality: 'one',
    code: 'one',
    patient: 'one',
    onsetDateTime: 'one',
    reaction: 'many',
  },
  Condition: {
    verificationStatus: 'one',
    category: 'many',
    code: 'one',
    subject: 'one',
    encounter: 'one',
    onsetDateTime: 'one',
  },
  Coverage: {
    identifier: 'many',
    status: 'one',
    type: 'one',
    subscriber: 'one',
    subscriberId: 'one',
    beneficiary: 'one',
    relationship: 'one',
    period: 'one',
    payor: 'many',
    class: 'many',
    policyHolder: 'one',
  },
  // The people, organizations and places messages name (mappers/hl7v2/directory.ts).
  Practitioner: { identifier: 'many', name: 'many' },
  Organization: { identifier: 'many', name: 'one', address: 'many', telecom: 'many' },
  Location: { identifier: 'many', name: 'one', mode: 'one', physicalType: 'one', partOf: 'one' },
  PractitionerRole: { practitioner: 'one', organization: 'one', code: 'many' },
  // PR1 and OBX in ADT (mappers/hl7v2/procedures.ts, observations.ts) and each message's Provenance (provenance.ts).
  Procedure: {
    identifier: 'many',
    partOf: 'many',
    status: 'one',
    category: 'one',
    code: 'one',
    subject: 'one',
    encounter: 'one',
    performedDateTime: 'one',
    performedPeriod: 'one',
    performer: 'many',
    location: 'one',
    reasonCode: 'many',
  },
  Observation: {
    identifier: 'many',
    partOf: 'many',
    status: 'one',
    code: 'one',
    subject: 'one',
    encounter: 'one',
    effectiveDateTime: 'one',
    issued: 'one',
    performer: 'many',
    valueQuantity: 'one',
    valueCodeableConcept: 'one',
    valueString: 'one',
    valueRange: 'one',
    valueRatio: 'one',
    valueDateTime: 'one',
    extension: 'many',
    dataAbsentReason: 'one',
    interpretation: 'many',
    note: 'many',
    method: 'one',
    specimen: 'one',
    referenceRange: 'many',
  },
  Account: { identifier: 'many', status: 'one', subject: 'many', guarantor: 'many' },
  CareTeam: { status: 'one', subject: 'one', participant: 'many' },
  ChargeItem: {
    identifier: 'many',
    status: 'one',
    code: 'one',
    subject: 'one',
    context: 'one',
    occurrenceDateTime: 'one',
    occurrencePeriod: 'one',
    performer: 'many',
    quantity: 'one',
    enterer: 'one',
    enteredDate: 'one',
    reason: 'many',
    account: 'many',
    productCodeableConcept: 'one',
  },
  ServiceRequest: {
    identifier: 'many',
    status: 'one',
    intent: 'one',
    category: 'many',
    priority: 'one',
    code: 'one',
    subject: 'one',
    occurrencePeriod: 'one',
    authoredOn: 'one',
    requester: 'one',
    performer: 'many',
    reasonCode: 'many',
  },
  Task: {
    identifier: 'many',
    basedOn: 'many',
    status: 'one',
    businessStatus: 'one',
    intent: 'one',
    priority: 'one',
    code: 'one',
    focus: 'one',
    for: 'one',
    authoredOn: 'one',
    requester: 'one',
    owner: 'one',
  },
  Provenance: { target: 'many', occurredDateTime: 'one', recorded: 'one', activity: 'one', agent: 'many', entity: 'many' },
  // CON (mappers/hl7v2/consents.ts).
  Consent: { identifier: 'many', status: 'one', scope: 'one', category: 'many', patient: 'one', dateTime: 'one', performer: 'many', policyRule: 'one', provision: 'one' },
};

/** Elements a draft may carry as a merge operation (mappers/merge.ts), with the operations each accepts. */
const OPERATIONS: Record<string, ReadonlySet<string>> = {
  'Encounter.location': new Set(['arrive', 'leave', 'cancel-arrive', 'cancel-leave', 'places']),
  'Encounter.period': new Set(['members']),
  'Encounter.hospitalization': new Set(['members']),
  'Encounter.classHistory': new Set(['class-change']),
  'Encounter.participant': new Set(['roles']),
  'Patient.generalPractitioner': new Set(['roles']),
  'Procedure.performer': new Set(['roles']),
  'CareTeam.participant': new Set(['roles']),
  'Account.status': new Set(['if-absent']),
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
  'Encounter.location.status': new Set(['planned', 'active', 'reserved', 'completed']),
  'AllergyIntolerance.type': new Set(['allergy', 'intolerance']),
  'AllergyIntolerance.category': new Set(['food', 'medication', 'environment', 'biologic']),
  'AllergyIntolerance.criticality': new Set(['low', 'high', 'unable-to-assess']),
  'AllergyIntolerance.reaction.severity': new Set(['mild', 'moderate', 'severe']),
  'Coverage.status': new Set(['active', 'cancelled', 'draft', 'entered-in-error']),
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
      expectNoEmpties(value, `${draft.resourceType}.${name}`);
      if (isElementMergeOperation(value)) {
        expect(OPERATIONS[`${draft.resourceType}.${name}`]?.has(value.$merge), `${draft.resourceType}.${name} takes no '${value.$merge}' operation`).toBe(true);
        // What the operation leaves when applied to nothing has the element's cardinality.
        const applied = mergeDraft(undefined, { resourceType: draft.resourceType, id: draft.id, [name]: value })[name];
        if (applied !== undefined) expect(Array.isArray(applied), `${draft.resourceType}.${name} cardinality`).toBe(allowed![name] === 'many');
        continue;
      }
      expect(Array.isArray(value), `${draft.resourceType}.${name} cardinality`).toBe(allowed![name] === 'many');
    }
    // A choice element holds one type.
    for (const prefix of ['deceased', 'multipleBirth']) {
      const present = Object.entries(draft).filter(([name, value]) => name.startsWith(prefix) && value !== null);
      expect(present.length, `${prefix}[x]`).toBeLessThanOrEqual(1);
    }
    // Nested elements are checked as they will be stored: operations applied to nothing.
    const resource = mergeDraft(undefined, draft) as ResourceDraft;
    if (draft.resourceType === 'Patient') checkPatient(draft);
    if (draft.resourceType === 'Encounter') checkEncounter(resource);
    if (draft.resourceType === 'RelatedPerson') checkRelatedPerson(draft);
    if (draft.resourceType === 'AllergyIntolerance') checkAllergy(draft);
    if (draft.resourceType === 'Condition') checkCondition(draft);
    if (draft.resourceType === 'Coverage') checkCoverage(draft);
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
  for (const location of (encounter['location'] as Loose[] | null | undefined) ?? []) {
    expect(location['location']).toBeDefined();
    expectCode('Encounter.location.status', location['status']);
    expectPeriod(location['period']);
  }
  for (const entry of (encounter['classHistory'] as Loose[] | null | undefined) ?? []) {
    // R4: class and period are both 1..1.
    expect(entry['class']).toBeDefined();
    expect(entry['period']).toBeDefined();
    expectPeriod(entry['period']);
  }
}

function expectPeriod(period: unknown): void {
  if (period === undefined || period === null) return;
  for (const bound of ['start', 'end']) {
    const value = (period as Loose)[bound];
    if (value !== undefined) expect(value).toMatch(DATE_TIME);
  }
}

function expectPatientReference(reference: unknown, where: string): void {
  expect((reference as Loose | undefined)?.['reference'], where).toMatch(/^Patient\/[0-9a-f-]{36}$/);
}

function checkRelatedPerson(person: ResourceDraft): void {
  expectPatientReference(person['patient'], 'RelatedPerson.patient');
  expectCode('Patient.gender', person['gender']);
  if (typeof person['birthDate'] === 'string') expect(person['birthDate']).toMatch(DATE);
  for (const contact of (person['telecom'] as Loose[] | null | undefined) ?? []) {
    expectCode('ContactPoint.system', contact['system']);
    expectCode('ContactPoint.use', contact['use']);
  }
  for (const address of (person['address'] as Loose[] | null | undefined) ?? []) expectCode('Address.use', address['use']);
  expectPeriod(person['period']);
}

function checkAllergy(allergy: ResourceDraft): void {
  expectPatientReference(allergy['patient'], 'AllergyIntolerance.patient');
  expect(allergy['clinicalStatus']).toBeDefined();
  expectCode('AllergyIntolerance.type', allergy['type']);
  for (const category of (allergy['category'] as string[] | null | undefined) ?? []) expectCode('AllergyIntolerance.category', category);
  expectCode('AllergyIntolerance.criticality', allergy['criticality']);
  if (typeof allergy['onsetDateTime'] === 'string') expect(allergy['onsetDateTime']).toMatch(DATE_TIME);
  for (const reaction of (allergy['reaction'] as Loose[] | null | undefined) ?? []) {
    // R4: every reaction has at least one manifestation.
    expect(Array.isArray(reaction['manifestation']) && (reaction['manifestation'] as unknown[]).length > 0).toBe(true);
    expectCode('AllergyIntolerance.reaction.severity', reaction['severity']);
  }
}

function checkCondition(condition: ResourceDraft): void {
  expectPatientReference(condition['subject'], 'Condition.subject');
  if (condition['encounter'] !== undefined) expect((condition['encounter'] as Loose)['reference']).toMatch(/^Encounter\/[0-9a-f-]{36}$/);
  if (typeof condition['onsetDateTime'] === 'string') expect(condition['onsetDateTime']).toMatch(DATE_TIME);
}

function checkCoverage(coverage: ResourceDraft): void {
  expectPatientReference(coverage['beneficiary'], 'Coverage.beneficiary');
  expectCode('Coverage.status', coverage['status']);
  // R4: payor is 1..*, and each class has a type and a value.
  expect(Array.isArray(coverage['payor']) && (coverage['payor'] as unknown[]).length > 0).toBe(true);
  for (const entry of (coverage['class'] as Loose[] | null | undefined) ?? []) {
    expect(entry['type']).toBeDefined();
    expect(typeof entry['value']).toBe('string');
  }
  expectPeriod(coverage['period']);
}

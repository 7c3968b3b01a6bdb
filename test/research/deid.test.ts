/**
 * De-identification of FHIR resources, one rule at a time, on resources the engine's mappers produced from its
 * HL7 v2 and C-CDA fixtures (Korean and US senders) and on resources shaped like the FHIR specification's examples.
 */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_DEID_CONFIG,
  PSEUDONYM_IDENTIFIER_SYSTEM,
  dateOffsetDays,
  deidentifyResource,
  namesOf,
  parseDeidConfig,
  pseudonymousId,
  type DeidConfig,
  type DeidContext,
} from '../../research/index.ts';
import { SECRET_A, byType, mappedResources, strings, type Json } from './support.ts';

const context: DeidContext = { projectSecret: SECRET_A, asOf: '2025-01-01' };
const deid = (resource: Json, config: DeidConfig = DEFAULT_DEID_CONFIG, extra: Partial<DeidContext> = {}) => deidentifyResource(resource, config, { ...context, ...extra });

const busan = mappedResources('adt/a01-busan-admit-nk1-al1-dg1-in1.expected.json');
const busanPatient = byType(busan, 'Patient')[0]!;
const korean = mappedResources('adt/a28-korean-person-nk1-al1-in1.expected.json');
const koreanPatient = byType(korean, 'Patient')[0]!;
const usSender = mappedResources('adt/a08-us-sender-icd10cm-coverage.expected.json');
const usPatient = byType(usSender, 'Patient')[0]!;
const discharge = mappedResources('adt/a03-discharge-with-diagnoses.expected.json');
const dischargeSummary = mappedResources('cda/korean-discharge-summary.expected.json');

describe('names', () => {
  it('removes Hangul and Latin names of the patient and of contacts', () => {
    const { resource } = deid(koreanPatient);
    const text = JSON.stringify(resource);
    for (const name of ['서연', 'SEOYEON', '준호', 'LEE']) expect(text).not.toContain(name);
    expect(resource!.name).toBeUndefined();
    expect((resource!.contact as Json[])[0]!.name).toBeUndefined();
    // What stays is what research needs: gender, the relationship of the contact.
    expect(resource!.gender).toBe('female');
    expect((resource!.contact as Json[])[0]!.relationship).toBeDefined();
  });

  it('removes the names of practitioners and of related persons', () => {
    for (const resource of [...byType(busan, 'Practitioner'), ...byType(korean, 'RelatedPerson')]) {
      const out = deid(resource).resource!;
      for (const name of namesOf(resource.name)) expect(strings(out)).not.toContain(name);
    }
  });
});

describe('telecom', () => {
  it('removes telephone numbers, e-mail and fax from the patient and contacts', () => {
    const { resource } = deid(koreanPatient);
    expect(resource!.telecom).toBeUndefined();
    expect(JSON.stringify(resource)).not.toMatch(/010-1111-2222|053-123-4567/);
  });
});

describe('address', () => {
  it('keeps the state and country, removes lines and city, and keeps 2 digits of a Korean postal code', () => {
    const { resource } = deid(koreanPatient);
    expect(resource!.address).toEqual([{ use: 'home', state: '대구광역시', postalCode: '41', country: 'KOR' }]);
  });

  it('keeps 3 digits of a US ZIP code, and none (000) in the restricted areas', () => {
    const address = (usPatient.address as Json[])[0]!;
    expect((deid(usPatient).resource!.address as Json[])[0]!.postalCode).toBe(String(address.postalCode).slice(0, 3));
    const restricted = { ...usPatient, address: [{ ...address, postalCode: '03601' }] };
    expect((deid(restricted).resource!.address as Json[])[0]!.postalCode).toBe('000');
  });

  it('reads an address without a country but in Hangul as Korean', () => {
    const patient = { resourceType: 'Patient', id: 'p', address: [{ line: ['세종대로 110'], city: '중구', state: '서울특별시', postalCode: '04524' }] };
    expect(deid(patient).resource!.address).toEqual([{ state: '서울특별시', postalCode: '04' }]);
  });
});

describe('identifiers', () => {
  it('removes the 주민등록번호 whole and pseudonymises the record number under one research system', () => {
    const { resource } = deid(busanPatient);
    const identifiers = resource!.identifier as Json[];
    expect(JSON.stringify(resource)).not.toMatch(/800101|1234567/);
    expect(identifiers.every((id) => id.system === PSEUDONYM_IDENTIFIER_SYSTEM && /^[0-9a-f]{64}$/.test(String(id.value)))).toBe(true);
    expect(identifiers.length).toBe((busanPatient.identifier as Json[]).length - 1);
    // The type (MR) stays: research can tell a record number from a visit number.
    expect(identifiers[0]!.type).toEqual((busanPatient.identifier as Json[])[0]!.type);
  });

  it('removes a 주민등록번호 whatever its system says, even where a configuration keeps identifiers', () => {
    const patient = { resourceType: 'Patient', id: 'p', identifier: [{ system: 'urn:local:ssn', value: '8001011234567' }, { system: 'urn:local:mrn', value: 'K1' }] };
    const keep = parseDeidConfig({ formatVersion: 1, rules: [{ path: "nodesByType('Identifier')", method: 'keep' }] });
    const out = deid(patient, keep);
    expect(out.resource!.identifier).toEqual([{ system: 'urn:local:mrn', value: 'K1' }]);
    expect(out.applied.some((a) => a.rule === 'resident-number guard')).toBe(true);
  });

  it('removes 주민등록번호, phone numbers and names from kept free text', () => {
    const observation = {
      resourceType: 'Observation',
      id: 'o1',
      status: 'final',
      code: { text: 'Social history' },
      subject: { reference: 'Patient/p1' },
      valueString: '환자명: 이서연 (주민번호 950412-2345678, 9504122345678), 보호자 이준호 님 연락처 010-1234-5678, 2024.03.05 내원',
    };
    const out = deid(observation, DEFAULT_DEID_CONFIG, { knownNames: namesOf(koreanPatient.name) }).resource!;
    const value = String(out.valueString);
    expect(value).not.toMatch(/950412|2345678|9504122345678|010-1234-5678|서연|준호/);
    expect(value).toContain('[주민등록번호]');
    // The date in the text moved with the patient's dates.
    expect(value).not.toContain('2024.03.05');
    expect(value).toMatch(/\d{4}\.\d{2}\.\d{2} 내원/);
  });

  it('removes a masked 주민등록번호 (birth date and sex digit) from text as well', () => {
    const observation = { resourceType: 'Observation', id: 'o2', status: 'final', code: { text: 'x' }, valueString: 'RRN 800101-1******' };
    expect(String(deid(observation).resource!.valueString)).not.toContain('800101');
  });
});

describe('free text', () => {
  // Shaped like the FHIR specification's Patient and Condition examples, with Korean content.
  const patient = {
    resourceType: 'Patient',
    id: 'example',
    text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">홍길동, 800101-1234567</div>' },
    name: [{ family: '홍', given: ['길동'] }],
    photo: [{ contentType: 'image/jpeg', data: 'iVBORw0KGgo=', url: 'http://example.org/photo/1' }],
  };
  const condition = {
    resourceType: 'Condition',
    id: 'c1',
    subject: { reference: 'Patient/example', display: '홍길동' },
    code: { coding: [{ system: 'http://snomed.info/sct', code: '44054006', display: 'Diabetes mellitus type 2' }], text: '제2형 당뇨병' },
    note: [{ authorString: 'Dr. Kim', text: '환자 홍길동, 010-9999-8888로 연락' }],
    evidence: [{ detail: [{ reference: 'Observation/o1' }] }],
  };

  it('removes the narrative and photos', () => {
    const { resource, applied } = deid(patient);
    expect(resource!.text).toBeUndefined();
    expect(resource!.photo).toEqual([{ contentType: 'image/jpeg' }]);
    expect(applied).toContainEqual({ path: 'Patient.text', rule: "redact nodesByType('Narrative')" });
  });

  it('removes notes and reference displays and keeps the coded meaning', () => {
    const { resource } = deid(condition);
    expect(resource!.note).toBeUndefined();
    expect(resource!.subject).toEqual({ reference: `Patient/${pseudonymousId(SECRET_A, 'Patient', 'example')}` });
    expect(resource!.code).toEqual(condition.code);
  });

  it('never names a value in what it reports', () => {
    const applied = [patient, condition, busanPatient, koreanPatient].flatMap((r) => deid(r).applied);
    const reported = JSON.stringify(applied);
    for (const value of ['홍길동', '길동', '800101', '1234567', '010', 'K7001', '서연']) expect(reported).not.toContain(value);
  });
});

describe('ids and references', () => {
  it('pseudonymises every id and every reference to it alike, so references still resolve', () => {
    const released = new Map<string, Json>();
    for (const source of dischargeSummary) {
      const out = deid(source).resource;
      if (out) released.set(`${source.resourceType}/${source.id}`, out);
    }
    let resolved = 0;
    for (const source of dischargeSummary) {
      const out = released.get(`${source.resourceType}/${source.id}`);
      const sourceReferences = strings(source).filter((s) => released.has(s));
      for (const reference of sourceReferences) {
        const target = released.get(reference)!;
        expect(strings(out)).toContain(`${target.resourceType}/${target.id}`);
        resolved += 1;
      }
    }
    expect(resolved).toBeGreaterThan(5);
    // No source id survives anywhere.
    const text = JSON.stringify([...released.values()]);
    for (const source of dischargeSummary) expect(text).not.toContain(String(source.id));
  });

  it('gives valid FHIR ids, and drops the server base and version of absolute references', () => {
    const encounter = { resourceType: 'Encounter', id: 'e1', subject: { reference: 'https://ehr.example.org/fhir/Patient/p1/_history/3' } };
    const out = deid(encounter).resource!;
    expect(out.id).toMatch(/^[A-Za-z0-9\-.]{1,64}$/);
    expect((out.subject as Json).reference).toBe(`Patient/${pseudonymousId(SECRET_A, 'Patient', 'p1')}`);
  });
});

describe('dates', () => {
  const encounter = byType(discharge, 'Encounter')[0]!;
  const patientId = String(byType(discharge, 'Patient')[0]!.id);
  const offset = dateOffsetDays(SECRET_A, `Patient/${patientId}`, 365);
  const days = (from: string, to: string): number => (Date.parse(to) - Date.parse(from)) / 86_400_000;

  it('shifts every date of a patient by the same offset, keeping intervals and the written time and offset', () => {
    const period = encounter.period as { start: string; end: string };
    const out = deid(encounter).resource!.period as { start: string; end: string };
    expect(offset).not.toBe(0);
    expect(days(period.start, out.start)).toBe(offset);
    expect(days(out.start, out.end)).toBe(days(period.start, period.end));
    expect(out.start.slice(10)).toBe(period.start.slice(10));
    const conditions = byType(discharge, 'Condition').map((c) => deid(c).resource!);
    for (const [i, c] of conditions.entries()) {
      const source = byType(discharge, 'Condition')[i]!;
      if (typeof source.recordedDate === 'string') expect(days(source.recordedDate, String(c.recordedDate))).toBe(offset);
    }
  });

  it('keeps the precision of partial dates and of instants', () => {
    const observation = {
      resourceType: 'Observation',
      id: 'o',
      status: 'final',
      code: { text: 'x' },
      subject: { reference: `Patient/${patientId}` },
      effectivePeriod: { start: '2024-03', end: '2024' },
      issued: '2024-03-05T01:02:03.456Z',
    };
    const out = deid(observation).resource!;
    const period = out.effectivePeriod as { start: string; end: string };
    expect(period.start).toMatch(/^\d{4}-\d{2}$/);
    expect(period.end).toMatch(/^\d{4}$/);
    expect(out.issued).toMatch(/^\d{4}-\d{2}-\d{2}T01:02:03\.456Z$/);
    expect(days('2024-03-05', String(out.issued).slice(0, 10))).toBe(offset);
  });

  it('generalises the birth date to its year', () => {
    expect(deid(koreanPatient).resource!.birthDate).toBe('1995');
  });

  it('shows an age over 89 as 90: the birth year is clamped, and so are Age values', () => {
    const old = { ...koreanPatient, birthDate: '1921-06-30' };
    expect(deid(old).resource!.birthDate).toBe('1935');
    const history = { resourceType: 'FamilyMemberHistory', id: 'f', status: 'completed', patient: { reference: 'Patient/p' }, relationship: { text: 'father' }, ageAge: { value: 97, unit: 'a', system: 'http://unitsofmeasure.org', code: 'a' } };
    expect(deid(history).resource!.ageAge).toEqual({ value: 90, unit: 'a', system: 'http://unitsofmeasure.org', code: 'a', comparator: '>=' });
    const young = { ...history, ageAge: { value: 60, unit: 'a', system: 'http://unitsofmeasure.org', code: 'a' } };
    expect(deid(young).resource!.ageAge).toEqual(young.ageAge);
  });
});

describe('extensions and meta', () => {
  const patient = {
    resourceType: 'Patient',
    id: 'p',
    meta: { source: 'urn:anchorline:source:SEOULGEN', tag: [{ system: 'urn:anchorline:facility', code: 'SEOULGEN' }], security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] },
    extension: [
      { url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace', valueAddress: { city: '대구', country: 'KR' } },
      { url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex', valueCode: 'F' },
    ],
    birthDate: '1990-01-01',
    _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1990-01-01T03:04:00+09:00' }] },
  };

  it('drops extensions the configuration does not know, and primitive extensions', () => {
    const out = deid(patient).resource!;
    expect(out.extension).toBeUndefined();
    expect(out._birthDate).toBeUndefined();
    const config = parseDeidConfig({ ...DEFAULT_DEID_CONFIG, keepExtensions: ['http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex'] });
    expect(deid(patient, config).resource!.extension).toEqual([patient.extension[1]]);
  });

  it('drops a resource with an unknown modifier extension', () => {
    const out = deid({ ...patient, modifierExtension: [{ url: 'http://example.org/unknown', valueBoolean: true }] });
    expect(out.resource).toBeUndefined();
    expect(out.applied.at(-1)!.rule).toBe('unknown modifier extension');
  });

  it('drops meta.source and facility tags, keeps security labels', () => {
    expect(deid(patient).resource!.meta).toEqual({ security: patient.meta.security });
  });
});

describe('the configuration', () => {
  it('is refused with the key at fault', () => {
    expect(() => parseDeidConfig({ formatVersion: 1, rules: [{ path: 'Patient.name', method: 'scramble' }] })).toThrow(/ANCHORLINE_ERR_CONFIG_INVALID: de-identification config rules\[0\]/);
    expect(() => parseDeidConfig({ formatVersion: 1, rules: [], colour: 'red' })).toThrow(/ANCHORLINE_ERR_CONFIG_INVALID/);
  });

  it('drops configured resource types whole', () => {
    expect(deid({ resourceType: 'AuditEvent', id: 'a' }).resource).toBeUndefined();
  });

  it('applies substitute, perturb and encrypt as configured, keyed by the project', () => {
    const config = parseDeidConfig({
      formatVersion: 1,
      rules: [
        { path: 'Observation.valueQuantity', method: 'perturb', span: 0.1, rangeType: 'proportional', roundTo: 1 },
        { path: 'Observation.code.text', method: 'substitute', replaceWith: 'masked' },
        { path: 'Observation.identifier.value', method: 'encrypt' },
      ],
    });
    const observation = { resourceType: 'Observation', id: 'o', status: 'final', code: { text: 'Glucose' }, identifier: [{ value: 'LAB-1' }], valueQuantity: { value: 100, unit: 'mg/dL' } };
    const out = deid(observation, config).resource!;
    const value = (out.valueQuantity as { value: number }).value;
    expect(value).toBeGreaterThanOrEqual(90);
    expect(value).toBeLessThanOrEqual(110);
    expect(deid(observation, config).resource).toEqual(out);
    expect((out.code as Json).text).toBe('masked');
    expect((out.identifier as Json[])[0]!.value).not.toBe('LAB-1');
  });

  it('refuses a short project secret', () => {
    expect(() => deidentifyResource(koreanPatient, DEFAULT_DEID_CONFIG, { projectSecret: new Uint8Array(8) })).toThrow(/ANCHORLINE_ERR_CONFIG_INVALID/);
  });
});

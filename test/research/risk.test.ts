/**
 * The release risk check on de-identified Patients of the engine's fixtures: k-anonymity refusal with the offending
 * classes, and distinct l-diversity on the patients' conditions.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_DEID_CONFIG, deidentifyResource, kAnonymity, quasiIdentifierRows } from '../../research/index.ts';
import { SECRET_A, byType, mappedResources, strings, type Json } from './support.ts';

const FIXTURES = [
  'adt/a01-busan-admit-nk1-al1-dg1-in1.expected.json',
  'adt/a28-korean-person-nk1-al1-in1.expected.json',
  'adt/a03-discharge-with-diagnoses.expected.json',
  'adt/a08-us-sender-icd10cm-coverage.expected.json',
  'adt/a04-outpatient.expected.json',
  'adt/a06-busan-er-to-inpatient.expected.json',
  'cda/korean-discharge-summary.expected.json',
  'cda/sample-ccd-r11.expected.json',
];
const source = FIXTURES.flatMap(mappedResources);
const released = source.map((r) => deidentifyResource(r, DEFAULT_DEID_CONFIG, { projectSecret: SECRET_A, asOf: '2025-01-01' }).resource).filter((r): r is Json => r !== undefined);

describe('k-anonymity', () => {
  it('refuses a small cohort at k=5 and names the offending classes by their quasi-identifiers only', () => {
    const quasiIdentifiers = ['gender', 'birthYear', 'region'];
    const rows = quasiIdentifierRows(byType(released, 'Patient'), quasiIdentifiers);
    expect(rows.length).toBeGreaterThanOrEqual(5);
    const report = kAnonymity(rows, quasiIdentifiers, 5);
    expect(report.satisfied).toBe(false);
    expect(report.smallestGroup).toBeLessThan(5);
    expect(report.offending.length).toBeGreaterThan(0);
    expect(report.offending.every((c) => c.size < 5 && Object.keys(c.values).sort().join() === 'birthYear,gender,region')).toBe(true);
    // The report holds no direct identifier of any source record.
    const text = JSON.stringify(report);
    for (const patient of byType(source, 'Patient')) {
      for (const value of [...strings(patient.name), ...strings(patient.identifier).filter((s) => !s.startsWith('http') && !s.startsWith('urn:') && s.length > 3)]) {
        if (value.length > 1) expect(text).not.toContain(value);
      }
    }
  });

  it('passes when the classes are large enough, and generalising more makes a cohort pass', () => {
    const rows = Array.from({ length: 12 }, (_, i) => ({ gender: i % 2 === 0 ? 'female' : 'male', birthYear: i < 6 ? '1980' : '1990' }));
    expect(kAnonymity(rows, ['gender', 'birthYear'], 3)).toMatchObject({ satisfied: true, groups: 4, smallestGroup: 3 });
    expect(kAnonymity(rows, ['gender', 'birthYear'], 5).satisfied).toBe(false);
    expect(kAnonymity(rows, ['gender'], 5).satisfied).toBe(true);
  });

  it('counts a missing quasi-identifier as a value of its own', () => {
    const report = kAnonymity([{ gender: 'male' }, { gender: undefined }, { gender: 'male' }], ['gender'], 2);
    expect(report.offending).toEqual([{ values: { gender: '*' }, size: 1 }]);
  });
});

describe('l-diversity', () => {
  it('refuses a class whose members all share the sensitive value', () => {
    const rows = [
      ...Array.from({ length: 5 }, () => ({ gender: 'female', birthYear: '1970', condition: 'F32' })),
      ...Array.from({ length: 5 }, (_, i) => ({ gender: 'male', birthYear: '1970', condition: ['E11', 'I10', 'J45'][i % 3] })),
    ];
    const report = kAnonymity(rows, ['gender', 'birthYear'], 5, { sensitive: 'condition', l: 2 });
    expect(report.smallestGroup).toBe(5);
    expect(report.smallestDiversity).toBe(1);
    expect(report.offending).toEqual([{ values: { gender: 'female', birthYear: '1970' }, size: 5, distinctSensitive: 1 }]);
    expect(kAnonymity(rows, ['birthYear'], 5, { sensitive: 'condition', l: 2 }).satisfied).toBe(true);
  });

  it('reads the sensitive attribute from the patients\' de-identified Conditions', () => {
    const rows = quasiIdentifierRows(byType(released, 'Patient'), ['gender', 'birthYear'], { sensitive: 'condition', related: released });
    const withConditions = rows.filter((r) => r.condition !== undefined);
    expect(withConditions.length).toBeGreaterThan(0);
    expect(withConditions[0]!.condition).toMatch(/\|/);
    const report = kAnonymity(rows, ['gender', 'birthYear'], 2, { sensitive: 'condition', l: 2 });
    expect(report.offending.every((c) => c.distinctSensitive !== undefined)).toBe(true);
  });
});

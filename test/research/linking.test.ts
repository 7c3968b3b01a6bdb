/**
 * Re-identification across projects: the same patient released by two projects (two secrets) must not be linkable
 * by joining the two releases on any field they both hold.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_DEID_CONFIG, dateOffsetDays, deidentifyResource } from '../../research/index.ts';
import { SECRET_A, SECRET_B, byType, mappedResources, strings, type Json } from './support.ts';

const resources = [
  ...mappedResources('adt/a01-busan-admit-nk1-al1-dg1-in1.expected.json'),
  ...mappedResources('adt/a03-discharge-with-diagnoses.expected.json'),
  ...mappedResources('cda/korean-discharge-summary.expected.json'),
];
const release = (secret: Uint8Array): Json[] =>
  resources.map((r) => deidentifyResource(r, DEFAULT_DEID_CONFIG, { projectSecret: secret, asOf: '2025-01-01' }).resource).filter((r): r is Json => r !== undefined);

const projectA = release(SECRET_A);
const projectB = release(SECRET_B);

describe('two projects releasing the same patients', () => {
  it('give them unrelated ids and date offsets', () => {
    const patientsA = byType(projectA, 'Patient').map((p) => p.id);
    const patientsB = byType(projectB, 'Patient').map((p) => p.id);
    expect(patientsA.length).toBe(3);
    expect(patientsA.filter((id) => patientsB.includes(id))).toEqual([]);
    for (const patient of byType(resources, 'Patient')) {
      expect(dateOffsetDays(SECRET_A, `Patient/${patient.id}`, 365)).not.toBe(dateOffsetDays(SECRET_B, `Patient/${patient.id}`, 365));
    }
  });

  it('share no pseudonym, identifier or exact date a linking attack could join on', () => {
    const valuesA = new Set(strings(projectA));
    const shared = [...new Set(strings(projectB))].filter((value) => valuesA.has(value));
    // What both still hold are codes, code system URLs, displays and coarse values (gender, birth year, state).
    const linking = shared.filter((value) => /^[0-9a-f]{32,64}$/.test(value) || /[0-9a-f]{32}/.test(value) || /^\d{4}-\d{2}-\d{2}/.test(value));
    expect(linking).toEqual([]);
    // The join on every field the patients share finds no exact date and no pseudonym, only quasi-identifiers.
    for (const a of byType(projectA, 'Patient')) {
      const candidates = byType(projectB, 'Patient').filter((b) => b.id === a.id || JSON.stringify(b.identifier) === JSON.stringify(a.identifier));
      expect(candidates).toEqual([]);
    }
  });

  it('keep each patient linked within its own project', () => {
    const patient = byType(projectA, 'Patient').find((p) => p.birthDate === '1980')!;
    const encounters = byType(projectA, 'Encounter').filter((e) => (e.subject as Json).reference === `Patient/${patient.id}`);
    expect(encounters.length).toBeGreaterThan(0);
  });
});

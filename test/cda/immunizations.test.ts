/**
 * The immunizations section converted by mappers/cda/sections/immunizations.ts: route, site, dose (as sent), lot,
 * manufacturer, performer, dose number, a refusal as not-done with its reason, a planned vaccination as a
 * MedicationRequest. Crafted edge cases (test/fixtures/cda/sections/immunizations-edge-cases.xml) and real documents.
 */
import { describe, expect, it } from 'vitest';

import { byIdentifier, convertCorpusDocument, convertSectionFixture, itIsValidAndRepeatable, problemsOf, resolve, resourcesOf } from '../support/cda-section-documents.ts';
import { stringifyJson } from '../../anchor/index.ts';

const TYPES = ['Immunization', 'MedicationRequest', 'Medication', 'Organization', 'Practitioner', 'PractitionerRole'];

describe('immunizations (crafted edge cases)', () => {
  const conversion = convertSectionFixture('immunizations-edge-cases');
  const immunizations = resourcesOf(conversion, 'Immunization');

  itIsValidAndRepeatable('immunizations-edge-cases', conversion, TYPES);

  it('keeps a vaccine\'s route, site, dose as sent, lot, manufacturer, performer and dose number', () => {
    const given = byIdentifier(immunizations, 'IMM-FLU')!;
    expect(given).toMatchObject({
      status: 'completed',
      vaccineCode: { coding: [{ system: 'http://nucc.org/cvx', code: '141' }] },
      occurrenceDateTime: '2023-10-10',
      lotNumber: 'FLU-2023-A',
      route: { coding: [{ code: 'C28161' }] },
      site: { coding: [{ system: 'http://snomed.info/sct', code: '368208006' }] },
      protocolApplied: [{ doseNumberPositiveInt: 2 }],
      note: [{ text: 'Given in clinic.' }],
      performer: [{ function: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0443', code: 'AP' }] } }],
    });
    expect(stringifyJson(given.doseQuantity)).toBe('{"value":0.50,"unit":"mL","system":"http://unitsofmeasure.org","code":"mL"}');
    expect(resolve(conversion, given.manufacturer)).toMatchObject({ name: 'GlaxoSmithKline', identifier: [{ system: 'urn:oid:2.16.840.1.113883.12.227', value: 'SKB' }] });
    const performer = resolve(conversion, (given.performer as Array<{ actor: unknown }>)[0]!.actor)!;
    expect(performer.resourceType).toBe('PractitionerRole');
    expect(resolve(conversion, performer.practitioner)).toMatchObject({ identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: '3333333333' }] });
  });

  it('reads a refused vaccine (negationInd) as not done, with the refusal reason', () => {
    expect(byIdentifier(immunizations, 'IMM-TD')).toMatchObject({
      status: 'not-done',
      statusReason: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'PATOBJ' }] },
    });
  });

  it('reads a planned vaccination (INT) as a MedicationRequest for the vaccine, not as an immunization given', () => {
    expect(byIdentifier(immunizations, 'IMM-PLANNED')).toBeUndefined();
    const request = byIdentifier(resourcesOf(conversion, 'MedicationRequest'), 'IMM-PLANNED')!;
    expect(request).toMatchObject({ intent: 'order', dosageInstruction: [{ timing: { event: ['2024-10-01'] } }] });
    expect(resolve(conversion, request.medicationReference)).toMatchObject({ code: { coding: [{ system: 'http://nucc.org/cvx', code: '141' }] } });
  });
});

describe('immunizations (public documents)', () => {
  it('HL7 CCD: the route and dose @medplum/ccda dropped, and a refusal', () => {
    const conversion = convertCorpusDocument('hl7-c-cda-examples/CCD.xml');
    expect(problemsOf(conversion, TYPES)).toEqual([]);
    const immunizations = resourcesOf(conversion, 'Immunization');
    expect(immunizations).toHaveLength(5);
    expect(immunizations.filter((immunization) => JSON.stringify(immunization.route ?? {}).includes('C28161'))).toHaveLength(5);
    expect(immunizations.filter((immunization) => stringifyJson(immunization.doseQuantity ?? null) === '{"value":50,"unit":"ug","system":"http://unitsofmeasure.org","code":"ug"}')).toHaveLength(4);
    expect(immunizations.filter((immunization) => immunization.status === 'not-done')).toHaveLength(2);
  });

  it('ONC validator sample: every immunization valid, with its performer', () => {
    const conversion = convertCorpusDocument('onc-reference-ccda-validator/170.315_b1_toc_amb_ccd_r21_sample1_v8.xml');
    expect(problemsOf(conversion, TYPES)).toEqual([]);
    const immunizations = resourcesOf(conversion, 'Immunization');
    expect(immunizations.length).toBeGreaterThan(0);
    expect(immunizations.every((immunization) => immunization.route !== undefined)).toBe(true);
  });
});

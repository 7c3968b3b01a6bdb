/**
 * The encounters section converted by mappers/cda/sections/encounters.ts: each encounter with its class (ActCode,
 * else from a CPT code), status (from effectiveTime when none is sent), participants, Locations, reasons, diagnoses
 * and discharge disposition. Crafted edge cases (test/fixtures/cda/sections/encounters-edge-cases.xml) and real
 * documents.
 */
import { describe, expect, it } from 'vitest';

import { byIdentifier, convertCorpusDocument, convertSectionFixture, itIsValidAndRepeatable, problemsOf, resolve, resourcesOf } from '../support/cda-section-documents.ts';

const TYPES = ['Encounter', 'Location', 'Condition', 'Organization', 'Practitioner', 'PractitionerRole'];
const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';

describe('encounters (crafted edge cases)', () => {
  const conversion = convertSectionFixture('encounters-edge-cases');
  const encounters = resourcesOf(conversion, 'Encounter');

  itIsValidAndRepeatable('encounters-edge-cases', conversion, TYPES);

  it('reads an inpatient stay coded by CPT alone: class, status from its end, locations with their times', () => {
    const stay = byIdentifier(encounters, 'ENC-ADMIT')!;
    expect(stay).toMatchObject({
      status: 'finished',
      class: { system: ACT_CODE, code: 'IMP' },
      type: [{ coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '99222' }], text: 'Admission for chest pain' }],
      period: { start: '2024-03-10T08:00:00-05:00', end: '2024-03-15T12:00:00-05:00' },
      reasonCode: [{ coding: [{ code: '29857009' }] }],
      hospitalization: { dischargeDisposition: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0112', code: '01' }] } },
      participant: [{ type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationFunction', code: 'ATTPHYS' }] }], period: { start: '2024-03-10T08:00:00-05:00' } }],
    });
    const locations = stay.location as Array<{ location: unknown; period?: unknown }>;
    expect(locations.map((entry) => entry.period)).toEqual([
      { start: '2024-03-10T08:00:00-05:00', end: '2024-03-12T09:00:00-05:00' },
      { start: '2024-03-12T09:00:00-05:00' },
    ]);
    expect(resolve(conversion, locations[0]!.location)).toMatchObject({
      resourceType: 'Location',
      identifier: [{ system: 'urn:oid:2.16.840.1.113883.19.5.99999.30', value: 'WARD-3E' }],
      name: 'Ward 3E',
      type: [{ coding: [{ system: 'https://www.cdc.gov/nhsn/cdaportal/terminology/codesystem/hsloc.html', code: '1025-6' }] }],
      address: { line: ['1 Hospital Way'], city: 'Portland' },
    });
    expect(resolve(conversion, locations[1]!.location)).toMatchObject({ name: 'Ward 5W' });
  });

  it('makes an Encounter Diagnosis an encounter-diagnosis Condition in the encounter\'s diagnoses', () => {
    const stay = byIdentifier(encounters, 'ENC-ADMIT')!;
    const diagnosis = (stay.diagnosis as Array<{ condition: unknown; rank: number }>)[0]!;
    expect(diagnosis.rank).toBe(1);
    expect(resolve(conversion, diagnosis.condition)).toMatchObject({
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'encounter-diagnosis' }] }],
      clinicalStatus: { coding: [{ code: 'resolved' }] },
      code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'I21.4' }] },
      onsetDateTime: '2024-03-10',
      abatementDateTime: '2024-03-15',
    });
  });

  it('takes the class from an ActCode translation, names a provider known by NPI alone, and one place once', () => {
    const visit = byIdentifier(encounters, 'ENC-FOLLOWUP')!;
    // Started and not ended, no statusCode: C-CDA on FHIR leaves that unknown.
    expect(visit).toMatchObject({ status: 'unknown', class: { code: 'AMB' }, type: [{ coding: [{ code: '185389009' }] }] });
    expect(JSON.stringify(visit.type)).not.toContain(ACT_CODE);
    expect(resolve(conversion, (visit.participant as Array<{ individual: unknown }>)[0]!.individual)).toMatchObject({
      resourceType: 'Practitioner',
      identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: '5555555555' }],
    });
    const stay = byIdentifier(encounters, 'ENC-ADMIT')!;
    expect((visit.location as Array<{ location: unknown }>)[0]!.location).toEqual((stay.location as Array<{ location: unknown }>)[0]!.location);
    expect(resourcesOf(conversion, 'Location')).toHaveLength(2);
  });

  it('says the class of an encounter with a local code only is not known', () => {
    expect(byIdentifier(encounters, 'ENC-UNKNOWN')).toMatchObject({
      status: 'finished',
      class: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] },
    });
  });
});

describe('encounters (public documents)', () => {
  it('HL7 CCD: the urgent care visit keeps its location, performer and reason', () => {
    const conversion = convertCorpusDocument('hl7-c-cda-examples/CCD.xml');
    expect(problemsOf(conversion, TYPES)).toEqual([]);
    const [encounter] = resourcesOf(conversion, 'Encounter');
    expect(encounter).toMatchObject({ status: 'finished', class: { code: 'AMB' }, period: { start: '2012-09-27T13:00:00-05:00' }, reasonCode: [{ coding: [{ code: '233604007' }] }] });
    expect(resolve(conversion, (encounter!.location as Array<{ location: unknown }>)[0]!.location)).toMatchObject({ name: 'Good Health Urgent Care', address: { city: 'Portland' } });
    expect(resolve(conversion, (encounter!.participant as Array<{ individual: unknown }>)[0]!.individual)).toMatchObject({ resourceType: 'PractitionerRole', code: [{ coding: [{ code: '59058001' }] }] });
  });

  it('every encounter of the public documents with a LOC participant names its Location', () => {
    for (const file of ['amida-blue-button/CCDA_NullFlavorSample_v1.xml', 'nurrahealth-ccda-to-fhir/practice_fusion_jeremy_bates.xml', 'onc-reference-ccda-validator/ivl_real_example.xml']) {
      const conversion = convertCorpusDocument(file);
      expect(problemsOf(conversion, TYPES), file).toEqual([]);
      const located = resourcesOf(conversion, 'Encounter').filter((encounter) => encounter.location !== undefined);
      expect(located.length, file).toBeGreaterThan(0);
    }
  });
});

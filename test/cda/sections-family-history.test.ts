/**
 * Family history -> FamilyMemberHistory (mappers/cda/sections/family-history.ts): on crafted edge cases
 * (test/fixtures/cda/sections/family-history-edge-cases.xml) and on the HL7 CCD of the public corpus.
 */

import { describe, expect, it } from 'vitest';

import { convert, corpusDocument, expectValid, ofType, section, sectionFixture } from './sections-support.ts';

const SNOMED = 'http://snomed.info/sct';
const UCUM = 'http://unitsofmeasure.org';

describe('family history', () => {
  const conversion = convert(sectionFixture('family-history-edge-cases.xml'));
  const [mother, unknown] = section(conversion, 'Family history').entries;

  it('is a FamilyMemberHistory per relative: relationship, name, sex, birth and death, and their conditions', () => {
    expect(mother).toMatchObject({
      resourceType: 'FamilyMemberHistory',
      status: 'completed',
      patient: { reference: `Patient/${conversion.patientId}` },
      name: 'Sunhee Park',
      relationship: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'MTH' }] },
      sex: { coding: [{ system: 'http://hl7.org/fhir/administrative-gender', code: 'female' }] },
      bornDate: '1935',
      deceasedDate: '2002-03',
      condition: [
        {
          code: { coding: [{ system: SNOMED, code: '254837009' }] },
          outcome: { coding: [{ system: SNOMED, code: '419099009' }] },
          contributedToDeath: true,
          onsetAge: { value: 61, unit: 'a', system: UCUM, code: 'a' },
        },
        { code: { coding: [{ system: SNOMED, code: '38341003' }] }, onsetPeriod: { start: '1980' } },
      ],
    });
    expect(mother!.identifier).toEqual([{ system: 'urn:oid:2.16.840.1.113883.19.5.99999.60', value: 'FH-MOTHER' }]);
    expectValid(conversion);
  });

  it('says a relationship sent as a nullFlavor is unknown, reads a condition\'s text from the narrative, and reports one stated as absent', () => {
    expect(unknown).toMatchObject({
      relationship: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] },
      condition: [{ code: { text: 'Early-onset hearing loss' } }],
    });
    expect(unknown!.condition).toHaveLength(1);
    expect(conversion.issues).toContainEqual(expect.objectContaining({
      code: 'value-not-converted',
      location: '/ClinicalDocument/component/structuredBody/component[1]/section/entry[2]/organizer',
    }));
  });

  it('takes a family history observation sent without an organizer as its relative\'s', () => {
    expect(section(conversion, 'Family history (other)').entries).toMatchObject([
      { resourceType: 'FamilyMemberHistory', relationship: { coding: [{ code: 'BRO' }] }, condition: [{ code: { coding: [{ code: '195967001' }] } }] },
    ]);
  });

  it('reads the father of the HL7 CCD, of whom @medplum/ccda made Observations naming no relative', () => {
    const ccd = convert(corpusDocument('hl7-c-cda-examples/CCD.xml'));
    const histories = ofType(ccd, 'FamilyMemberHistory');
    expect(histories).toHaveLength(1);
    expect(histories[0]).toMatchObject({
      relationship: { coding: [{ code: 'FTH' }, { system: SNOMED, code: '9947008' }] },
      sex: { coding: [{ code: 'male' }] },
      bornDate: '1910',
      deceasedBoolean: true,
      condition: [
        { code: { coding: [{ code: '22298006' }] }, outcome: { coding: [{ code: '419099009' }] }, contributedToDeath: true, onsetAge: { value: 57, code: 'a' } },
        { code: { coding: [{ code: '44054006' }] }, onsetAge: { value: 40, code: 'a' } },
      ],
    });
    // Nothing of the section is an Observation any more.
    expect(section(ccd, 'FAMILY HISTORY').entries.map((entry) => entry.resourceType)).toEqual(['FamilyMemberHistory']);
    expectValid(ccd);
  });
});

/**
 * Problems, health concerns and encounter diagnoses -> Condition (mappers/cda/sections/conditions.ts), after C-CDA on
 * FHIR's problem mapping: on crafted edge cases (test/fixtures/cda/sections/conditions-edge-cases.xml) and on the
 * public corpus's HL7 C-CDA R2.1 examples.
 */

import { describe, expect, it } from 'vitest';

import { deterministicId } from '../../mappers/ids.ts';

import { codeOf, convert, corpusDocument, expectValid, ofType, resourceOf, section, sectionFixture, type Draft } from './sections-support.ts';

const edgeCases = convert(sectionFixture('conditions-edge-cases.xml'));
const problems = section(edgeCases, 'Problems').entries;
const byIdentifier = (entries: Draft[], value: string): Draft => {
  const found = entries.find((entry) => (entry.identifier as Array<{ value: string }> | undefined)?.some((identifier) => identifier.value === value));
  expect(found, value).toBeDefined();
  return found!;
};
const category = (condition: Draft): string[] => (condition.category as unknown[]).map(codeOf) as string[];

describe('problems', () => {
  it('make a Condition of every problem observation of a concern act; the first keeps the id the act gave it', () => {
    const asthma = byIdentifier(problems, 'PROB-1');
    const hypertension = byIdentifier(problems, 'PROB-2');
    expect(asthma.id).toBe(deterministicId('CdaElement', '2.16.840.1.113883.19.5.99999.30', 'CONCERN-1'));
    expect(hypertension.id).toBe(deterministicId('CdaElement', '2.16.840.1.113883.19.5.99999.31', 'PROB-2'));
    expect(asthma.identifier).toEqual([
      { system: 'urn:oid:2.16.840.1.113883.19.5.99999.30', value: 'CONCERN-1' },
      { system: 'urn:oid:2.16.840.1.113883.19.5.99999.31', value: 'PROB-1' },
    ]);
    expect(hypertension.identifier).toEqual([{ system: 'urn:oid:2.16.840.1.113883.19.5.99999.31', value: 'PROB-2' }]);
  });

  it('read the value with its translations, the Problem Status, the onset as sent, the comment and the author', () => {
    const asthma = byIdentifier(problems, 'PROB-1');
    expect(asthma).toMatchObject({
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'remission' }] },
      verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' }] },
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'problem-list-item' }] }],
      code: {
        coding: [
          { system: 'http://snomed.info/sct', code: '195967001', display: 'Asthma' },
          { system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'J45.909', display: 'Unspecified asthma, uncomplicated' },
        ],
      },
      onsetDateTime: '2014-03',
      recordedDate: '2020-01-05',
      note: [{ text: 'Triggered by cold air.' }],
    });
    expect(asthma.encounter).toBeUndefined();
    expect(resourceOf(edgeCases, asthma.recorder.reference)).toMatchObject({ resourceType: 'Practitioner', name: [{ family: 'Choi', given: ['Jin'] }] });
  });

  it('take the onset age when the onset has no date, and the concern\'s status when no Problem Status is sent', () => {
    expect(byIdentifier(problems, 'PROB-2')).toMatchObject({
      clinicalStatus: { coding: [{ code: 'active' }] },
      onsetAge: { value: 52, unit: 'a', system: 'http://unitsofmeasure.org', code: 'a' },
    });
    expect(byIdentifier(problems, 'PROB-2').onsetDateTime).toBeUndefined();
  });

  it('file "no known problems" (negationInd) as refuted, never as a problem the patient has', () => {
    expect(byIdentifier(problems, 'PROB-NONE')).toMatchObject({
      verificationStatus: { coding: [{ code: 'refuted' }] },
      code: { coding: [{ code: '55607006' }] },
    });
  });

  it('make a problem ended at an unknown time inactive, its abatement marked unknown', () => {
    const diabetes = byIdentifier(problems, 'PROB-3');
    expect(diabetes.clinicalStatus).toMatchObject({ coding: [{ code: 'inactive' }] });
    expect(diabetes.abatementDateTime).toBeUndefined();
    expect(diabetes._abatementDateTime).toEqual({ extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] });
  });

  it('take a nullFlavor value\'s text from the narrative, and say why a value with none is not known', () => {
    expect(byIdentifier(problems, 'PROB-4').code).toEqual({ text: 'Rash of the left forearm, itchy' });
    expect(byIdentifier(problems, 'PROB-5').code).toEqual({ extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] });
  });

  it('convert a problem observation sent without its concern act', () => {
    expect(section(edgeCases, 'More problems').entries).toMatchObject([{ resourceType: 'Condition', code: { coding: [{ code: '90560007' }] }, onsetDateTime: '2022-08-12' }]);
  });

  it('convert every problem observation of the HL7 CCD, where @medplum/ccda kept only the first of an act', () => {
    const conversion = convert(corpusDocument('hl7-c-cda-examples/CCD.xml'));
    const codes = section(conversion, 'PROBLEMS').entries.map((condition) => codeOf(condition.code));
    expect(codes).toEqual(['233604007', '29857009', '194828000', '233604007']);
    expectValid(conversion);
  });

  it('file the "no known problems" of an HL7 R2.1 example as refuted', () => {
    const conversion = convert(corpusDocument('hl7-c-cda-examples/CCD_Parent_Document_Replace_C-CDAR2.1.xml'));
    const [none] = ofType(conversion, 'Condition').filter((condition) => category(condition).includes('problem-list-item'));
    expect(none).toMatchObject({ verificationStatus: { coding: [{ code: 'refuted' }] }, code: { coding: [{ code: '55607006' }] } });
  });
});

describe('health concerns', () => {
  const concerns = section(edgeCases, 'Health concerns').entries;

  it('are Conditions of category health-concern, from the problems an R2.1 Health Concern Act relates (REFR)', () => {
    const dyspnea = byIdentifier(concerns, 'HC-PROB-1');
    expect(category(dyspnea)).toEqual(['health-concern']);
    expect(dyspnea).toMatchObject({
      code: { coding: [{ code: '267036007' }] },
      clinicalStatus: { coding: [{ code: 'active' }] },
      evidence: [{ code: [{ coding: [{ code: '28743005', display: 'Productive cough' }] }] }],
      onsetDateTime: '2024-03-08',
    });
    // A concern is not a confirmed diagnosis.
    expect(dyspnea.verificationStatus).toBeUndefined();
  });

  it('keep a risk a risk: the Risk Concern Act\'s code is a category of its own', () => {
    const falls = byIdentifier(concerns, 'RISK-PROB-1');
    expect(category(falls)).toEqual(['health-concern', '281694009']);
  });

  it('say at each concern act that makes no Condition why, not again as a count for the section', () => {
    // As vendors' certification samples send them: "no known health concerns" (negationInd), and a concern that only
    // points at an entry of another section (Entry Reference).
    const extra = `<text>Shortness of breath; risk of falls</text>
          <entry>
            <act classCode="ACT" moodCode="EVN" negationInd="true">
              <templateId root="2.16.840.1.113883.10.20.22.4.132" extension="2015-08-01"/>
              <id root="2.16.840.1.113883.19.5.99999.40" extension="HC-NONE"/>
              <code code="75310-3" codeSystem="2.16.840.1.113883.6.1" displayName="Health concern"/>
              <statusCode code="active"/>
            </act>
          </entry>
          <entry>
            <act classCode="ACT" moodCode="EVN">
              <templateId root="2.16.840.1.113883.10.20.22.4.132" extension="2015-08-01"/>
              <id root="2.16.840.1.113883.19.5.99999.40" extension="HC-REF"/>
              <code code="75310-3" codeSystem="2.16.840.1.113883.6.1" displayName="Health concern"/>
              <statusCode code="active"/>
              <entryRelationship typeCode="REFR">
                <act classCode="ACT" moodCode="EVN">
                  <templateId root="2.16.840.1.113883.10.20.22.4.122"/>
                  <id root="2.16.840.1.113883.19.5.99999.41" extension="ALLERGY-1"/>
                  <code nullFlavor="NP"/>
                  <statusCode code="completed"/>
                </act>
              </entryRelationship>
            </act>
          </entry>`;
    const conversion = convert(sectionFixture('conditions-edge-cases.xml').toString('utf8').replace('<text>Shortness of breath; risk of falls</text>', extra));
    expect(section(conversion, 'Health concerns').entries.map((condition) => condition.identifier?.[0]?.value)).toEqual(concerns.map((condition) => condition.identifier?.[0]?.value));
    const at = conversion.issues.filter((issue) => issue.code === 'entries-not-converted' && /Health concerns|\/entry\[[12]\]\/act$/.test(`${issue.text} ${issue.location}`));
    expect(at.map((issue) => `${issue.severity} ${issue.location?.replace(/^.*\/section/, '')}`)).toEqual(['information /entry[1]/act', 'information /entry[2]/act']);
    expect(at[0]!.text).toMatch(/stated as absent/);
    expect(at[1]!.text).toMatch(/converted where it is given/);
  });

  it('come out of the HL7 Care Plan example, where @medplum/ccda found none', () => {
    const conversion = convert(corpusDocument('hl7-c-cda-examples/Care_Plan.xml'));
    const { entries } = section(conversion, 'Health Concerns Section');
    expect(entries.map((condition) => codeOf(condition.code))).toEqual(['409623005', '233604007', '409623005']);
    expect(entries.every((condition) => category(condition)[0] === 'health-concern')).toBe(true);
    expect(entries[0]!.evidence).toEqual([{ code: [{ coding: [{ system: 'http://snomed.info/sct', code: '28743005', display: 'Productive cough' }], text: 'Productive cough' }] }]);
    expectValid(conversion);
  });
});

describe('encounter diagnoses', () => {
  it('are Conditions of category encounter-diagnosis in the encounter the document is about', () => {
    const [pneumonia] = section(edgeCases, 'Admission diagnosis').entries;
    expect(category(pneumonia!)).toEqual(['encounter-diagnosis']);
    expect(pneumonia).toMatchObject({ code: { coding: [{ code: '385093006' }] }, onsetDateTime: '2024-03-10', verificationStatus: { coding: [{ code: 'confirmed' }] } });
    // A diagnosis act says nothing of the problem's course.
    expect(pneumonia!.clinicalStatus).toBeUndefined();
    const composition = ofType(edgeCases, 'Composition')[0]!;
    expect(pneumonia!.encounter).toEqual(composition.encounter);
    expect(resourceOf(edgeCases, pneumonia!.encounter.reference)).toMatchObject({ resourceType: 'Encounter', identifier: [{ value: 'VISIT-77' }] });
    expectValid(edgeCases);
  });

  it('come out of the HL7 Discharge Summary (admission, discharge), Operative Note (preoperative) and Procedure Note (postprocedure)', () => {
    const discharge = convert(corpusDocument('hl7-c-cda-examples/Discharge_Summary.xml'));
    for (const title of ['ADMISSION DIAGNOSIS', 'DISCHARGE DIAGNOSIS']) {
      const [appendicitis] = section(discharge, title).entries;
      expect(appendicitis).toMatchObject({ resourceType: 'Condition', code: { coding: [{ code: '74400008' }] }, onsetDateTime: '2014-09-08' });
      expect(category(appendicitis!)).toEqual(['encounter-diagnosis']);
      expect(appendicitis!.encounter).toEqual(ofType(discharge, 'Composition')[0]!.encounter);
    }
    expectValid(discharge);

    const operative = convert(corpusDocument('hl7-c-cda-examples/Operative_Note.xml'));
    expect(section(operative, 'PREOPERATIVE DIAGNOSIS').entries.map((condition) => codeOf(condition.code))).toEqual(['74400008']);
    expectValid(operative);

    const procedure = convert(corpusDocument('hl7-c-cda-examples/Procedure_Note.xml'));
    const postprocedure = ofType(procedure, 'Condition').filter((condition) => category(condition)[0] === 'encounter-diagnosis').map((condition) => codeOf(condition.code));
    expect(postprocedure).toEqual(expect.arrayContaining(['103679000', '429430001']));
    expectValid(procedure);
  });
});

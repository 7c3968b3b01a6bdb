/**
 * Functional status, mental status and nutrition -> Observation (mappers/cda/sections/assessments.ts): categories after
 * US Core's screening and assessment observations, organizers as grouping Observations, values of any type, on
 * crafted edge cases (test/fixtures/cda/sections/assessments-edge-cases.xml) and on the HL7 examples of the corpus.
 */

import { describe, expect, it } from 'vitest';

import { LosslessNumber } from '../../mappers/fhir-decimal.ts';

import { codeOf, convert, corpusDocument, expectValid, resourceOf, section, sectionFixture, type Draft } from './sections-support.ts';

const SURVEY = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'survey', display: 'Survey' }] };
const usCore = (code: string, display: string) => ({ coding: [{ system: 'http://hl7.org/fhir/us/core/CodeSystem/us-core-category', code, display }] });
const members = (conversion: ReturnType<typeof convert>, observation: Draft): Draft[] =>
  (observation.hasMember as Array<{ reference: string }>).map((member) => resourceOf(conversion, member.reference));

describe('functional status', () => {
  const conversion = convert(sectionFixture('assessments-edge-cases.xml'));
  const [organizer, problem] = section(conversion, 'Functional status').entries;

  it('makes an organizer a grouping Observation of its observations, spanning their times', () => {
    expect(organizer).toMatchObject({
      resourceType: 'Observation',
      status: 'final',
      category: [SURVEY, usCore('functional-status', 'Functional Status')],
      code: { coding: [{ system: 'http://hl7.org/fhir/sid/icf', code: 'd5' }] },
      effectivePeriod: { start: '2024-03-01', end: '2024-03-05' },
    });
    expect(organizer!.valueCodeableConcept).toBeUndefined();
    const [bathing, barthel] = members(conversion, organizer!);
    expect(bathing).toMatchObject({ code: { coding: [{ code: '46008-9' }] }, valueCodeableConcept: { coding: [{ code: '371153006' }] }, effectiveDateTime: '2024-03-01' });
    expect(barthel).toMatchObject({ code: { coding: [{ code: '96761-2' }] }, valueInteger: 85, category: [SURVEY, usCore('functional-status', 'Functional Status')] });
    expect(members(conversion, barthel!)).toMatchObject([{ code: { coding: [{ code: '83184-2' }] }, valueInteger: 10 }]);
    expectValid(conversion);
  });

  it('reads a functional status problem (R1.1) as an Observation, and leaves one stated as not found out, reported', () => {
    expect(problem).toMatchObject({ code: { coding: [{ code: '248536006' }] }, valueCodeableConcept: { coding: [{ code: '60845006' }] }, effectiveDateTime: '2023-11-01' });
    expect(conversion.issues).toContainEqual(expect.objectContaining({ code: 'entries-not-converted', severity: 'information', location: '/ClinicalDocument/component/structuredBody/component[1]/section/entry[3]/observation' }));
  });

  it('files the HL7 CCD\'s self-care observations under US Core\'s functional-status category as well as survey', () => {
    const ccd = convert(corpusDocument('hl7-c-cda-examples/CCD.xml'));
    const [selfCare] = section(ccd, 'FUNCTIONAL STATUS').entries;
    expect(selfCare!.category).toEqual([SURVEY, usCore('functional-status', 'Functional Status')]);
    expect(members(ccd, selfCare!).map((member) => codeOf(member.valueCodeableConcept))).toEqual(['165245003', '371153006']);
    expectValid(ccd);
  });
});

describe('functional status of a CCD R1.0 document', () => {
  it('takes the observations of the problem acts a HITSP C32 wraps them in', () => {
    const conversion = convert(corpusDocument('amida-blue-button/C32.xml'));
    const entries = section(conversion, 'Functional Status').entries;
    expect(entries.map((entry) => codeOf(entry.valueCodeableConcept))).toEqual(['105504002', '386807006']);
    expect(entries.every((entry) => JSON.stringify(entry.category) === JSON.stringify([SURVEY, usCore('functional-status', 'Functional Status')]))).toBe(true);
    expectValid(conversion);
  });
});

describe('mental status', () => {
  it('is cognitive status, a coded ordinal value read as a CodeableConcept (a section found by its LOINC code)', () => {
    const conversion = convert(sectionFixture('assessments-edge-cases.xml'));
    expect(section(conversion, 'Mental status').entries).toMatchObject([
      { category: [SURVEY, usCore('cognitive-status', 'Cognitive Status')], valueCodeableConcept: { coding: [{ system: 'http://loinc.org', code: 'LA6569-3' }] } },
    ]);
  });

  it('comes out of the HL7 Consultation Note: two observations and an organizer of two', () => {
    const conversion = convert(corpusDocument('hl7-c-cda-examples/Consultation_Note.xml'));
    const entries = section(conversion, 'MENTAL STATUS').entries;
    expect(entries.map((entry) => codeOf(entry.valueCodeableConcept) ?? 'organizer')).toEqual(['11163003', '61372001', 'organizer']);
    expect(members(conversion, entries[2]!).map((member) => codeOf(member.valueCodeableConcept))).toEqual(['286569004', '288760009']);
    expectValid(conversion);
  });
});

describe('nutrition', () => {
  it('is a Nutritional Status Observation whose assessments are its members, a quantity kept as sent', () => {
    const conversion = convert(sectionFixture('assessments-edge-cases.xml'));
    const [status] = section(conversion, 'Nutrition').entries;
    expect(status).toMatchObject({ category: [SURVEY], code: { coding: [{ code: '75305-3' }] }, valueCodeableConcept: { coding: [{ code: '248324001' }] } });
    const [diet, intake] = members(conversion, status!);
    expect(diet).toMatchObject({ valueCodeableConcept: { coding: [{ code: '386619000' }] } });
    expect(intake!.valueQuantity).toEqual({ value: new LosslessNumber('1800.0'), unit: 'kcal/(24.h)', system: 'http://unitsofmeasure.org', code: 'kcal/(24.h)' });
  });
});

describe('health status evaluations and outcomes', () => {
  it('is an Outcome Observation per evaluation, with its value and time, where it was left out as a section of no known kind', () => {
    const outcomes = `
      <component>
        <section>
          <templateId root="2.16.840.1.113883.10.20.22.2.61"/>
          <code code="11383-7" codeSystem="2.16.840.1.113883.6.1"/>
          <title>Health Status Evaluations and Outcomes</title>
          <text><paragraph ID="outcome-1">Oxygen saturation 95 % on room air: goal met</paragraph></text>
          <entry>
            <observation classCode="OBS" moodCode="EVN">
              <templateId root="2.16.840.1.113883.10.20.22.4.144"/>
              <id root="2.16.840.1.113883.19.5" extension="OUT-1"/>
              <code code="59408-5" codeSystem="2.16.840.1.113883.6.1" displayName="Oxygen saturation in Arterial blood by Pulse oximetry"/>
              <text><reference value="#outcome-1"/></text>
              <statusCode code="completed"/>
              <effectiveTime value="20240316"/>
              <value xsi:type="PQ" value="95" unit="%"/>
            </observation>
          </entry>
        </section>
      </component>
    </structuredBody>`;
    const conversion = convert(sectionFixture('assessments-edge-cases.xml').toString().replace('</structuredBody>', outcomes));
    const [outcome] = section(conversion, 'Health Status Evaluations and Outcomes').entries;
    expect(outcome).toMatchObject({ category: [SURVEY], code: { coding: [{ code: '59408-5' }] }, effectiveDateTime: '2024-03-16' });
    expect(outcome!.valueQuantity).toMatchObject({ unit: '%', code: '%' });
    expect(conversion.issues.filter((issue) => issue.text.includes('Health Status'))).toEqual([]);
    expectValid(conversion);
  });

  it('notes, rather than warns of, an outcome act that only refers to another document', () => {
    // HL7's Care Plan: the Health Status Evaluations section's second entry names the discharge summary it judged by.
    const conversion = convert(corpusDocument('hl7-c-cda-examples/Care_Plan.xml'));
    const at = '/ClinicalDocument/component/structuredBody/component[4]/section';
    expect(conversion.issues.filter((issue) => issue.location?.startsWith(at)).map((issue) => [issue.severity, issue.code, issue.location!.slice(at.length)])).toEqual([
      ['information', 'entries-not-converted', '/entry[2]/act'],
    ]);
  });
});

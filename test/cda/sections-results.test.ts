/**
 * Results -> DiagnosticReport and Observation (mappers/cda/sections/results.ts, observations.ts): every CDA value type,
 * reference ranges, interpretation, statuses and the report's time and category, on crafted edge cases
 * (test/fixtures/cda/sections/results-edge-cases.xml) and on the HL7 CCD of the public corpus.
 */

import { describe, expect, it } from 'vitest';

import { LosslessNumber } from '../../mappers/fhir-decimal.ts';

import { codeOf, convert, corpusDocument, expectValid, ofType, resourceOf, section, sectionFixture, type Draft } from './sections-support.ts';

const UCUM = 'http://unitsofmeasure.org';
const LAB = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'LAB', display: 'Laboratory' }] };
const LABORATORY = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory', display: 'Laboratory' }] };

const conversion = convert(sectionFixture('results-edge-cases.xml'));
const [panel, imaging, alone] = section(conversion, 'Results').entries;
const results = (report: Draft): Draft[] => (report.result as Array<{ reference: string }>).map((result) => resourceOf(conversion, result.reference));
const byCode = (report: Draft, code: string): Draft => {
  const found = results(report).find((result) => codeOf(result.code) === code);
  expect(found, code).toBeDefined();
  return found!;
};

describe('a result organizer', () => {
  it('is a DiagnosticReport of its results: code, LAB category, status, and the span of its results when it has no time', () => {
    expect(panel).toMatchObject({
      resourceType: 'DiagnosticReport',
      identifier: [{ system: 'urn:oid:2.16.840.1.113883.19.5.99999.70', value: 'PANEL-1' }],
      // Still active with results already in: preliminary.
      status: 'preliminary',
      category: [LAB],
      code: { coding: [{ system: 'http://loinc.org', code: '24323-8' }] },
      subject: { reference: `Patient/${conversion.patientId}` },
      effectivePeriod: { start: '2024-03-12T08:30:00-05:00', end: '2024-03-12T09:00:00-05:00' },
    });
    // The negated result is left out; the other eight are its results.
    expect(results(panel!)).toHaveLength(8);
    expect(results(panel!).every((result) => JSON.stringify(result.category) === JSON.stringify([LABORATORY]))).toBe(true);
    expectValid(conversion);
  });

  it('takes the category the organizer sends (sdtc:category), and a code sent as a nullFlavor from its original text', () => {
    expect(imaging).toMatchObject({
      status: 'final',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'RAD' }] }],
      code: { text: 'Chest X-ray' },
      effectivePeriod: { start: '2024-03-11T10:15:00-05:00', end: '2024-03-11T10:30:00-05:00' },
    });
    expect(results(imaging!)).toMatchObject([{ valueString: 'No acute cardiopulmonary process.' }]);
    expect(results(imaging!)[0]!.category).toBeUndefined();
  });

  it('leaves a result sent without an organizer an Observation alone', () => {
    expect(alone).toMatchObject({ resourceType: 'Observation', code: { coding: [{ code: '4548-4' }] }, effectiveDateTime: '2024-02-01' });
    expect(alone!.valueQuantity).toEqual({ value: new LosslessNumber('6.40'), unit: '%', system: UCUM, code: '%' });
  });
});

describe('a result observation', () => {
  it('keeps its value as sent, its interpretation, method, body site and comment, and the normal one of its ranges', () => {
    const glucose = byCode(panel!, '2345-7');
    expect(glucose.valueQuantity).toEqual({ value: new LosslessNumber('105.50'), unit: 'mg/dL', system: UCUM, code: 'mg/dL' });
    expect(glucose).toMatchObject({
      status: 'final',
      effectiveDateTime: '2024-03-12T08:30:00-05:00',
      interpretation: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'H' }] }],
      method: { coding: [{ code: '702659008' }] },
      bodySite: { coding: [{ code: '368208006' }] },
      note: [{ text: 'Fasting sample.' }],
    });
    expect(glucose.referenceRange).toEqual([{ low: { value: 70, unit: 'mg/dL', system: UCUM, code: 'mg/dL' }, high: { value: 99, unit: 'mg/dL', system: UCUM, code: 'mg/dL' } }]);
  });

  it('reads every CDA value type', () => {
    expect(byCode(panel!, '1988-5').valueQuantity).toEqual({ value: 0.5, unit: 'mg/dL', system: UCUM, code: 'mg/dL', comparator: '<' });
    expect(byCode(panel!, '1988-5').referenceRange).toEqual([{ text: 'Negative' }]);
    expect(byCode(panel!, '5821-4').valueInteger).toBe(3);
    expect(byCode(panel!, '33339-8').valueBoolean).toBe(false);
    expect(byCode(panel!, '6301-6').valueQuantity).toEqual({ value: new LosslessNumber('1.10') });
    expect(byCode(panel!, '5370-2').valueRatio).toEqual({ numerator: { value: 1 }, denominator: { value: 64 } });
    expect(byCode(panel!, '5767-9').valueString).toBe('Cloudy, pale yellow');
  });

  it('says why a value is not there (nullFlavor), and is registered while still active without one', () => {
    const sodium = byCode(panel!, '2951-2');
    expect(sodium).toMatchObject({ status: 'registered', dataAbsentReason: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'temp-unknown' }] } });
    expect(sodium.valueQuantity).toBeUndefined();
  });

  it('keeps its decimals as sent when the conversion renames another resource of the document', () => {
    // A vital sign whose author names no one: @medplum/ccda makes a Practitioner under a random id, which the
    // conversion renames, rebuilding every resource that refers to it (a regression: the rebuild once turned the
    // exact decimals into plain objects).
    const vitals = `<component><section><templateId root="2.16.840.1.113883.10.20.22.2.4.1"/><code code="8716-3" codeSystem="2.16.840.1.113883.6.1"/>
      <title>Vital signs</title><text>Weight 72.50 kg</text><entry><organizer classCode="CLUSTER" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.26"/><id root="2.16.840.1.113883.19.5.99999.90" extension="VS-1"/>
      <code code="46680005" codeSystem="2.16.840.1.113883.6.96"/><statusCode code="completed"/><effectiveTime value="20240312"/>
      <component><observation classCode="OBS" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.27"/>
      <id root="2.16.840.1.113883.19.5.99999.91" extension="VS-WEIGHT"/><code code="29463-7" codeSystem="2.16.840.1.113883.6.1"/>
      <statusCode code="completed"/><effectiveTime value="20240312"/><value xsi:type="PQ" value="72.50" unit="kg"/>
      <author><time value="20240312"/></author></observation></component></organizer></entry></section></component>`;
    const renamed = convert(sectionFixture('results-edge-cases.xml').toString('utf8').replace('</structuredBody>', `${vitals}</structuredBody>`));
    const glucose = ofType(renamed, 'Observation').find((observation) => codeOf(observation.code) === '2345-7')!;
    expect(glucose.valueQuantity.value).toEqual(new LosslessNumber('105.50'));
    expectValid(renamed);
  });

  it('is left out, reported, when stated as not found (negationInd)', () => {
    expect(ofType(conversion, 'Observation').some((observation) => codeOf(observation.code) === '5778-6')).toBe(false);
    expect(conversion.issues).toContainEqual(expect.objectContaining({ code: 'value-not-converted', location: '/ClinicalDocument/component/structuredBody/component[1]/section/entry[1]/organizer' }));
  });
});

describe('the results of the HL7 CCD', () => {
  const ccd = convert(corpusDocument('hl7-c-cda-examples/CCD.xml'));
  const [cbc, chemistry] = section(ccd, 'RESULTS').entries;

  it('are two DiagnosticReports: a final CBC of five results, and a chemistry panel still pending', () => {
    expect(cbc).toMatchObject({ resourceType: 'DiagnosticReport', status: 'final', category: [LAB], code: { coding: [{ code: '57021-8' }] }, effectiveDateTime: '2008-03-19T08:30:00-08:00' });
    expect((cbc!.result as unknown[]).length).toBe(5);
    expect(chemistry).toMatchObject({ resourceType: 'DiagnosticReport', status: 'registered', code: { coding: [{ code: '166312007' }] } });
    const [urea] = (chemistry!.result as Array<{ reference: string }>).map((result) => resourceOf(ccd, result.reference));
    expect(urea).toMatchObject({ status: 'registered', dataAbsentReason: { coding: [{ code: 'unknown' }] } });
    expectValid(ccd);
  });

  it('keep the interpretation and reference range @medplum/ccda left out or rounded', () => {
    const [hemoglobin, , platelets, , erythrocytes] = (cbc!.result as Array<{ reference: string }>).map((result) => resourceOf(ccd, result.reference));
    expect(hemoglobin!.interpretation).toEqual([{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'N', display: 'Normal' }], text: 'Normal' }]);
    expect(platelets!.interpretation).toMatchObject([{ coding: [{ code: 'LX' }] }]);
    expect(hemoglobin!.referenceRange).toEqual([{ low: { value: new LosslessNumber('12.0'), unit: 'g/dL', system: UCUM, code: 'g/dL' }, high: { value: 15.5, unit: 'g/dL', system: UCUM, code: 'g/dL' } }]);
    expect((erythrocytes!.referenceRange as Array<{ low: { value: unknown } }>)[0]!.low.value).toEqual(new LosslessNumber('3.90'));
  });
});

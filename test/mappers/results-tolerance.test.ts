/**
 * Results degrade field by field: what a lab sends that cannot be read as it stands costs that value, that status
 * or that one observation, with an issue at its OBX, never the rest of the report; and what one report cannot be
 * built from costs that report, never the message's others.
 */
import { describe, expect, it } from 'vitest';
import { parseHl7 } from '../../formats/hl7v2/index.ts';
import { defaultHl7MappingOptions, mapHl7Message, mergeDraft, validateFhirResource, type MappingResult } from '../../mappers/index.ts';

const oru = (...obx: string[]): string =>
  [
    'MSH|^~\\&|LIS|HOSP|ANCHORLINE|HUB|20240101120000||ORU^R01|C1|P|2.5.1',
    'PID|1||MRN1^^^HOSP^MR||DOE^JANE||19800101|F',
    'OBR|1|PL1|FL1^LIS|CBC^Blood count^L|||20240101110000|||||||||||||||20240101115900|||F',
    ...obx,
  ].join('\r');

function map(text: string): MappingResult {
  return mapHl7Message(parseHl7(text), defaultHl7MappingOptions);
}

const observations = (result: MappingResult) => result.drafts.filter((d) => d.resourceType === 'Observation');
const issues = (result: MappingResult) => (result.issues ?? []).map((i) => `${i.code}@${i.location}`);

describe('result tolerance', () => {
  it('keeps two OBX with the same set id and code as two observations, the later under its position', () => {
    const result = map(oru('OBX|1|NM|WBC^WBC^L||5.2|10*3/uL|||||F', 'OBX|1|NM|WBC^WBC^L||5.9|10*3/uL|||||F'));
    const [first, second] = observations(result);
    expect(first!.id).not.toBe(second!.id);
    expect(issues(result)).toEqual(['ANCHORLINE_ISSUE_DUPLICATE_KEY@OBX[2]-1']);
    const report = result.drafts.find((d) => d.resourceType === 'DiagnosticReport')!;
    expect(report['result']).toEqual([{ reference: `Observation/${first!.id}` }, { reference: `Observation/${second!.id}` }]);
    // The same message again names the same resources: positions are stable.
    expect(observations(map(oru('OBX|1|NM|WBC^WBC^L||5.2|10*3/uL|||||F', 'OBX|1|NM|WBC^WBC^L||5.9|10*3/uL|||||F'))).map((o) => o.id)).toEqual([first!.id, second!.id]);
  });

  it('reads a report sent one line per OBX (same set id, type, code, sub-id and status) as one text, and keeps other OBX apart', () => {
    const lines = ['OBX||FT|RPT^Report^L||CT CHEST||||||P', 'OBX||FT|RPT^Report^L||||||||P', 'OBX||FT|RPT^Report^L||IMPRESSION: no nodules.||||||P', 'NTE|1||read by two'];
    const result = map(oru(...lines, 'OBX||FT|RPT^Report^L||Addendum follows.||||||F', 'OBX|1|NM|WBC^WBC^L||5.2|10*3/uL|||||F', 'OBX|1|NM|WBC^WBC^L||5.9|10*3/uL|||||F'));
    const [report, addendum, wbc, again] = observations(result);
    // The lines in order, the empty one kept; the note belongs to the whole text.
    expect(report!['valueString']).toBe('CT CHEST\n\nIMPRESSION: no nodules.');
    expect(report!['status']).toBe('preliminary');
    expect(report!['note']).toEqual([{ text: 'read by two' }]);
    // Another status is another observation (kept apart under its position, as before); numbers never join.
    expect(addendum!['valueString']).toBe('Addendum follows.');
    expect([wbc!['valueQuantity'], again!['valueQuantity']]).toEqual([expect.objectContaining({ value: 5.2 }), expect.objectContaining({ value: 5.9 })]);
    expect(issues(result)).toEqual(['ANCHORLINE_ISSUE_TEXT_CONTINUED@OBX[1]-5', 'ANCHORLINE_ISSUE_DUPLICATE_KEY@OBX[4]-1', 'ANCHORLINE_ISSUE_DUPLICATE_KEY@OBX[6]-1']);
    expect(result.issues?.find((i) => i.code === 'ANCHORLINE_ISSUE_TEXT_CONTINUED')?.severity).toBe('information');
    for (const draft of observations(result)) expect(validateFhirResource(mergeDraft(undefined, draft))).toEqual([]);
    // The same report again names the same Observation.
    expect(observations(map(oru(...lines)))[0]!.id).toBe(report!.id);
  });

  it('keeps report text sent with raw line feeds inside an OBX, the breaks in the value, with an issue at that OBX', () => {
    const result = map(oru('OBX|1|TX|RPT^Report^L||Impression:\nNo acute findings.\nStable.||||||F', 'OBX|2|ST|B^B^L||y||||||F'));
    const [report, second] = observations(result);
    expect(report!['valueString']).toBe('Impression:\nNo acute findings.\nStable.');
    expect(report!['status']).toBe('final');
    expect(second!['valueString']).toBe('y');
    expect(issues(result)).toEqual(['ANCHORLINE_ISSUE_LINE_BREAK_IN_SEGMENT@OBX[1]']);
  });

  it('reads a repeated coded, time or numeric OBX-5 as one component per value; one repetition its type cannot read keeps the field as text', () => {
    const result = map(
      oru(
        'OBX|1|CWE|91558-7^Co-infection Type^LN||726492000^CRPA^SCT~5933001^C. difficile^SCT||||||F',
        'OBX|2|TS|ARB029^Transplant Year^L||1996~1998||||||F',
        'OBX|3|NM|X^X^L||1.5~2|mg|||||F',
        'OBX|4|TS|ARB032^Cancer Year^L||2002~notadate||||||F',
      ),
    );
    const [coded, years, numbers, broken] = observations(result);
    expect(coded!['valueCodeableConcept']).toBeNull();
    expect(coded!['component']).toEqual([
      { code: coded!['code'], valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '726492000', display: 'CRPA' }] } },
      { code: coded!['code'], valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '5933001', display: 'C. difficile' }] } },
    ]);
    expect((years!['component'] as Array<Record<string, unknown>>).map((c) => c['valueDateTime'])).toEqual(['1996', '1998']);
    expect((numbers!['component'] as Array<{ valueQuantity: { value: number; unit: string } }>).map((c) => [c.valueQuantity.value, c.valueQuantity.unit])).toEqual([[1.5, 'mg'], [2, 'mg']]);
    expect(broken!['component']).toBeNull();
    expect(broken!['valueString']).toBe('2002\nnotadate');
    expect(issues(result)).toEqual(['ANCHORLINE_ISSUE_REPEATED_VALUE@OBX[1]-5', 'ANCHORLINE_ISSUE_REPEATED_VALUE@OBX[2]-5', 'ANCHORLINE_ISSUE_REPEATED_VALUE@OBX[3]-5', 'ANCHORLINE_ISSUE_INVALID_VALUE@OBX[4]-5']);
    expect(result.issues!.filter((i) => i.code === 'ANCHORLINE_ISSUE_REPEATED_VALUE').map((i) => i.severity)).toEqual(['information', 'information', 'information']);
    for (const observation of [coded, years, numbers, broken]) expect(validateFhirResource(mergeDraft(undefined, observation!))).toEqual([]);
  });

  it('keeps a value sent without OBX-3 with its code marked unknown; an OBX with neither is left out', () => {
    const result = map(oru('OBX|1|NM|||5.2|mg|||||F', 'OBX|2|NM|||||||||F', 'OBX|3|NM|WBC^WBC^L||6.1|10*3/uL|||||F'));
    const [unknown, wbc] = observations(result);
    expect(unknown!['code']).toEqual({ extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] });
    expect(unknown!['valueQuantity']).toMatchObject({ unit: 'mg' });
    expect(wbc!['code']).toMatchObject({ coding: [expect.objectContaining({ code: 'WBC' })] });
    expect(issues(result)).toEqual(['ANCHORLINE_ISSUE_MISSING_FIELD@OBX[1]-3', 'ANCHORLINE_ISSUE_RESOURCE_NOT_MAPPED@OBX[2]-3']);
    expect(validateFhirResource(mergeDraft(undefined, unknown!))).toEqual([]);
  });

  it('reads a status outside table 0085 as unknown, and a missing one as the report\'s (OBR-25), else unknown', () => {
    const result = map(oru('OBX|1|ST|A^A^L||x||||||Z', 'OBX|2|ST|B^B^L||y||||||'));
    // The report's OBR-25 is F: a result of a final report, sent without its own status, is final.
    expect(observations(result).map((o) => o['status'])).toEqual(['unknown', 'final']);
    expect(issues(result)).toEqual(['ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE@OBX[1]-11', 'ANCHORLINE_ISSUE_MISSING_FIELD@OBX[2]-11']);
    expect(result.issues![0]!.value).toBe('Z');
    expect(result.issues![1]!.severity).toBe('information');
    const noReportStatus = map(oru('OBX|1|ST|B^B^L||y||||||').replace('|20240101115900|||F', '|20240101115900|||'));
    expect(observations(noReportStatus).map((o) => o['status'])).toEqual(['unknown']);
    expect(noReportStatus.issues).toContainEqual(expect.objectContaining({ severity: 'warning', code: 'ANCHORLINE_ISSUE_MISSING_FIELD', location: 'OBX[1]-11' }));
  });

  it('reads a report without OBR-25 from its results\' statuses when they tell it, else as unknown', () => {
    const withoutReportStatus = (...obx: string[]) => map(oru(...obx).replace('|20240101115900|||F', '|20240101115900|||'));
    const report = (result: MappingResult) => result.drafts.find((d) => d.resourceType === 'DiagnosticReport')!;
    const final = withoutReportStatus('OBX|1|ST|A^A^L||x||||||F', 'OBX|2|ST|B^B^L||y||||||F');
    expect(report(final)['status']).toBe('final');
    expect(final.issues).toEqual([expect.objectContaining({ severity: 'information', code: 'ANCHORLINE_ISSUE_MISSING_FIELD', location: 'OBR[1]-25' })]);
    expect(report(withoutReportStatus('OBX|1|ST|A^A^L||x||||||F', 'OBX|2|ST|B^B^L||y||||||P'))['status']).toBe('partial');
    const unknown = withoutReportStatus('OBX|1|ST|A^A^L||x||||||F', 'OBX|2|ST|B^B^L||y||||||');
    expect(report(unknown)['status']).toBe('unknown');
    expect(unknown.issues).toContainEqual(expect.objectContaining({ severity: 'warning', code: 'ANCHORLINE_ISSUE_MISSING_FIELD', location: 'OBR[1]-25' }));
  });

  it('keeps as text a value its type cannot hold: an address, a phone number, a number that is not one', () => {
    const result = map(
      oru(
        'OBX|1|XAD|ADDR^Address^L||1 Main St^^Seoul^^04000||||||F',
        'OBX|2|XTN|PHONE^Phone^L||^PRN^PH^^^2^5550100||||||F',
        'OBX|3|NM|GLU^Glucose^L||>>high|mg/dL|||||F',
        'OBX|4||NOTE^Note^L||free text||||||F',
      ),
    );
    expect(observations(result).map((o) => o['valueString'])).toEqual(['1 Main St^^Seoul^^04000', '^PRN^PH^^^2^5550100', '>>high', 'free text']);
    expect(issues(result)).toEqual([
      'ANCHORLINE_ISSUE_INVALID_VALUE@OBX[1]-2',
      'ANCHORLINE_ISSUE_INVALID_VALUE@OBX[2]-2',
      'ANCHORLINE_ISSUE_INVALID_VALUE@OBX[3]-5',
      'ANCHORLINE_ISSUE_MISSING_FIELD@OBX[4]-2',
    ]);
    for (const draft of result.drafts) expect(validateFhirResource(mergeDraft(undefined, draft)), draft.resourceType).toEqual([]);
  });

  it('keeps an observation whose encapsulated data is not base64, without the value', () => {
    const result = map(oru('OBX|1|ED|PDF^Report^L||^application^pdf^Base64^not base64 at all!!||||||F'));
    expect(observations(result)).toHaveLength(1);
    expect(observations(result)[0]!['extension']).toBeNull();
    expect(issues(result)).toEqual(['ANCHORLINE_ISSUE_INVALID_VALUE@OBX[1]-5']);
  });

  it('drops only the observation that cannot be built, with an issue at its OBX', () => {
    const result = map(oru('OBX|1|ST|||||||||F', 'OBX|2|ST|B^B^L||y||||||F'));
    expect(observations(result)).toHaveLength(1);
    expect(issues(result)).toEqual(['ANCHORLINE_ISSUE_RESOURCE_NOT_MAPPED@OBX[1]-3']);
  });
});

const twoReports = (first: string, second: string, ...rest: string[]): string =>
  [
    'MSH|^~\\&|LIS|HOSP|ANCHORLINE|HUB|20240101120000||ORU^R01|C2|P|2.5.1',
    'PID|1||MRN1^^^HOSP^MR||DOE^JANE||19800101|F',
    first,
    'OBX|1|NM|WBC^WBC^L||5.2|10*3/uL|||||F',
    second,
    'OBX|1|NM|GLU^Glucose^L||98|mg/dL|||||F',
    ...rest,
  ].join('\r');
const reports = (result: MappingResult) => result.drafts.filter((d) => d.resourceType === 'DiagnosticReport');
const valid = (result: MappingResult): void => {
  for (const draft of result.drafts) expect(validateFhirResource(mergeDraft(undefined, draft)), draft.resourceType).toEqual([]);
};

describe('report tolerance', () => {
  it('keeps a report whose observation, issue or end time cannot be read, without that time, and a time with a stray digit to the minute', () => {
    // As public-health senders have sent them: a 13-digit time (read to its minute), a word, an hour of 26.
    const result = map(
      twoReports(
        'OBR|1|PL1|FL1^LIS|CBC^Blood count^L|||2014121914001|DATE!||||||||||||||20240101265900|||F',
        'OBR|2|PL2|FL2^LIS|CHEM^Chemistry^L|||20240101110000|||||||||||||||20240101115900|||F',
      ),
    );
    const [cbc, chem] = reports(result);
    expect(cbc!['code']).toMatchObject({ coding: [expect.objectContaining({ code: 'CBC' })] });
    expect(cbc!['effectiveDateTime']).toMatch(/^2014-12-19T14:00:00/);
    expect(cbc!['effectivePeriod'] ?? null).toBeNull();
    expect(cbc!['issued'] ?? null).toBeNull();
    expect(chem!['effectiveDateTime']).toMatch(/^2024-01-01T11:00:00/);
    expect(observations(result)).toHaveLength(2);
    expect(issues(result)).toEqual(['ANCHORLINE_ISSUE_INVALID_VALUE@OBR[1]-7', 'ANCHORLINE_ISSUE_INVALID_VALUE@OBR[1]-22', 'ANCHORLINE_ISSUE_INVALID_VALUE@OBR[1]-8']);
    expect(result.issues!.map((i) => i.value)).toEqual(['2014121914001', '20240101265900', 'DATE!']);
    valid(result);
  });

  it('keeps two reports of one order number and service apart, the later under its position', () => {
    const obr = 'OBR|1|09339017^LAB^2.16.840.1.113883.3.1^ISO||94500-6^SARS-CoV-2 RNA^LN|||20240101110000|||||||||||||||20240101115900|||F';
    const result = map(twoReports(obr, obr.replace('OBR|1', 'OBR|2')));
    const [first, second] = reports(result);
    expect(first!.id).not.toBe(second!.id);
    const [wbc, glucose] = observations(result);
    expect(first!['result']).toEqual([{ reference: `Observation/${wbc!.id}` }]);
    expect(second!['result']).toEqual([{ reference: `Observation/${glucose!.id}` }]);
    expect(issues(result)).toEqual(['ANCHORLINE_ISSUE_DUPLICATE_KEY@OBR[2]-3']);
    // The same message again names the same resources.
    expect(reports(map(twoReports(obr, obr.replace('OBR|1', 'OBR|2')))).map((r) => r.id)).toEqual([first!.id, second!.id]);
    valid(result);
  });

  it('leaves out only the report that cannot be built, with an issue at its OBR', () => {
    const result = map(
      twoReports('OBR|1|PL1|FL1^LIS||||20240101110000||||||||||||||||||F', 'OBR|2|PL2|FL2^LIS|CHEM^Chemistry^L|||20240101110000||||||||||||||||||F'),
    );
    expect(reports(result)).toHaveLength(1);
    expect(reports(result)[0]!['code']).toMatchObject({ coding: [expect.objectContaining({ code: 'CHEM' })] });
    expect(observations(result).map((o) => (o['code'] as { coding: Array<{ code: string }> }).coding[0]!.code)).toEqual(['GLU']);
    expect(issues(result)).toEqual(['ANCHORLINE_ISSUE_RESOURCE_NOT_MAPPED@OBR[1]-4']);
  });

  it('keeps a specimen whose collection time or availability cannot be read, without them', () => {
    const result = map(
      twoReports(
        'OBR|1|PL1|FL1^LIS|CBC^Blood count^L|||20240101110000||||||||||||||||||F',
        'OBR|2|PL2|FL2^LIS|CHEM^Chemistry^L|||20240101110000||||||||||||||||||F',
        'SPM|1|SP1&LIS||119297000^Blood^SCT|||||||||||||0000|20240101120000||20240101130000',
      ),
    );
    const specimens = result.drafts.filter((d) => d.resourceType === 'Specimen');
    expect(specimens).toHaveLength(1);
    expect(specimens[0]!['receivedTime']).toMatch(/^2024-01-01T12:00:00/);
    expect(specimens[0]!['status'] ?? null).toBeNull();
    expect(issues(result)).toEqual(['ANCHORLINE_ISSUE_INVALID_VALUE@SPM[1]-17', 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE@SPM[1]-20']);
    expect(reports(result)).toHaveLength(2);
    valid(result);
  });
});

describe('equipment', () => {
  it('makes OBX-18 a Device, one per equipment id, referenced by every observation it measured', () => {
    const result = map(oru('OBX|1|NM|WBC^WBC^L||5.2|10*3/uL|||||F|||||||ANALYZER-7^LAB', 'OBX|2|NM|RBC^RBC^L||4.2|10*6/uL|||||F|||||||ANALYZER-7^LAB'));
    const devices = result.drafts.filter((d) => d.resourceType === 'Device');
    expect(devices).toHaveLength(1);
    expect(devices[0]!['identifier']).toEqual([{ system: 'urn:anchorline:authority:LAB', value: 'ANALYZER-7' }]);
    expect(observations(result).map((o) => o['device'])).toEqual([0, 1].map(() => ({ reference: `Device/${devices[0]!.id}`, display: 'ANALYZER-7' })));
    expect(validateFhirResource(mergeDraft(undefined, devices[0]!))).toEqual([]);
    // An equipment id whose authority cannot be read costs the device only.
    const unreadable = map(oru('OBX|1|NM|WBC^WBC^L||5.2|10*3/uL|||||F|||||||A-1^^not-a-uuid^UUID'));
    expect(observations(unreadable)[0]!['device']).toBeNull();
    expect(issues(unreadable)).toEqual(['ANCHORLINE_ISSUE_INVALID_VALUE@OBX[1]-18']);
  });
});

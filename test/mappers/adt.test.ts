import { describe, expect, it } from 'vitest';

import { parseHl7 } from '../../formats/hl7v2/parse.ts';
import { AnchorlineError, type ErrorCode } from '../../errors/index.ts';
import { type ResourceDraft, defaultHl7MappingOptions, isSupportedMessageType, mapHl7Message, supportedMessageTypes } from '../../mappers/index.ts';

/** A segment from field number -> value. */
function segment(name: string, fields: Record<number, string>): string {
  const last = Math.max(0, ...Object.keys(fields).map(Number));
  return [name, ...Array.from({ length: last }, (_, i) => fields[i + 1] ?? '')].join('|');
}

function adt(event: string, pv1: Record<number, string> | undefined, pid: Record<number, string> = { 3: 'MRN1^^^HOSP^MR' }): string {
  return [`MSH|^~\\&|APP|HOSP|||20240101||ADT^${event}|C1|P|2.5.1`, segment('PID', pid), ...(pv1 ? [segment('PV1', pv1)] : [])].join('\r');
}

function encounterOf(text: string): ResourceDraft | undefined {
  return mapHl7Message(parseHl7(text), defaultHl7MappingOptions).drafts.find((d) => d.resourceType === 'Encounter');
}

function errorOf(text: string, options = defaultHl7MappingOptions): { code: ErrorCode; location: string | undefined } {
  try {
    mapHl7Message(parseHl7(text), options);
  } catch (error) {
    expect(error).toBeInstanceOf(AnchorlineError);
    return { code: (error as AnchorlineError).code, location: (error as AnchorlineError).location };
  }
  throw new Error('expected a mapping error');
}

describe('message types', () => {
  it('lists the supported types', () => {
    // Other message families add their own rows; this file is about ADT.
    expect(supportedMessageTypes().filter((key) => key.startsWith('ADT^'))).toEqual(
      ['A01', 'A02', 'A03', 'A04', 'A05', 'A06', 'A07', 'A08', 'A11', 'A12', 'A13', 'A28', 'A31', 'A40', 'A47'].map((event) => `ADT^${event}`),
    );
    expect(isSupportedMessageType('ADT', 'A04')).toBe(true);
    expect(isSupportedMessageType('ADT', 'A09')).toBe(false);
    expect(isSupportedMessageType('ZZZ', 'Z01')).toBe(false);
  });

  it('rejects a message without a type or trigger event', () => {
    expect(errorOf('MSH|^~\\&|APP|HOSP|||20240101||ADT|C1|P|2.5.1\rPID|1||1^^^H^MR')).toEqual({ code: 'ANCHORLINE_ERR_HL7_MISSING_MESSAGE_TYPE', location: 'MSH-9' });
  });

  it('needs a PID', () => {
    expect(errorOf('MSH|^~\\&|APP|HOSP|||20240101||ADT^A01|C1|P|2.5.1')).toEqual({ code: 'ANCHORLINE_ERR_MAPPING_MISSING_FIELD', location: 'PID' });
  });

  it('rejects an unknown time zone option as configuration', () => {
    expect(errorOf(adt('A01', undefined), { ...defaultHl7MappingOptions, timeZone: 'Nowhere/Special' }).code).toBe('ANCHORLINE_ERR_CONFIG_INVALID');
  });
});

describe('Encounter', () => {
  const visit = { 2: 'I', 19: 'V1^^^HOSP^VN' };

  it('status by event: A01 and A04 start a visit, A08 leaves the status alone', () => {
    expect(encounterOf(adt('A01', visit))?.['status']).toBe('in-progress');
    expect(encounterOf(adt('A04', { ...visit, 2: 'O' }))?.['status']).toBe('in-progress');
    expect(encounterOf(adt('A08', visit))).not.toHaveProperty('status');
  });

  it('status is finished with a discharge time and planned for a preadmit', () => {
    expect(encounterOf(adt('A01', { ...visit, 45: '20240102' }))?.['status']).toBe('finished');
    expect(encounterOf(adt('A04', { ...visit, 2: 'P' }))?.['status']).toBe('planned');
  });

  const classes: Array<[string, object]> = [
    ['E', { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'EMER', display: 'emergency' }],
    ['R', { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: 'ambulatory' }],
    ['U', { system: 'http://terminology.hl7.org/CodeSystem/v3-NullFlavor', code: 'UNK', display: 'unknown' }],
    ['C', { system: 'urn:anchorline:local/HL70004', code: 'C' }],
  ];
  for (const [code, want] of classes) {
    it(`class ${code}`, () => expect(encounterOf(adt('A01', { ...visit, 2: code }))?.['class']).toEqual(want));
  }

  it('is skipped without PV1 or without a visit number', () => {
    expect(encounterOf(adt('A01', undefined))).toBeUndefined();
    expect(encounterOf(adt('A01', { 2: 'I' }))).toBeUndefined();
    expect(encounterOf(adt('A01', { 2: 'I', 19: '""' }))).toBeUndefined();
  });

  it('the visit number falls back to MSH-4 for its authority, and references the patient', () => {
    const result = mapHl7Message(parseHl7(adt('A01', { 2: 'I', 19: 'V1' })), defaultHl7MappingOptions);
    const [patient, encounter] = result.drafts;
    expect(encounter?.['identifier']).toEqual([{ system: 'urn:anchorline:authority:HOSP', value: 'V1' }]);
    expect(encounter?.['subject']).toEqual({ reference: `Patient/${patient!.id}` });
  });

  it('names the attending doctor in given-family order unless XCN-18 says family first', () => {
    const participant = (xcn: string) => (encounterOf(adt('A01', { ...visit, 7: xcn }))?.['participant'] as Array<{ individual: { display: string } }>)[0]!.individual.display;
    expect(participant('D1^SMITH^JOHN^Q^JR^DR^MD')).toBe('DR JOHN Q SMITH JR MD');
    expect(participant('D2^이^지훈^^^^^^^^^^^^^^^F')).toBe('이 지훈');
  });
});

describe('Patient', () => {
  it('deceased and multiple birth hold one choice type each', () => {
    const patient = mapHl7Message(parseHl7(adt('A08', undefined, { 3: 'MRN1^^^HOSP^MR', 24: 'Y', 30: 'Y' })), defaultHl7MappingOptions).drafts[0]!;
    expect(patient).toMatchObject({ deceasedBoolean: true, deceasedDateTime: null, multipleBirthBoolean: true, multipleBirthInteger: null });
  });

  it('rejects indicators that are not Y or N', () => {
    expect(errorOf(adt('A01', undefined, { 3: 'MRN1^^^HOSP^MR', 30: 'X' }))).toEqual({ code: 'ANCHORLINE_ERR_MAPPING_INVALID_VALUE', location: 'PID-30' });
    expect(errorOf(adt('A01', undefined, { 3: 'MRN1^^^HOSP^MR', 25: 'two' }))).toEqual({ code: 'ANCHORLINE_ERR_MAPPING_INVALID_VALUE', location: 'PID-25' });
  });

  it('gender table', () => {
    const genderOf = (code: string) => mapHl7Message(parseHl7(adt('A01', undefined, { 3: 'MRN1^^^HOSP^MR', 8: code })), defaultHl7MappingOptions).drafts[0]!['gender'];
    expect(['M', 'F', 'O', 'U', 'A', 'N', '""', ''].map(genderOf)).toEqual(['male', 'female', 'other', 'unknown', 'other', 'unknown', null, undefined]);
  });
});

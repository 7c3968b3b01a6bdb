import { describe, expect, it } from 'vitest';

import { parseHl7 } from '../../formats/hl7v2/parse.ts';
import { AnchorlineError, type ErrorCode } from '../../errors/index.ts';
import { type MappingResult, type ResourceDraft, defaultHl7MappingOptions, isSupportedMessageType, mapHl7Message, mergeDraft, supportedMessageTypes, validateFhirResource } from '../../mappers/index.ts';

/** A segment from field number -> value. */
function segment(name: string, fields: Record<number, string>): string {
  const last = Math.max(0, ...Object.keys(fields).map(Number));
  return [name, ...Array.from({ length: last }, (_, i) => fields[i + 1] ?? '')].join('|');
}

function adt(event: string, pv1: Record<number, string> | undefined, pid: Record<number, string> = { 3: 'MRN1^^^HOSP^MR' }): string {
  return [`MSH|^~\\&|APP|HOSP|||20240101||ADT^${event}|C1|P|2.5.1`, segment('PID', pid), ...(pv1 ? [segment('PV1', pv1)] : [])].join('\r');
}

/** The message's (first) Patient draft: the people, organizations and places it names come before it. */
function patientIn(result: MappingResult): ResourceDraft {
  return result.drafts.find((d) => d.resourceType === 'Patient')!;
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
  it('lists the supported types: every ADT event from A01 to A62 but the query A19 and the bed status A20', () => {
    // Other message families add their own rows; this file is about ADT.
    const events = Array.from({ length: 62 }, (_, i) => `A${String(i + 1).padStart(2, '0')}`).filter((event) => !['A19', 'A20', 'A56', 'A57', 'A58', 'A59'].includes(event));
    expect(supportedMessageTypes().filter((key) => key.startsWith('ADT^'))).toEqual(events.map((event) => `ADT^${event}`));
    expect(isSupportedMessageType('ADT', 'A04')).toBe(true);
    expect(isSupportedMessageType('ADT', 'A09')).toBe(true);
    // A type the table does not list is mapped by its segments; queries and acknowledgments are not data.
    expect(isSupportedMessageType('ZZZ', 'Z01')).toBe(true);
    expect(isSupportedMessageType('ADT', 'A19')).toBe(false);
    expect(isSupportedMessageType('QBP', 'Q22')).toBe(false);
    expect(isSupportedMessageType('ACK', 'A01')).toBe(false);
  });

  it('rejects a message without a type; reads a v2.2 trigger event from EVN-1', () => {
    expect(errorOf('MSH|^~\\&|APP|HOSP|||20240101||^A01|C1|P|2.5.1\rPID|1||1^^^H^MR')).toEqual({ code: 'ANCHORLINE_ERR_HL7_MISSING_MESSAGE_TYPE', location: 'MSH-9' });
    const v22 = mapHl7Message(parseHl7('MSH|^~\\&|APP|HOSP|||20240101||ADT|C1|P|2.2\rEVN|A01|20240101\rPID|1||1^^^H^MR\rPV1|1|I|||||||||||||||||V1^^^H'), defaultHl7MappingOptions);
    // MSH-4, the sender, is an Organization (mappers/hl7v2/directory.ts), and so is H, the assigner of the patient's
    // identifier; they come before the Patient that names them.
    expect(v22.drafts.map((d) => d.resourceType)).toEqual(['Organization', 'Organization', 'Patient', 'Encounter']);
    expect(v22.issues).toBeUndefined();
  });

  it('maps an ADT event the table does not list by its segments, with an issue that says so', () => {
    const result = mapHl7Message(parseHl7(adt('A99', undefined, { 3: 'MRN1^^^HOSP^MR' })), defaultHl7MappingOptions);
    expect(result.drafts.map((d) => d.resourceType)).toContain('Patient');
    expect(result.issues?.map((i) => i.code)).toContain('ANCHORLINE_ISSUE_UNKNOWN_MESSAGE_TYPE');
  });

  it('keeps an event without a PID under a patient of its own, and fails a merge without one', () => {
    const result = mapHl7Message(parseHl7('MSH|^~\\&|APP|HOSP|||20240101||ADT^A01|C1|P|2.5.1'), defaultHl7MappingOptions);
    expect(result.issues?.map((i) => [i.code, i.location])).toContainEqual(['ANCHORLINE_ISSUE_PATIENT_UNIDENTIFIED', 'PID']);
    expect(errorOf('MSH|^~\\&|APP|HOSP|||20240101||ADT^A40|C1|P|2.5.1\rMRG|OLD1^^^HOSP^MR')).toEqual({ code: 'ANCHORLINE_ERR_MAPPING_MISSING_FIELD', location: 'PID' });
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
    const [patient, encounter] = result.drafts.filter((d) => d.resourceType !== 'Organization');
    expect(encounter?.['identifier']).toEqual([{ system: 'urn:anchorline:authority:HOSP', value: 'V1' }]);
    expect(encounter?.['subject']).toEqual({ reference: `Patient/${patient!.id}` });
  });

  it('names the attending doctor in given-family order unless XCN-18 says family first', () => {
    const participant = (xcn: string) => (mergeDraft(undefined, encounterOf(adt('A01', { ...visit, 7: xcn }))!)['participant'] as Array<{ individual: { display: string } }>)[0]!.individual.display;
    expect(participant('D1^SMITH^JOHN^Q^JR^DR^MD')).toBe('DR JOHN Q SMITH JR MD');
    expect(participant('D2^이^지훈^^^^^^^^^^^^^^^F')).toBe('이 지훈');
  });
});

describe('Patient', () => {
  it('deceased and multiple birth hold one choice type each', () => {
    const patient = patientIn(mapHl7Message(parseHl7(adt('A08', undefined, { 3: 'MRN1^^^HOSP^MR', 24: 'Y', 30: 'Y' })), defaultHl7MappingOptions));
    expect(patient).toMatchObject({ deceasedBoolean: true, deceasedDateTime: null, multipleBirthBoolean: true, multipleBirthInteger: null });
  });

  it('reads spelled-out indicators, and leaves out with an issue what is neither Y nor N', () => {
    const map = (fields: Record<number, string>) => mapHl7Message(parseHl7(adt('A01', undefined, { 3: 'MRN1^^^HOSP^MR', ...fields })), defaultHl7MappingOptions);
    const spelled = map({ 30: 'NO' });
    expect(patientIn(spelled)['deceasedBoolean']).toBe(false);
    expect(spelled.issues).toEqual([expect.objectContaining({ severity: 'information', code: 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', location: 'PID-30', value: 'NO' })]);
    const unreadable = map({ 30: 'X', 25: 'two' });
    expect(patientIn(unreadable)['deceasedBoolean']).toBeUndefined();
    expect(patientIn(unreadable)['multipleBirthInteger']).toBeUndefined();
    expect(unreadable.issues?.map((i) => [i.code, i.location, i.value])).toEqual([
      ['ANCHORLINE_ISSUE_INVALID_VALUE', 'PID-30', 'X'],
      ['ANCHORLINE_ISSUE_INVALID_VALUE', 'PID-25', 'two'],
    ]);
  });

  it('carries PID-6, -10, -17, -22, -23, -26 and -28 as the extensions the IG names', () => {
    const fields = { 3: 'MRN1^^^HOSP^MR', 6: 'PARK^SOYEON', 10: '2028-9^Asian^CDCREC~2106-3^White^CDCREC', 17: 'BUD^Buddhist^HL70006', 22: '2186-5^Not Hispanic or Latino^CDCREC', 23: 'Busan', 26: 'KOR^Korea^ISO3166', 28: 'KOR^Korean^HL70212' };
    const patient = patientIn(mapHl7Message(parseHl7(adt('A28', undefined, fields)), defaultHl7MappingOptions));
    const byUrl = new Map((patient['extension'] as Array<{ url: string }>).map((e) => [e.url.split('/').pop(), e]));
    expect(byUrl.get('patient-mothersMaidenName')).toMatchObject({ valueString: 'PARK SOYEON' });
    expect(byUrl.get('patient-birthPlace')).toMatchObject({ valueAddress: { text: 'Busan' } });
    expect(byUrl.get('patient-religion')).toMatchObject({ valueCodeableConcept: { coding: [expect.objectContaining({ code: 'BUD' })] } });
    expect(byUrl.get('patient-citizenship')).toMatchObject({ extension: [{ url: 'code', valueCodeableConcept: { coding: [expect.objectContaining({ code: 'KOR' })] } }] });
    expect(byUrl.get('us-core-race')).toEqual({
      url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race',
      extension: [
        { url: 'ombCategory', valueCoding: { system: 'urn:oid:2.16.840.1.113883.6.238', code: '2028-9', display: 'Asian' } },
        { url: 'ombCategory', valueCoding: { system: 'urn:oid:2.16.840.1.113883.6.238', code: '2106-3', display: 'White' } },
        { url: 'text', valueString: 'Asian, White' },
      ],
    });
    expect(byUrl.get('us-core-ethnicity')).toMatchObject({ extension: [{ url: 'ombCategory' }, { url: 'text', valueString: 'Not Hispanic or Latino' }] });
    expect(validateFhirResource(mergeDraft(undefined, patient))).toEqual([]);
    // None of the fields sent: the stored list stays; all sent as "": it goes.
    expect(patientIn(mapHl7Message(parseHl7(adt('A28', undefined, { 3: 'MRN1^^^HOSP^MR' })), defaultHl7MappingOptions))['extension']).toBeUndefined();
    expect(patientIn(mapHl7Message(parseHl7(adt('A28', undefined, { 3: 'MRN1^^^HOSP^MR', 6: '""', 10: '""' })), defaultHl7MappingOptions))['extension']).toBeNull();
  });

  it('identifies the patient by PID-2 or PID-4 when PID-3 is empty, as the same patient PID-3 would name', () => {
    const byPid3 = mapHl7Message(parseHl7(adt('A01', undefined, { 3: 'MRN1^^^HOSP^MR' })), defaultHl7MappingOptions);
    const byPid2 = mapHl7Message(parseHl7(adt('A01', undefined, { 2: 'MRN1^^^HOSP' })), defaultHl7MappingOptions);
    const byPid4 = mapHl7Message(parseHl7(adt('A01', undefined, { 4: 'MRN1^^^HOSP' })), defaultHl7MappingOptions);
    expect(patientIn(byPid2).id).toBe(patientIn(byPid3).id);
    expect(patientIn(byPid4).id).toBe(patientIn(byPid3).id);
    expect(byPid2.issues?.map((i) => [i.code, i.location])).toEqual([['ANCHORLINE_ISSUE_IDENTIFIER_FALLBACK', 'PID-3']]);
    expect(patientIn(byPid2)['identifier']).toEqual([expect.objectContaining({ value: 'MRN1' })]);
  });

  it('keeps a patient sent with a name or birth date but no identifier as a patient of that message alone', () => {
    const withControlId = (controlId: string, pid: Record<number, string>) => adt('A04', { 2: 'O', 19: 'V1' }, pid).replace('|C1|', `|${controlId}|`);
    const first = mapHl7Message(parseHl7(withControlId('C1', { 5: 'Kuh^Klarabella', 7: '19901224', 8: 'F' })), defaultHl7MappingOptions);
    const patientOf = (result: MappingResult) => result.drafts.find((d) => d.resourceType === 'Patient')!;
    const patient = patientOf(first);
    expect(patient.resourceType).toBe('Patient');
    expect(patient['name']).toEqual([expect.objectContaining({ family: 'Kuh' })]);
    expect(patient['identifier']).toBeUndefined();
    expect(first.issues).toContainEqual(expect.objectContaining({ severity: 'warning', code: 'ANCHORLINE_ISSUE_PATIENT_UNIDENTIFIED', location: 'PID-3' }));
    // Everything else the message says is about that patient.
    expect(first.drafts.find((d) => d.resourceType === 'Encounter')!['subject']).toEqual({ reference: `Patient/${patient.id}` });
    // The same person in another message is another patient: nothing is matched by name and birth date.
    const second = mapHl7Message(parseHl7(withControlId('C2', { 5: 'Kuh^Klarabella', 7: '19901224', 8: 'F' })), defaultHl7MappingOptions);
    expect(patientOf(second).id).not.toBe(patient.id);
    // The same message again (a resend) names the same one.
    expect(patientOf(mapHl7Message(parseHl7(withControlId('C1', { 5: 'Kuh^Klarabella', 7: '19901224', 8: 'F' })), defaultHl7MappingOptions)).id).toBe(patient.id);
  });

  it('keeps what a message whose PID names nobody, or that has no PID, carries under a patient of that message alone', () => {
    // A PID with no identifier, name or birth date: the encounter is kept, under a patient of this message.
    const nobody = mapHl7Message(parseHl7(adt('A04', { 2: 'O', 19: 'V1' }, { 1: '1', 8: 'F' })), defaultHl7MappingOptions);
    const patient = patientIn(nobody);
    expect(patient['identifier']).toBeUndefined();
    expect(patient['gender']).toBe('female');
    expect(nobody.issues).toContainEqual(expect.objectContaining({ severity: 'warning', code: 'ANCHORLINE_ISSUE_PATIENT_UNIDENTIFIED', location: 'PID-3', detail: expect.stringContaining('names nobody') }));
    expect(nobody.drafts.find((d) => d.resourceType === 'Encounter')!['subject']).toEqual({ reference: `Patient/${patient.id}` });
    const again = mapHl7Message(parseHl7(adt('A04', { 2: 'O', 19: 'V1' }, { 1: '1', 8: 'F' }).replace('|C1|', '|C2|')), defaultHl7MappingOptions);
    expect(patientIn(again).id).not.toBe(patient.id);

    // A result fragment without a PID: its observations are kept, under a patient of this message, never of another.
    const fragment = (controlId: string): string =>
      [`MSH|^~\\&|LAB|HOSP|||20240101||ORU^R01|${controlId}|P|2.5.1`, 'OBR|1||F1|8601-7^ECG impression^LN', 'OBX|1|ST|8625-6^PR interval^LN||141|ms|||||F'].join('\r');
    const result = mapHl7Message(parseHl7(fragment('F1')), defaultHl7MappingOptions);
    const orphan = patientIn(result);
    expect(Object.keys(orphan).filter((key) => !['resourceType', 'id', 'active'].includes(key))).toEqual([]);
    expect(result.issues).toContainEqual(expect.objectContaining({ severity: 'warning', code: 'ANCHORLINE_ISSUE_PATIENT_UNIDENTIFIED', location: 'PID' }));
    const observation = result.drafts.find((d) => d.resourceType === 'Observation')!;
    expect(observation['subject']).toEqual({ reference: `Patient/${orphan.id}` });
    expect(observation['valueString'] ?? observation['valueQuantity']).toBeDefined();
    expect(patientIn(mapHl7Message(parseHl7(fragment('F2')), defaultHl7MappingOptions)).id).not.toBe(orphan.id);
    expect(patientIn(mapHl7Message(parseHl7(fragment('F1')), defaultHl7MappingOptions)).id).toBe(orphan.id);

    // A merge still needs both of its patients.
    expect(errorOf(adt('A40', undefined, { 1: '1' }).replace(/PID\|1/, 'MRG|OLD1^^^HOSP^MR'))).toEqual({ code: 'ANCHORLINE_ERR_MAPPING_MISSING_FIELD', location: 'PID' });
  });

  it('names what a message without MSH-10 alone describes by its content: one patient per message, the same for a resend', () => {
    const withoutControlId = (name: string) => adt('A04', { 2: 'O', 19: 'V1' }, { 5: name, 7: '19901224' }).replace('|C1|', '||');
    const patientOf = (text: string) => mapHl7Message(parseHl7(text), defaultHl7MappingOptions).drafts.find((d) => d.resourceType === 'Patient')!.id;
    const first = mapHl7Message(parseHl7(withoutControlId('Kuh^Klarabella')), defaultHl7MappingOptions);
    expect(first.issues).toContainEqual(expect.objectContaining({ severity: 'warning', code: 'ANCHORLINE_ISSUE_MISSING_FIELD', location: 'MSH-10' }));
    expect(patientOf(withoutControlId('Kuh^Klarabella'))).toBe(first.drafts.find((d) => d.resourceType === 'Patient')!.id);
    // Two people sent without identifiers in two messages without control ids are never one patient.
    expect(patientOf(withoutControlId('Duck^Daisy'))).not.toBe(patientOf(withoutControlId('Kuh^Klarabella')));
  });

  it('takes the authority of identifiers without one from MSH-4, else MSH-3, else the config, else the bound source', () => {
    const text = (msh3: string, msh4: string) => `MSH|^~\\&|${msh3}|${msh4}|||20240101||ADT^A04|C1|P|2.5.1\rPID|1||MRN1`;
    const id = (t: string, options = defaultHl7MappingOptions) => patientIn(mapHl7Message(parseHl7(t), options)).id;
    const explicit = (authority: string) => id(`MSH|^~\\&|X|Y|||20240101||ADT^A04|C1|P|2.5.1\rPID|1||MRN1^^^${authority}`);
    expect(id(text('APP', 'HOSP'))).toBe(explicit('HOSP'));
    expect(id(text('APP', ''))).toBe(explicit('APP'));
    expect(id(text('', ''), { ...defaultHl7MappingOptions, defaultAuthority: 'CONFIGURED' })).toBe(explicit('CONFIGURED'));
    expect(id(text('', ''), { ...defaultHl7MappingOptions, boundSource: 'bound-src' })).toBe(explicit('bound-src'));
    // Nothing names the sender: the shared last resort, with a warning (a config can make it fatal).
    const unnamed = mapHl7Message(parseHl7(text('', '')), defaultHl7MappingOptions);
    expect(patientIn(unnamed).id).toBe(explicit('unidentified-sender'));
    expect(unnamed.issues).toEqual([expect.objectContaining({ severity: 'warning', code: 'ANCHORLINE_ISSUE_AUTHORITY_FALLBACK', location: 'MSH-4' })]);
  });

  it('gender table', () => {
    const genderOf = (code: string) => patientIn(mapHl7Message(parseHl7(adt('A01', undefined, { 3: 'MRN1^^^HOSP^MR', 8: code })), defaultHl7MappingOptions))['gender'];
    expect(['M', 'F', 'O', 'U', 'A', 'N', '""', ''].map(genderOf)).toEqual(['male', 'female', 'other', 'unknown', 'other', 'unknown', null, undefined]);
  });
});

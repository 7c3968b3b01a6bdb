/**
 * The patient identifiers read out of stored messages (workers/message-patients.ts) and their comparison with stored
 * Patients (store/message-patients.ts), on fixtures whose mapped Patients are on disk: what the reader finds in an
 * HL7 v2 ADT, a C-CDA document and a DICOM instance names the Patient the mappers made of it; an identifier under
 * another authority, or under none, names no one; a message the parser refuses is still read for its PID, and bytes
 * that are no message are attributable to no one.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { namesPatient, patientIdentifiers, type MessageBytes, type MessagePatients } from '../../store/index.ts';
import { createMessagePatientReader } from '../../workers/message-patients.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const bytes = (name: string): Buffer => readFileSync(path.join(FIXTURES, name));
const json = (name: string): any => JSON.parse(readFileSync(path.join(FIXTURES, name), 'utf8'));

/** The first Patient in an expected mapping (drafts or resources), its identifiers as a stored Patient holds them. */
function expectedPatient(name: string): ReturnType<typeof patientIdentifiers> {
  const expected = json(name);
  const patient = [...(expected.drafts ?? []), ...(expected.resources ?? [])].find((resource: { resourceType: string }) => resource.resourceType === 'Patient');
  // A DICOM or C-CDA Patient draft adds its identifiers ($merge: add): stored, they are the list.
  const identifier = Array.isArray(patient.identifier) ? patient.identifier : patient.identifier.identifier;
  return patientIdentifiers({ ...patient, identifier });
}

const reader = createMessagePatientReader({ defaultCharset: 'UTF-8' });
const message = (protocol: string, raw: Buffer, sender = '', source = 'mllp:127.0.0.1:40000'): MessageBytes => ({ protocol, raw, charset: null, sender, source });
const read = (each: MessageBytes): MessagePatients => {
  const found = reader.read(each);
  expect(found).toBeDefined();
  return found!;
};

describe('the patient identifiers of a stored message', () => {
  it('name the Patient the HL7 v2 mappers made of an ADT, and no Patient of another authority', () => {
    const raw = bytes('adt/a01-admit-with-visit.hl7');
    const found = read(message('hl7v2-mllp', raw));
    const stored = expectedPatient('adt/a01-admit-with-visit.expected.json');
    expect(namesPatient(found.own, stored)).toBe(true);
    expect(found.others).toEqual([]);
    // The same number at another hospital is another patient.
    expect(namesPatient(found.own, stored.map((each) => ({ ...each, system: 'urn:anchorline:authority:BUSANGEN', assigner: 'BUSANGEN' })))).toBe(false);
    // A system from the mapping config counts as the authority's too, and so does an assigner naming it.
    const configured = createMessagePatientReader({ defaultCharset: 'UTF-8', identifierSystems: () => ({ SEOULGEN: 'https://seoulgen.example/mrn' }) });
    expect(namesPatient(configured.read(message('hl7v2-mllp', raw))!.own, [{ system: 'https://seoulgen.example/mrn', value: '12345678', assigner: undefined }])).toBe(true);
    expect(namesPatient(found.own, [{ system: 'https://seoulgen.example/mrn', value: '12345678', assigner: 'SEOULGEN' }])).toBe(true);
  });

  it('give an identifier without CX-4 the sending facility, as the mappers do, and one with no authority at all none', () => {
    const text = bytes('adt/a01-admit-with-visit.hl7').toString('latin1');
    const bare = read(message('hl7v2-mllp', Buffer.from(text.replace('12345678^^^SEOULGEN^MR', '12345678'), 'latin1')));
    expect(bare.own[0]).toMatchObject({ value: '12345678', authorities: ['SEOULGEN'] });
    const nowhere = read(message('hl7v2-mllp', Buffer.from(text.replace('12345678^^^SEOULGEN^MR', '12345678').replace('|HIS|SEOULGEN|', '|||'), 'latin1')));
    expect(nowhere.own[0]).toEqual({ value: '12345678', systems: [], authorities: [] });
    expect(namesPatient(nowhere.own, expectedPatient('adt/a01-admit-with-visit.expected.json'))).toBe(false);
    // Bound to a source, identifiers without an authority take it (the row's origin label names it).
    const bound = read(message('hl7v2-http', Buffer.from(text.replace('12345678^^^SEOULGEN^MR', '12345678').replace('|HIS|SEOULGEN|', '|||'), 'latin1'), '', 'http:127.0.0.1 source=seoulgen-his'));
    expect(bound.own[0]).toMatchObject({ authorities: ['seoulgen-his'] });
  });

  it('read the PID of a message its parser refuses, and the patients it names besides its own', () => {
    const text = bytes('adt/a01-admit-with-visit.hl7').toString('latin1');
    // MSH-18 says UTF-8 and a byte is not, and a line has no segment name: the intake refuses both (charset
    // mismatch, malformed), and the PID is still read here.
    const broken = Buffer.from(text.replace('|2.5.1', '|2.5.1||||||UNICODE UTF-8').replace('EVN|', 'Z|\xff|\rEVN|'), 'latin1');
    const found = read(message('hl7v2-mllp', broken));
    expect(namesPatient(found.own, expectedPatient('adt/a01-admit-with-visit.expected.json'))).toBe(true);
    // A merge names the patient merged away in MRG-1.
    const merge = read(message('hl7v2-mllp', Buffer.from(`${text.trimEnd()}\rMRG|87654321^^^SEOULGEN^MR\r`, 'latin1')));
    expect(merge.others).toEqual([expect.objectContaining({ value: '87654321', authorities: ['SEOULGEN'] })]);
  });

  it('name the Patient the C-CDA converter made of a document (EUC-KR, declared in the document)', () => {
    const found = read(message('cda', bytes('cda/korean-progress-note-euc-kr.xml'), 'cda:1.2.410.999999.1'));
    expect(found.own).toContainEqual(expect.objectContaining({ value: 'H0098765', systems: ['urn:oid:1.2.410.999999.1.1'] }));
    expect(namesPatient(found.own, expectedPatient('cda/korean-progress-note-euc-kr.expected.json'))).toBe(true);
  });

  it('name the Patient the DICOM mapper made of an instance (Issuer of Patient ID), or by the calling AE title without one', () => {
    const raw = bytes('dicom/ct-1.dcm');
    const found = read(message('dicom', raw, 'MODALITY1'));
    expect(namesPatient(found.own, expectedPatient('dicom/ct-1.expected.json'))).toBe(true);
    // Without an issuer (the element emptied to spaces, as long as before), the AE title is the authority.
    const noIssuer = Buffer.from(raw.toString('latin1').replace('SEOULGEN', '        '), 'latin1');
    expect(read(message('dicom', noIssuer, 'MODALITY1')).own).toEqual([expect.objectContaining({ value: 'SEOUL0001', authorities: ['MODALITY1'] })]);
  });

  it('are none for bytes that are no message of their protocol', () => {
    expect(reader.read(message('hl7v2-http', Buffer.from('Kim 12345678 is not a message')))).toBeUndefined();
    expect(reader.read(message('cda', Buffer.from('<html/>')))).toBeUndefined();
    expect(reader.read(message('dicom', Buffer.from('DICM')))).toBeUndefined();
    expect(reader.read(message('hl7v2-mllp', Buffer.alloc(0)))).toBeUndefined();
    expect(reader.read(message('smoke-signals', bytes('adt/a01-admit-with-visit.hl7')))).toBeUndefined();
  });
});

/**
 * DICOM mapping decisions that fixtures do not show: which Patient an instance names (the same as an HL7 message's
 * for the same identifier, by the same mapping config), and how the ingest converter picks that config.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodeHl7Bytes } from '../../formats/hl7v2/index.ts';
import { parseHl7 } from '../../formats/hl7v2/parse.ts';
import type { DicomInstanceHeader } from '../../formats/dicom/types.ts';
import { parseDicomInstance } from '../../formats/dicom/parse.ts';
import { defaultHl7MappingOptions, mapDicomInstance, mapHl7Message, mergeDraft, validateFhirResource, type Hl7MappingOptions } from '../../mappers/index.ts';
import { createDicomConverter, staticMappingSource, type MappingSource } from '../../workers/index.ts';
import type { InboxMessage } from '../../store/index.ts';
import { adtMessage } from '../support/messages.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dicom');
const BASE = 'http://127.0.0.1:8080/dicomweb';

function header(patient: DicomInstanceHeader['patient']): DicomInstanceHeader {
  return {
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
    sopInstanceUid: '2.25.7.1.1',
    studyInstanceUid: '2.25.7',
    seriesInstanceUid: '2.25.7.1',
    specificCharacterSet: '',
    textDecoding: 'declared',
    patient,
    study: {},
    series: { modality: 'CT' },
    instance: {},
  };
}

function dicomPatientId(patient: DicomInstanceHeader['patient'], options: Hl7MappingOptions = defaultHl7MappingOptions, sendingAeTitle = 'CT01'): string {
  return mapDicomInstance(header(patient), { options, blobSha256: '0'.repeat(64), dicomwebBaseUrl: BASE, sendingAeTitle }).drafts[0]!.id;
}

function hl7PatientId(options: Hl7MappingOptions): string {
  const { text } = decodeHl7Bytes(Buffer.from(adtMessage({ controlId: 'X1', mrn: 'SEOUL0001', facility: 'SEOULGEN' })));
  return mapHl7Message(parseHl7(text), options).drafts.find((draft) => draft.resourceType === 'Patient')!.id;
}

describe('the Patient an instance names', () => {
  it('is the HL7 patient with the same identifier, with or without a configured system for the authority', () => {
    const configured = { ...defaultHl7MappingOptions, identifierSystems: { SEOULGEN: 'https://id.seoulgen.example.org/patient' } };
    for (const options of [defaultHl7MappingOptions, configured]) {
      expect(dicomPatientId({ id: 'SEOUL0001', issuer: 'SEOULGEN' }, options)).toBe(hl7PatientId(options));
    }
  });

  it('takes an ISO issuer universal id as an OID system, as HL7 takes CX-4.2/4.3', () => {
    const draft = mapDicomInstance(header({ id: 'P1', issuerUniversalId: '1.2.410.200001.1', issuerUniversalIdType: 'ISO' }), { options: defaultHl7MappingOptions, blobSha256: '0'.repeat(64), dicomwebBaseUrl: BASE, sendingAeTitle: '' }).drafts[0]!;
    expect(draft['identifier']).toEqual({ $merge: 'add', identifier: [{ system: 'urn:oid:1.2.410.200001.1', value: 'P1' }] });
  });

  it('is keyed by the sending AE title when the instance names no issuer; without one, by the default authority, the bound source, or the shared last resort', () => {
    expect(dicomPatientId({ id: 'P1' }, defaultHl7MappingOptions, 'CT01')).toBe(dicomPatientId({ id: 'P1', issuer: 'CT01' }));
    const overStow = (options: Hl7MappingOptions) => mapDicomInstance(header({ id: 'P1' }), { options, blobSha256: '0'.repeat(64), dicomwebBaseUrl: BASE, sendingAeTitle: '' });
    const configured = overStow({ ...defaultHl7MappingOptions, defaultAuthority: 'RADIOLOGY', boundSource: 'hospital-a' });
    expect(configured.drafts[0]!.id).toBe(dicomPatientId({ id: 'P1', issuer: 'RADIOLOGY' }));
    expect(configured.issues).toEqual([expect.objectContaining({ severity: 'information', code: 'ANCHORLINE_ISSUE_AUTHORITY_FALLBACK', location: '(0010,0021)' })]);
    const bound = overStow({ ...defaultHl7MappingOptions, boundSource: 'hospital-a' });
    expect(bound.drafts[0]!.id).toBe(dicomPatientId({ id: 'P1', issuer: 'hospital-a' }));
    expect(bound.issues).toEqual([expect.objectContaining({ severity: 'information', code: 'ANCHORLINE_ISSUE_AUTHORITY_FALLBACK' })]);
    const nowhere = overStow(defaultHl7MappingOptions);
    expect(nowhere.drafts[0]!['identifier']).toEqual({ $merge: 'add', identifier: [{ system: 'urn:anchorline:authority:unidentified-sender', value: 'P1' }] });
    expect(nowhere.issues).toEqual([expect.objectContaining({ severity: 'warning', code: 'ANCHORLINE_ISSUE_AUTHORITY_FALLBACK' })]);
  });

  it('keeps a study without Patient ID with a patient of that study alone, never matched by name', () => {
    const named = { name: { alphabetic: { family: 'Doe', given: ['Jane'] } } };
    const first = mapDicomInstance(header(named), { options: defaultHl7MappingOptions, blobSha256: '0'.repeat(64), dicomwebBaseUrl: BASE, sendingAeTitle: 'CT01' });
    const patient = first.drafts[0]!;
    expect(patient['identifier']).toBeUndefined();
    expect(first.issues).toEqual([expect.objectContaining({ severity: 'warning', code: 'ANCHORLINE_ISSUE_PATIENT_UNIDENTIFIED', location: '(0010,0020)' })]);
    // Another instance of the study lands with the same patient; another study with the same name does not.
    const sameStudy = { ...header(named), sopInstanceUid: '2.25.7.1.2' };
    expect(mapDicomInstance(sameStudy, { options: defaultHl7MappingOptions, blobSha256: '1'.repeat(64), dicomwebBaseUrl: BASE, sendingAeTitle: 'CT02' }).drafts[0]!.id).toBe(patient.id);
    const otherStudy = { ...header(named), studyInstanceUid: '2.25.8', seriesInstanceUid: '2.25.8.1', sopInstanceUid: '2.25.8.1.1' };
    expect(mapDicomInstance(otherStudy, { options: defaultHl7MappingOptions, blobSha256: '2'.repeat(64), dicomwebBaseUrl: BASE, sendingAeTitle: 'CT01' }).drafts[0]!.id).not.toBe(patient.id);
  });

  it('takes a series modality from the instances that give one, and states it unknown while none has', () => {
    const context = { options: defaultHl7MappingOptions, blobSha256: '0'.repeat(64), dicomwebBaseUrl: BASE, sendingAeTitle: 'CT01' };
    const without = { ...header({ id: 'P1' }), series: {} };
    const firstResult = mapDicomInstance(without, context);
    expect(firstResult.issues).toEqual([expect.objectContaining({ code: 'ANCHORLINE_ISSUE_MISSING_FIELD', location: '(0008,0060)' })]);
    const study = (drafts: ReturnType<typeof mapDicomInstance>['drafts']) => drafts.find((d) => d.resourceType === 'ImagingStudy')!;
    const alone = mergeDraft(undefined, study(firstResult.drafts));
    expect((alone['series'] as any[])[0].modality).toEqual({ extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] });
    expect(alone['modality']).toBeUndefined();
    expect(validateFhirResource(alone)).toEqual([]);
    const withCt = mergeDraft(alone, study(mapDicomInstance({ ...header({ id: 'P1' }), sopInstanceUid: '2.25.7.1.2' }, context).drafts));
    const thenWithout = mergeDraft(withCt, study(mapDicomInstance({ ...without, sopInstanceUid: '2.25.7.1.3' }, context).drafts));
    for (const merged of [withCt, thenWithout]) {
      expect((merged['series'] as any[])[0].modality).toEqual({ system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'CT' });
      expect(merged['modality']).toEqual([{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'CT' }]);
    }
  });
});

describe('the ingest converter', () => {
  const bytes = readFileSync(path.join(FIXTURES, 'ct-1.dcm'));
  const { headerLength } = parseDicomInstance(bytes, { maxInflatedBytes: 1 << 20 });
  const message = {
    id: 1,
    protocol: 'dicom',
    sender: 'CT01',
    raw: bytes.subarray(0, headerLength),
    blobSha256: createHash('sha256').update(bytes).digest(),
  } as unknown as InboxMessage;

  it('maps from the raw header alone, with the config for the AE title and the issuer', () => {
    const seen: Array<{ sendingApplication: string; sendingFacility: string }> = [];
    const fallback = staticMappingSource(defaultHl7MappingOptions);
    const mappings: MappingSource = {
      select(selected) {
        seen.push({ sendingApplication: selected!.sendingApplication, sendingFacility: selected!.sendingFacility });
        return fallback.select(selected);
      },
    };
    const { mapping, result } = createDicomConverter({ dicomwebBaseUrl: BASE, maxInflatedBytes: 1 << 20 }).convert(message, mappings);
    expect(seen).toEqual([{ sendingApplication: 'CT01', sendingFacility: 'SEOULGEN' }]);
    expect(mapping.name).toBe('default');
    const study = result.drafts.find((draft) => draft.resourceType === 'ImagingStudy')!;
    const instance = (study['series'] as { series: Array<{ instance: Array<{ extension: Array<{ valueString: string }> }> }> }).series[0]!.instance[0]!;
    expect(instance.extension[0]!.valueString).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('refuses a row without a blob', () => {
    expect(() => createDicomConverter({ dicomwebBaseUrl: BASE, maxInflatedBytes: 1 << 20 }).convert({ ...message, blobSha256: null }, staticMappingSource(defaultHl7MappingOptions))).toThrow(
      expect.objectContaining({ code: 'ANCHORLINE_ERR_MAPPING_FAILED' }),
    );
  });
});

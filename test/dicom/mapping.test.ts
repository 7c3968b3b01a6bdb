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
import { defaultHl7MappingOptions, mapDicomInstance, mapHl7Message, type Hl7MappingOptions } from '../../mappers/index.ts';
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

  it('is keyed by the sending AE title when the instance names no issuer, and refused when there is neither', () => {
    expect(dicomPatientId({ id: 'P1' }, defaultHl7MappingOptions, 'CT01')).toBe(dicomPatientId({ id: 'P1', issuer: 'CT01' }));
    expect(() => dicomPatientId({ id: 'P1' }, defaultHl7MappingOptions, '')).toThrow(expect.objectContaining({ code: 'ANCHORLINE_ERR_MAPPING_MISSING_FIELD', location: '(0010,0021)' }));
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

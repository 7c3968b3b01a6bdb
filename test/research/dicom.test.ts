/**
 * DICOM de-identification under the Basic Application Level Confidentiality Profile, on the DICOM fixtures (DCMTK
 * files in every transfer syntax the engine accepts, Korean names in ISO 2022 IR 149 and in EUC-KR without escapes).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseDicomInstance } from '../../formats/dicom/index.ts';
import { dateOffsetDays, deidentifyDicomDataset, deidentifyDicomPart10, pseudonymousId, readDicomDataset, remappedUid, shiftDate, writeDicomPart10, type DicomDataset } from '../../research/index.ts';
import { SECRET_A, SECRET_B } from './support.ts';

const file = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../fixtures/dicom/${name}.dcm`, import.meta.url)));
const context = { projectSecret: SECRET_A, patient: 'Patient/seoul-0001' };
const latin1 = new TextDecoder('latin1');
const text = (dataset: DicomDataset, tag: string): string | undefined => {
  const element = dataset.elements.find((e) => e.tag === tag);
  return element?.value ? latin1.decode(element.value).replace(/[\0 ]+$/, '') : undefined;
};
const pixels = (dataset: DicomDataset): Uint8Array | undefined => dataset.elements.find((e) => e.tag === '7FE00010')?.value;

describe('the Basic Profile on real files', () => {
  for (const name of ['ct-1', 'ct-2', 'ct-3', 'mr-1', 'mr-2', 'cr-euckr-no-escape']) {
    it(`${name}: removes the patient's identity, remaps UIDs, shifts dates, and the output parses with the pixel data unchanged`, () => {
      const source = readDicomDataset(file(name));
      const { bytes, refused } = deidentifyDicomPart10(file(name), context);
      expect(refused).toBeUndefined();
      const out = readDicomDataset(bytes!);
      expect(text(out, '00100010')).toBe('');
      expect(text(out, '00100020')).toBe(pseudonymousId(SECRET_A, 'Patient', 'seoul-0001'));
      expect(text(out, '00100030')).toBe('');
      expect(text(out, '00100021')).toBeUndefined();
      expect(text(out, '00080050') ?? '').toBe('');
      expect(text(out, '00081030')).toBeUndefined();
      expect(text(out, '00120062')).toBe('YES');
      const study = text(source, '0020000D')!;
      expect(text(out, '0020000D')).toBe(remappedUid(SECRET_A, study));
      expect(text(out, '00080018')).toMatch(/^2\.25\.\d+$/);
      const offset = dateOffsetDays(SECRET_A, 'Patient/seoul-0001', 365);
      const studyDate = text(source, '00080020')!;
      expect(text(out, '00080020')).toBe(shiftDate(`${studyDate.slice(0, 4)}-${studyDate.slice(4, 6)}-${studyDate.slice(6)}`, offset)!.replace(/-/g, ''));
      expect(pixels(out)).toEqual(pixels(source));
      // The engine's own DICOM reader accepts the output, and finds no identity in it.
      const header = parseDicomInstance(bytes!, { maxInflatedBytes: 1 << 20 }).header;
      expect(header.patient.name).toBeUndefined();
      expect(header.sopInstanceUid).toBe(text(out, '00080018'));
    });
  }

  it('keeps UIDs consistent across the instances of a study and unrelated across projects', () => {
    const study = (bytes: Uint8Array, secret: Uint8Array) => text(readDicomDataset(deidentifyDicomPart10(bytes, { projectSecret: secret }).bytes!), '0020000D');
    expect(study(file('ct-1'), SECRET_A)).toBe(study(file('ct-2'), SECRET_A));
    expect(study(file('ct-1'), SECRET_A)).not.toBe(study(file('ct-1'), SECRET_B));
  });

  it('removes institutions, physicians and private attributes, and keeps the Retain Patient Characteristics Option apart', () => {
    const dataset = readDicomDataset(file('ct-1'));
    const value = (s: string) => new TextEncoder().encode(s.length % 2 ? `${s} ` : s);
    dataset.elements.push(
      { tag: '00080080', vr: 'LO', value: value('SEOUL GENERAL HOSPITAL') },
      { tag: '00080090', vr: 'PN', value: value('Kim^Doctor') },
      { tag: '00081050', vr: 'PN', value: value('Park^Tech') },
      { tag: '00091010', vr: 'LO', value: value('private note') },
      { tag: '00101010', vr: 'AS', value: value('044Y') },
      { tag: '00280301', vr: 'CS', value: value('NO') },
    );
    dataset.elements.sort((a, b) => (a.tag < b.tag ? -1 : 1));
    const out = deidentifyDicomDataset(dataset, context).dataset!;
    expect(text(out, '00080080')).toBeUndefined();
    expect(text(out, '00080090')).toBe('');
    expect(text(out, '00081050')).toBeUndefined();
    expect(text(out, '00091010')).toBeUndefined();
    expect(text(out, '00101010')).toBeUndefined();
    const retained = deidentifyDicomDataset(dataset, context, { retainPatientCharacteristics: true }).dataset!;
    expect(text(retained, '00101010')).toBe('044Y');
    expect(text(retained, '00100040')).toBe('M');
    // Written and read again.
    expect(readDicomDataset(writeDicomPart10(out)).elements.map((e) => e.tag)).toEqual(out.elements.map((e) => e.tag));
  });

  it('refuses an instance with burned in annotation', () => {
    const dataset = readDicomDataset(file('ct-1'));
    dataset.elements.push({ tag: '00280301', vr: 'CS', value: new TextEncoder().encode('YES ') });
    const result = deidentifyDicomDataset(dataset, context);
    expect(result.dataset).toBeUndefined();
    expect(result.refused).toMatch(/burned in annotation/);
  });

  it('removes dates instead of shifting them when asked', () => {
    const out = readDicomDataset(deidentifyDicomPart10(file('ct-1'), context, { dates: 'remove' }).bytes!);
    expect(text(out, '00080020')).toBe('');
    expect(text(out, '00080021')).toBeUndefined();
  });
});

/**
 * The element merge rules DICOM drafts use (mappers/merge.ts): a study's instances arriving one at a time, in any
 * order, make the same ImagingStudy; a PACS's Patient draft adds its identifier and fills gaps, never overwrites.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDicomInstance } from '../../formats/dicom/parse.ts';
import { defaultHl7MappingOptions, mapDicomInstance, mergeDraft, validateFhirResource, type ResourceDraft } from '../../mappers/index.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dicom');
const STUDY = ['ct-1', 'ct-2', 'ct-3', 'mr-1', 'mr-2'];

function drafts(name: string): ResourceDraft[] {
  const { header } = parseDicomInstance(readFileSync(path.join(FIXTURES, `${name}.dcm`)), { maxInflatedBytes: 1 << 20 });
  return mapDicomInstance(header, { options: defaultHl7MappingOptions, blobSha256: name.padEnd(64, '0').replace(/[^0-9a-f]/g, 'a'), dicomwebBaseUrl: 'http://127.0.0.1:8080/dicomweb', sendingAeTitle: 'MODALITY1' }).drafts;
}

function studyDraft(name: string): ResourceDraft {
  return drafts(name).find((draft) => draft.resourceType === 'ImagingStudy')!;
}

function applyAll(names: string[]): Record<string, unknown> | undefined {
  let study: Record<string, unknown> | undefined;
  for (const name of names) study = mergeDraft(study, studyDraft(name));
  return study;
}

describe('ImagingStudy.series', () => {
  it('grows by one instance per draft, with counts and the modality list recomputed', () => {
    const counts: unknown[] = [];
    let study: Record<string, unknown> | undefined;
    for (const name of STUDY) {
      study = mergeDraft(study, studyDraft(name));
      counts.push([study['numberOfSeries'], study['numberOfInstances'], (study['modality'] as Array<{ code: string }>).map((m) => m.code)]);
    }
    expect(counts).toEqual([
      [1, 1, ['CT']],
      [1, 2, ['CT']],
      [1, 3, ['CT']],
      [2, 4, ['CT', 'MR']],
      [2, 5, ['CT', 'MR']],
    ]);
    expect(validateFhirResource(study)).toEqual([]);
  });

  it('gives the same study whatever order the instances arrive in', () => {
    const expected = applyAll(STUDY);
    fc.assert(
      fc.property(fc.shuffledSubarray(STUDY, { minLength: STUDY.length, maxLength: STUDY.length }), (order) => {
        expect(applyAll(order)).toEqual(expected);
      }),
      { numRuns: 60 },
    );
  });

  it('changes nothing when an instance is applied again', () => {
    const once = applyAll(STUDY)!;
    expect(mergeDraft(once, studyDraft('ct-2'))).toEqual(once);
  });

  it('replaces an instance sent again with new content, keeping one entry for it', () => {
    const once = applyAll(STUDY)!;
    const draft = studyDraft('ct-1');
    const series = (draft['series'] as { series: Array<{ instance: Array<Record<string, unknown>> }> }).series;
    series[0]!.instance[0]!['extension'] = [{ url: 'urn:anchorline:extension:dicom-instance-blob-sha256', valueString: 'f'.repeat(64) }];
    const again = mergeDraft(once, draft) as { numberOfInstances: number; series: Array<{ instance: Array<{ uid: string; extension: Array<{ valueString: string }> }> }> };
    expect(again.numberOfInstances).toBe(5);
    expect(again.series[0]!.instance.find((i) => i.uid === '2.25.1000000001.1.1')!.extension[0]!.valueString).toBe('f'.repeat(64));
  });
});

describe('a Patient from a PACS', () => {
  const hisPatient = {
    resourceType: 'Patient',
    id: 'p1',
    identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] }, system: 'urn:anchorline:authority:SEOULGEN', value: 'SEOUL0001' }],
    name: [{ family: 'Hong', given: ['Gil-dong'] }],
    gender: 'male',
    birthDate: '1980-01-01',
    _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1980-01-01T08:30:00+09:00' }] },
  };

  function pacsDraft(): ResourceDraft {
    return { ...drafts('ct-1').find((draft) => draft.resourceType === 'Patient')!, id: 'p1' };
  }

  it('changes nothing the HIS sent: the identifier is there, and name, sex and birth date (with its extension) stay', () => {
    expect(mergeDraft(hisPatient, pacsDraft())).toEqual(hisPatient);
  });

  it('adds its identifier to a record that lacks it, and fills in what is missing', () => {
    const sparse = { resourceType: 'Patient', id: 'p1', identifier: [{ system: 'urn:other', value: 'X1' }] };
    const merged = mergeDraft(sparse, pacsDraft()) as { identifier: unknown[]; name: Array<{ family: string }>; gender: string; birthDate: string };
    expect(merged.identifier).toEqual([{ system: 'urn:other', value: 'X1' }, { system: 'urn:anchorline:authority:SEOULGEN', value: 'SEOUL0001' }]);
    expect(merged.name.map((n) => n.family)).toEqual(['Hong', '洪', '홍']);
    expect(merged.gender).toBe('male');
    expect(merged.birthDate).toBe('1980-01-01');
  });

  it('creates the record when there is none', () => {
    const created = mergeDraft(undefined, pacsDraft());
    expect(created['identifier']).toEqual([{ system: 'urn:anchorline:authority:SEOULGEN', value: 'SEOUL0001' }]);
    expect(validateFhirResource(created)).toEqual([]);
  });
});

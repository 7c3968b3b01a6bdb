/**
 * DICOM header reading and mapping against fixtures on disk (test/fixtures/dicom/, made with DCMTK by
 * regenerate.sh): NAME.dcm with NAME.expected.json ({ header, headerLength, resources }: the parsed header and the
 * drafts applied to nothing) or NAME.error.json ({ code, location }). UPDATE_DICOM_FIXTURES=1 rewrites the expected
 * files from what the code produces now; review the diff before keeping it.
 *
 * Every resource a fixture maps to must be valid FHIR R4, and the header prefix the intake stores (the bytes before
 * the pixel data) must read back as the same header, since that prefix is all the ingest worker gets.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseDicomInstance } from '../../formats/dicom/parse.ts';
import { readDicomInstance } from '../../formats/dicom/inflate.ts';
import { isAnchorlineError } from '../../errors/index.ts';
import { defaultHl7MappingOptions, mapDicomInstance, mergeDraft, validateFhirResource } from '../../mappers/index.ts';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dicom');
const UPDATE = process.env.UPDATE_DICOM_FIXTURES === '1';
const OPTIONS = { maxInflatedBytes: 16 * 1024 * 1024 };

const names = readdirSync(ROOT)
  .filter((file) => file.endsWith('.dcm'))
  .map((file) => file.slice(0, -'.dcm'.length))
  .sort();

function file(name: string, suffix: string): string {
  return path.join(ROOT, `${name}${suffix}`);
}

/** What the intake makes of the fixture: readDicomInstance judges a deflated data set whole, as the intake does. */
async function outcome(name: string): Promise<unknown> {
  const bytes = readFileSync(file(name, '.dcm'));
  try {
    const { header, headerLength } = await readDicomInstance(bytes, OPTIONS);
    const result = mapDicomInstance(header, {
      options: defaultHl7MappingOptions,
      blobSha256: createHash('sha256').update(bytes).digest('hex'),
      dicomwebBaseUrl: 'http://127.0.0.1:8080/dicomweb',
      sendingAeTitle: 'MODALITY1',
    });
    return { header, headerLength, resources: result.drafts.map((draft) => mergeDraft(undefined, draft)) };
  } catch (error) {
    if (!isAnchorlineError(error)) throw error;
    return { code: error.code, location: error.location ?? null };
  }
}

describe('DICOM fixtures', () => {
  it('has fixtures of every kind', () => {
    expect(names).toEqual(expect.arrayContaining(['ct-1', 'ct-2', 'ct-3', 'mr-1', 'mr-2', 'cr-euckr-no-escape', 'no-dicm-prefix', 'truncated', 'length-past-end', 'deflate-bomb', 'bad-uid-traversal']));
  });

  for (const name of names) {
    it(name, async () => {
      const actual = await outcome(name);
      const isError = typeof actual === 'object' && actual !== null && 'code' in actual;
      const expectedFile = file(name, isError ? '.error.json' : '.expected.json');
      if (UPDATE) writeFileSync(expectedFile, `${JSON.stringify(actual, null, 2)}\n`);
      expect(existsSync(expectedFile), `${path.basename(expectedFile)} exists`).toBe(true);
      expect(actual).toEqual(JSON.parse(readFileSync(expectedFile, 'utf8')));
      if (isError) return;
      const { resources } = actual as { resources: Array<Record<string, unknown>> };
      for (const resource of resources) expect(validateFhirResource(resource), `${String(resource.resourceType)} is valid FHIR R4`).toEqual([]);
    });
  }

  it('reads the same header from the stored prefix as from the whole instance', () => {
    for (const name of names) {
      const bytes = readFileSync(file(name, '.dcm'));
      let whole;
      try {
        whole = parseDicomInstance(bytes, OPTIONS);
      } catch {
        continue;
      }
      const prefix = parseDicomInstance(bytes.subarray(0, whole.headerLength), OPTIONS);
      expect(prefix.header, name).toEqual(whole.header);
      expect(prefix.headerLength, name).toBe(whole.headerLength);
    }
  });
});

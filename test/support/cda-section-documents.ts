/**
 * C-CDA documents for the tests of the section converters (mappers/cda/sections/): the crafted ones under
 * test/fixtures/cda/sections/ and the public corpus under test/fixtures/corpus/ccda/, converted as the intake
 * converts them, with the checks every converted resource must pass and the test every crafted document gets.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect, it } from 'vitest';

import { stringifyJson } from '../../anchor/index.ts';
import { convertCdaDocument, type CdaConversion } from '../../mappers/cda/index.ts';
import { requiredCodeIssues } from '../../mappers/fhir-required-codes.ts';
import { defaultHl7MappingOptions, mergeDraft, validateFhirResource, type ResourceDraft } from '../../mappers/index.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

/** A crafted document of test/fixtures/cda/sections/ (NAME.xml), converted. */
export function convertSectionFixture(name: string): CdaConversion {
  return convertBytes(readFileSync(path.join(FIXTURES, 'cda', 'sections', `${name}.xml`)));
}

/** A public document of the corpus (its path under test/fixtures/corpus/ccda/), converted. */
export function convertCorpusDocument(file: string): CdaConversion {
  return convertBytes(readFileSync(path.join(FIXTURES, 'corpus', 'ccda', file)));
}

export function convertBytes(raw: Buffer): CdaConversion {
  return convertCdaDocument(raw, {
    mapping: defaultHl7MappingOptions,
    limits: { maxBytes: 20_000_000, maxDepth: 400 },
    source: { sha256: createHash('sha256').update(raw).digest(), size: raw.length },
  });
}

/** The drafts of one resource type, applied to nothing (as new resources: the nulls of complete drafts gone). */
export function resourcesOf(conversion: CdaConversion, type: string): Array<Record<string, unknown> & { id: string }> {
  return conversion.drafts.filter((draft) => draft.resourceType === type).map((draft) => mergeDraft(undefined, draft) as Record<string, unknown> & { id: string });
}

/** The resource a reference (`Type/id`) of the conversion names. */
export function resolve(conversion: CdaConversion, reference: unknown): Record<string, unknown> | undefined {
  const target = (reference as { reference?: string } | undefined)?.reference;
  const draft = conversion.drafts.find((candidate) => `${candidate.resourceType}/${candidate.id}` === target);
  return draft === undefined ? undefined : mergeDraft(undefined, draft);
}

/**
 * What is wrong with the conversion's drafts of `types`: FHIR R4 validity and required bindings of each, and every
 * reference from them naming a resource of the conversion. Empty when all is well.
 */
export function problemsOf(conversion: CdaConversion, types: readonly string[]): string[] {
  const keys = new Set(conversion.drafts.map((draft: ResourceDraft) => `${draft.resourceType}/${draft.id}`));
  const problems: string[] = [];
  for (const draft of conversion.drafts) {
    if (!types.includes(draft.resourceType)) continue;
    const resource = mergeDraft(undefined, draft);
    const where = `${draft.resourceType}/${draft.id}`;
    for (const problem of [...validateFhirResource(resource), ...requiredCodeIssues(resource)]) problems.push(`${where}: ${problem}`);
    for (const match of JSON.stringify(resource).matchAll(/"reference":"([A-Za-z]+\/[^"]+)"/g)) {
      if (!keys.has(match[1]!)) problems.push(`${where}: reference ${match[1]} names no resource of the document`);
    }
  }
  return problems;
}

/** The resource of `resources` with an identifier of this value. */
export function byIdentifier(resources: Array<Record<string, unknown>>, value: string): Record<string, unknown> | undefined {
  return resources.find((resource) => (resource.identifier as Array<{ value?: string }> | undefined)?.some((identifier) => identifier.value === value));
}

/**
 * The test of every crafted document (`conversion` is test/fixtures/cda/sections/NAME.xml converted): its drafts of
 * `types` are valid FHIR R4 whose references all resolve, and the same bytes converted again give the same drafts.
 */
export function itIsValidAndRepeatable(name: string, conversion: CdaConversion, types: readonly string[]): void {
  it('makes valid FHIR R4 whose references all resolve, and the same ids from the same bytes', () => {
    expect(problemsOf(conversion, types)).toEqual([]);
    expect(stringifyJson(convertSectionFixture(name).drafts)).toBe(stringifyJson(conversion.drafts));
  });
}

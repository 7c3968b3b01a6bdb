/**
 * Helpers of the section converter tests (test/cda/sections-*.test.ts): converting a document from the fixtures (the
 * crafted ones of test/fixtures/cda/sections, or the public corpus), finding what a Composition section lists, and
 * checking that every draft is valid FHIR R4 and every reference resolves.
 */

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect } from 'vitest';

import type { CdaConversion } from '../../mappers/cda/index.ts';
import { mergeDraft, validateFhirResource, type ResourceDraft } from '../../mappers/index.ts';
import { requiredCodeIssues } from '../../mappers/fhir-required-codes.ts';
import { convertBytes } from '../support/cda-section-documents.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

/** A crafted document of test/fixtures/cda/sections. */
export const sectionFixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, 'cda', 'sections', name));
/** A document of the public corpus (test/fixtures/corpus/ccda), by its path there. */
export const corpusDocument = (file: string): Buffer => readFileSync(path.join(FIXTURES, 'corpus', 'ccda', file));

/** A document converted as the intake converts it (../support/cda-section-documents.ts). */
export function convert(raw: Buffer | string): CdaConversion {
  return convertBytes(Buffer.isBuffer(raw) ? raw : Buffer.from(raw));
}

export type Draft = ResourceDraft & Record<string, any>;

/** A draft as the resource it creates (nulls removed), for reading. */
export function resourceOf(conversion: CdaConversion, reference: string): Draft {
  const [type, id] = reference.split('/');
  const draft = conversion.drafts.find((candidate) => candidate.resourceType === type && candidate.id === id);
  expect(draft, reference).toBeDefined();
  return mergeDraft(undefined, draft!) as Draft;
}

export function ofType(conversion: CdaConversion, type: string): Draft[] {
  return conversion.drafts.filter((draft) => draft.resourceType === type).map((draft) => mergeDraft(undefined, draft) as Draft);
}

/** The Composition section with this title, and the resources its entries name. */
export function section(conversion: CdaConversion, title: string): { section: Record<string, any>; entries: Draft[] } {
  const composition = ofType(conversion, 'Composition')[0]!;
  const found = (composition.section as Array<Record<string, any>>).find((candidate) => candidate.title === title);
  expect(found, `section ${title}`).toBeDefined();
  return { section: found!, entries: ((found!.entry ?? []) as Array<{ reference: string }>).map((entry) => resourceOf(conversion, entry.reference)) };
}

/** The code of a CodeableConcept's first coding. */
export const codeOf = (concept: unknown): string | undefined => (concept as { coding?: Array<{ code?: string }> } | undefined)?.coding?.[0]?.code;

/** Every draft valid FHIR R4 (required bindings included), and every reference among them resolving. */
export function expectValid(conversion: CdaConversion): void {
  const keys = new Set(conversion.drafts.map((draft) => `${draft.resourceType}/${draft.id}`));
  for (const draft of conversion.drafts) {
    const resource = mergeDraft(undefined, draft);
    const where = `${draft.resourceType}/${draft.id}`;
    expect(validateFhirResource(resource), where).toEqual([]);
    expect(requiredCodeIssues(resource), where).toEqual([]);
    for (const match of JSON.stringify(resource).matchAll(/"reference":"([A-Za-z]+\/[^"#]+)"/g)) {
      // A replaced document's Composition and DocumentReference are not in this one.
      if (match[1]!.startsWith('Composition/') || match[1]!.startsWith('DocumentReference/')) continue;
      expect(keys, `${where} -> ${match[1]}`).toContain(match[1]);
    }
  }
}

/**
 * Deterministic mutations of a document's text: an element removed or doubled, an attribute removed or given a value
 * that is no value of it ('X', '1'). For the property that any of them converts to valid FHIR or is refused with a
 * code.
 */
export function* mutations(text: string, count: number, seed: number): Generator<string> {
  let state = seed;
  const random = (): number => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const starts = [...text.matchAll(/<([A-Za-z][\w:]*)[\s>/]/g)].filter((match) => match[1] !== 'ClinicalDocument');
  const attributes = [...text.matchAll(/\s[A-Za-z:]+="[^"]*"/g)];
  for (let produced = 0; produced < count; ) {
    if (random() < 0.4) {
      const attribute = attributes[Math.floor(random() * attributes.length)]!;
      const replacement = random() < 0.5 ? '' : attribute[0].replace(/="[^"]*"/, random() < 0.5 ? '="X"' : '="1"');
      produced++;
      yield text.slice(0, attribute.index) + replacement + text.slice(attribute.index! + attribute[0].length);
      continue;
    }
    const start = starts[Math.floor(random() * starts.length)]!;
    const at = start.index!;
    const tagEnd = text.indexOf('>', at);
    let end = text[tagEnd - 1] === '/' ? tagEnd + 1 : -1;
    if (end < 0) {
      const close = text.indexOf(`</${start[1]}>`, at);
      if (close < 0) continue;
      end = close + start[1]!.length + 3;
      // An element holding another of its name would be cut at the wrong end tag.
      if ((text.slice(at + 1, end).match(new RegExp(`<${start[1]}[\\s>/]`, 'g')) ?? []).length > 0) continue;
    }
    const element = text.slice(at, end);
    produced++;
    yield text.slice(0, at) + (random() < 0.6 ? '' : element + element) + text.slice(end);
  }
}

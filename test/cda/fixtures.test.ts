/**
 * C-CDA conversion against fixtures on disk (test/fixtures/cda): NAME.xml with NAME.expected.json (the document
 * facts, the drafts and the issues) or NAME.error.json ({ code, location }), and optionally NAME.options.json
 * ({ limits, mapping } over the defaults). Public samples are named sample-*.xml (SAMPLES.md says where they come
 * from and under which licence); the rest are crafted.
 *
 * Every draft, applied to nothing (a new resource), must be valid FHIR R4, and the conversion's document Bundle a
 * valid FHIR document: Composition first with a subject, a unique RESTful fullUrl on every entry, every (relative)
 * reference between entries resolving to one.
 *
 * UPDATE_CDA_FIXTURES=1 rewrites the expected files from the current output (review the diff before keeping it).
 */

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { AnchorlineError } from '../../errors/index.ts';
import { cdaDocumentBundle, convertCdaDocument, type CdaConversion, type CdaConversionOptions } from '../../mappers/cda/index.ts';
import { defaultHl7MappingOptions, mergeDraft, validateFhirResource } from '../../mappers/index.ts';
import { requiredCodeIssues } from '../../mappers/fhir-required-codes.ts';
import { parseJson, stringifyJson } from '../../anchor/index.ts';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'cda');
const UPDATE = process.env.UPDATE_CDA_FIXTURES === '1';

const names = readdirSync(ROOT)
  .filter((file) => file.endsWith('.xml'))
  .map((file) => file.slice(0, -'.xml'.length))
  .sort();
const file = (name: string, suffix: string): string => path.join(ROOT, `${name}${suffix}`);

/** Lossless (anchor/json.ts): an expected decimal `5.40` is the LosslessNumber the conversion keeps, not 5.4. */
function readJson<T>(at: string): T {
  return parseJson(readFileSync(at, 'utf8')) as T;
}

function convert(name: string): CdaConversion {
  const raw = readFileSync(file(name, '.xml'));
  const extra = existsSync(file(name, '.options.json')) ? readJson<{ limits?: CdaConversionOptions['limits']; mapping?: object }>(file(name, '.options.json')) : {};
  return convertCdaDocument(raw, {
    mapping: { ...defaultHl7MappingOptions, ...extra.mapping },
    ...(extra.limits ? { limits: extra.limits } : {}),
    source: { sha256: createHash('sha256').update(raw).digest(), size: raw.length },
  });
}

function conversionError(name: string): AnchorlineError {
  try {
    convert(name);
  } catch (error) {
    expect(error).toBeInstanceOf(AnchorlineError);
    return error as AnchorlineError;
  }
  throw new Error(`${name} converted without an error`);
}

/** No '', [] or {} anywhere, and null only at a draft's top level. */
function emptyValues(value: unknown, where: string, problems: string[]): void {
  if (value === null) problems.push(`${where} is null below the top level`);
  else if (value === '') problems.push(`${where} is empty`);
  else if (Array.isArray(value)) {
    if (value.length === 0) problems.push(`${where} is an empty array`);
    value.forEach((item, i) => emptyValues(item, `${where}[${i}]`, problems));
  } else if (typeof value === 'object') {
    if (Object.keys(value).length === 0) problems.push(`${where} is an empty object`);
    for (const [key, member] of Object.entries(value)) emptyValues(member, `${where}.${key}`, problems);
  }
}

function references(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) for (const item of value) references(item, found);
  else if (value !== null && typeof value === 'object') {
    for (const [key, member] of Object.entries(value)) {
      if (key === 'reference' && typeof member === 'string') found.push(member);
      else references(member, found);
    }
  }
  return found;
}

describe('C-CDA fixtures', () => {
  it('has public samples, crafted documents and refusals, each with one expectation', () => {
    expect(names.filter((name) => name.startsWith('sample-')).length).toBeGreaterThanOrEqual(4);
    expect(names.filter((name) => existsSync(file(name, '.error.json'))).length).toBeGreaterThanOrEqual(10);
    if (UPDATE) return;
    for (const name of names) {
      const expectations = ['.expected.json', '.error.json'].filter((suffix) => existsSync(file(name, suffix)));
      expect(expectations, name).toHaveLength(1);
    }
  });

  for (const name of names) {
    it(name, () => {
      if (name.startsWith('error-')) {
        const error = conversionError(name);
        const actual = { code: error.code, ...(error.location ? { location: error.location } : {}) };
        if (UPDATE) writeFileSync(file(name, '.error.json'), `${JSON.stringify(actual, null, 2)}\n`);
        expect(actual).toEqual(readJson(file(name, '.error.json')));
        return;
      }
      const conversion = convert(name);
      const actual = parseJson(stringifyJson({ document: conversion.document, issues: conversion.issues, drafts: conversion.drafts }));
      if (UPDATE) writeFileSync(file(name, '.expected.json'), `${stringifyJson(actual, 2)}\n`);
      expect(actual).toStrictEqual(readJson(file(name, '.expected.json')));

      for (const draft of conversion.drafts) {
        const where = `${draft.resourceType}/${draft.id}`;
        const problems: string[] = [];
        for (const [element, value] of Object.entries(draft)) if (value !== null) emptyValues(value, `${where}.${element}`, problems);
        expect(problems).toEqual([]);
        const resource = mergeDraft(undefined, draft);
        expect(validateFhirResource(resource), where).toEqual([]);
        expect(requiredCodeIssues(resource), where).toEqual([]);
      }

      const base = 'http://127.0.0.1:8080/fhir';
      const bundle = cdaDocumentBundle(conversion, base) as unknown as { entry: Array<{ fullUrl: string; resource: { resourceType: string; subject?: { reference?: string } } }> };
      expect(validateFhirResource(bundle)).toEqual([]);
      const composition = bundle.entry[0]!.resource;
      expect(composition.resourceType).toBe('Composition');
      const fullUrls = bundle.entry.map((entry) => entry.fullUrl);
      expect(new Set(fullUrls).size).toBe(fullUrls.length);
      // References stay relative, as stored; each resolves against its entry's RESTful fullUrl to an entry.
      const patientEntry = bundle.entry.find((entry) => entry.fullUrl === `${base}/${composition.subject?.reference}`);
      expect(patientEntry?.resource.resourceType).toBe('Patient');
      for (const reference of references(bundle.entry.map((entry) => entry.resource))) {
        // Within the document every reference names an entry, except a replaced document's Composition and a contained Medication.
        if (reference.startsWith('#') || reference.startsWith('Composition/')) continue;
        expect(fullUrls, reference).toContain(`${base}/${reference}`);
      }
      // Deterministic: the same bytes give the same resources, ids included.
      expect(stringifyJson(convert(name).drafts)).toBe(stringifyJson(conversion.drafts));
    });
  }
});

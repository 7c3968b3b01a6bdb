/**
 * ADT mapping against fixtures on disk: test/fixtures/adt/NAME.hl7 with NAME.expected.json (the MappingResult) or
 * NAME.error.json ({ code, location }), and optionally NAME.options.json (merged over the default options).
 */

import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { parseHl7 } from '../../formats/hl7v2/parse.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { type Hl7MappingOptions, type MappingResult, type ResourceDraft, defaultHl7MappingOptions, mapHl7Message, mergeDraft, validateFhirResource } from '../../mappers/index.ts';

import { expectValidDrafts } from './fhir-shape.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'adt');

const names = readdirSync(FIXTURES)
  .filter((file) => file.endsWith('.hl7'))
  .map((file) => file.slice(0, -'.hl7'.length))
  .sort();

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8')) as T;
}

/** Fixture files use CR, LF or CRLF between segments (editors differ); the wire format is CR. */
function readMessage(name: string): string {
  return readFileSync(path.join(FIXTURES, `${name}.hl7`), 'utf8').replace(/\r\n|\n/g, '\r');
}

function optionsFor(name: string): Hl7MappingOptions {
  const file = `${name}.options.json`;
  return existsSync(path.join(FIXTURES, file)) ? { ...defaultHl7MappingOptions, ...readJson<Partial<Hl7MappingOptions>>(file) } : defaultHl7MappingOptions;
}

/** The message's Patient draft: the organizations its identifiers name come before it. */
function patientIn(result: MappingResult): ResourceDraft {
  return result.drafts.find((draft) => draft.resourceType === 'Patient')!;
}

function map(name: string): MappingResult {
  return mapHl7Message(parseHl7(readMessage(name)), optionsFor(name));
}

describe('ADT fixtures', () => {
  it('has at least 40 fixtures, each with exactly one expectation', () => {
    expect(names.length).toBeGreaterThanOrEqual(40);
    for (const name of names) {
      const expectations = [`${name}.expected.json`, `${name}.error.json`].filter((file) => existsSync(path.join(FIXTURES, file)));
      expect(expectations, name).toHaveLength(1);
    }
  });

  for (const name of names) {
    it(name, () => {
      const errorFile = `${name}.error.json`;
      if (existsSync(path.join(FIXTURES, errorFile))) {
        const want = readJson<{ code: string; location?: string }>(errorFile);
        let thrown: unknown;
        try {
          map(name);
        } catch (error) {
          thrown = error;
        }
        expect(thrown).toBeInstanceOf(AnchorlineError);
        expect({ code: (thrown as AnchorlineError).code, location: (thrown as AnchorlineError).location }).toEqual(want);
        return;
      }
      const result = map(name);
      // Through JSON, as the store sees it: undefined elements vanish, nulls stay.
      expect(JSON.parse(JSON.stringify(result))).toEqual(readJson<MappingResult>(`${name}.expected.json`));
      expectValidDrafts(result.drafts);
      // Each draft, stored as a new resource, is valid FHIR R4 by the base StructureDefinitions.
      for (const draft of result.drafts) expect(validateFhirResource(mergeDraft(undefined, draft)), `${draft.resourceType}/${draft.id}`).toEqual([]);
    });
  }

  it('the same MRN from two facilities maps to two patients', () => {
    const [a, b] = [map('same-mrn-facility-a'), map('same-mrn-facility-b')];
    expect(patientIn(a).id).not.toBe(patientIn(b).id);
    expect(a.drafts[1]!.id).not.toBe(b.drafts[1]!.id);
  });

  it('admit and update of the same patient and visit address the same resources', () => {
    const [admit, update] = [map('a01-admit-with-visit'), map('a08-update-with-nulls')];
    // The patient and the visit; the people and places each message names besides are its own.
    const keys = (result: MappingResult): string[] => result.drafts.filter((d) => d.resourceType === 'Patient' || d.resourceType === 'Encounter').map((d) => `${d.resourceType}/${d.id}`);
    expect(keys(update)).toEqual(keys(admit));
  });

  it('the patient id comes from the MR identifier wherever it is in PID-3', () => {
    const reordered = readMessage('mr-not-first').replace(/PID\|1\|\|([^|]*)/, (_, list: string) => `PID|1||${list.split('~').reverse().join('~')}`);
    expect(patientIn(mapHl7Message(parseHl7(reordered), defaultHl7MappingOptions)).id).toBe(patientIn(map('mr-not-first')).id);
  });

  it('error details carry no patient data', () => {
    for (const name of names.filter((n) => existsSync(path.join(FIXTURES, `${n}.error.json`)))) {
      try {
        map(name);
      } catch (error) {
        const detail = (error as AnchorlineError).detail ?? '';
        for (const value of ['12345678', '19881301', 'KIM', 'MINSU', '000123']) expect(detail).not.toContain(value);
      }
    }
  });
});

/**
 * Message mapping against fixtures on disk, for every message family under test/fixtures/hl7v2/<family>/:
 * NAME.hl7 with NAME.expected.json (the MappingResult) or NAME.error.json ({ code, location }), and optionally
 * NAME.options.json (merged over the default options). Messages are read as bytes and decoded by MSH-18, as the
 * intake does, so a fixture may be saved in the character set it declares (EUC-KR for KS X 1001).
 *
 * Every draft a fixture produces, applied to nothing (a new resource), must be valid FHIR R4: the base
 * StructureDefinitions (validateFhirResource) and the required code bindings.
 */

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { decodeHl7Bytes } from '../../formats/hl7v2/index.ts';
import { parseHl7 } from '../../formats/hl7v2/parse.ts';
import type { Hl7Message } from '../../formats/hl7v2/types.ts';
import { AnchorlineError } from '../../errors/index.ts';
import { parseJson, stringifyJson } from '../../anchor/index.ts';
import { type Hl7MappingOptions, type MappingResult, defaultHl7MappingOptions, mapHl7Message, mergeDraft, supportedMessageTypes, validateFhirResource } from '../../mappers/index.ts';

import { requiredCodeIssues } from '../../mappers/fhir-required-codes.ts';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'hl7v2');

const families = readdirSync(ROOT)
  .filter((entry) => statSync(path.join(ROOT, entry)).isDirectory())
  .sort();

interface Fixture {
  family: string;
  name: string;
  file: (suffix: string) => string;
}

const fixtures: Fixture[] = families.flatMap((family) =>
  readdirSync(path.join(ROOT, family))
    .filter((file) => file.endsWith('.hl7'))
    .map((file) => file.slice(0, -'.hl7'.length))
    .sort()
    .map((name) => ({ family, name, file: (suffix: string) => path.join(ROOT, family, `${name}${suffix}`) })),
);

/** Lossless: an expected decimal `4.0` is the LosslessNumber the mapper makes of OBX `4.0`, not the number 4. */
function readJson<T>(file: string): T {
  return parseJson(readFileSync(file, 'utf8')) as T;
}

/** The fixture's bytes decoded by MSH-18; segments end with CR, LF or CRLF on disk (editors differ), CR on the wire. */
function readMessage(fixture: Fixture): Hl7Message {
  const { text } = decodeHl7Bytes(readFileSync(fixture.file('.hl7')));
  return parseHl7(text.replace(/\r\n|\n/g, '\r'));
}

function optionsFor(fixture: Fixture): Hl7MappingOptions {
  const file = fixture.file('.options.json');
  return existsSync(file) ? { ...defaultHl7MappingOptions, ...readJson<Partial<Hl7MappingOptions>>(file) } : defaultHl7MappingOptions;
}

function map(fixture: Fixture): MappingResult {
  return mapHl7Message(readMessage(fixture), optionsFor(fixture));
}

function mapError(fixture: Fixture): AnchorlineError {
  try {
    map(fixture);
  } catch (error) {
    expect(error).toBeInstanceOf(AnchorlineError);
    return error as AnchorlineError;
  }
  throw new Error(`${fixture.family}/${fixture.name} mapped without an error`);
}

/** No '', [] or {} anywhere, no surrounding whitespace, and null only at a draft's top level. */
function emptyValues(value: unknown, where: string, problems: string[]): void {
  if (value === null) problems.push(`${where} is null below the top level`);
  else if (value === '') problems.push(`${where} is empty`);
  else if (typeof value === 'string' && value.trim() !== value) problems.push(`${where} has surrounding whitespace`);
  else if (Array.isArray(value)) {
    if (value.length === 0) problems.push(`${where} is an empty array`);
    value.forEach((item, i) => emptyValues(item, `${where}[${i}]`, problems));
  } else if (typeof value === 'object') {
    if (Object.keys(value).length === 0) problems.push(`${where} is an empty object`);
    for (const [key, member] of Object.entries(value)) emptyValues(member, `${where}.${key}`, problems);
  }
}

describe('HL7 v2 fixtures', () => {
  it('has at least 26 fixtures across the six families, at least 5 of them degraded or failing, each with one expectation', () => {
    expect(families).toEqual(expect.arrayContaining(['documents', 'immunization', 'orders', 'pharmacy', 'results', 'scheduling']));
    expect(fixtures.length).toBeGreaterThanOrEqual(26);
    // A message with a field that cannot be mapped as sent maps with issues (degraded-*); only unsafe ones fail.
    const degraded = fixtures.filter((fixture) => fixture.name.startsWith('degraded-'));
    expect(degraded.length + fixtures.filter((fixture) => existsSync(fixture.file('.error.json'))).length).toBeGreaterThanOrEqual(5);
    for (const fixture of degraded) expect((JSON.parse(readFileSync(fixture.file('.expected.json'), 'utf8')) as MappingResult).issues?.length, fixture.name).toBeGreaterThan(0);
    for (const fixture of fixtures) {
      const expectations = ['.expected.json', '.error.json'].filter((suffix) => existsSync(fixture.file(suffix)));
      expect(expectations, `${fixture.family}/${fixture.name}`).toHaveLength(1);
    }
  });

  for (const fixture of fixtures) {
    it(`${fixture.family}/${fixture.name}`, () => {
      if (existsSync(fixture.file('.error.json'))) {
        const error = mapError(fixture);
        expect({ code: error.code, location: error.location }).toEqual(readJson(fixture.file('.error.json')));
        return;
      }
      const result = map(fixture);
      // Through JSON, as the store sees it: undefined elements vanish, nulls stay.
      // Through JSON as the store writes and reads it: a decimal must come back as sent (`4.0`, not 4).
      expect(parseJson(stringifyJson(result))).toStrictEqual(readJson<MappingResult>(fixture.file('.expected.json')));
      for (const draft of result.drafts) {
        const where = `${draft.resourceType}/${draft.id}`;
        const problems: string[] = [];
        for (const [name, value] of Object.entries(draft)) if (value !== null) emptyValues(value, `${where}.${name}`, problems);
        expect(problems).toEqual([]);
        const resource = mergeDraft(undefined, draft);
        expect(validateFhirResource(resource), where).toEqual([]);
        expect(requiredCodeIssues(resource), where).toEqual([]);
      }
    });
  }

  it('error details name fields, never the values in them', () => {
    for (const fixture of fixtures.filter((candidate) => existsSync(candidate.file('.error.json')))) {
      const error = mapError(fixture);
      const message = readMessage(fixture);
      const [segmentName, fieldNumber] = (error.location ?? '').split('-');
      const sensitive = new Set<string>();
      for (const segment of message.segments) {
        const fields = segment.name === 'PID' ? [3, 5, 7, 11, 13] : segment.name === segmentName ? [Number(fieldNumber)] : [];
        for (const field of fields) {
          for (const part of (segment.fields[field] ?? []).flat(2)) if (part.trim().length >= 3) sensitive.add(part.trim());
        }
      }
      for (const value of sensitive) expect(error.detail ?? '', `${fixture.family}/${fixture.name}`).not.toContain(value);
    }
  });

  it('the KS X 1001 fixture is stored as EUC-KR bytes, not UTF-8', () => {
    const fixture = fixtures.find((candidate) => candidate.name.includes('euc-kr'));
    expect(fixture).toBeDefined();
    const bytes = readFileSync(fixture!.file('.hl7'));
    expect(() => new TextDecoder('utf-8', { fatal: true }).decode(bytes)).toThrow();
    expect(decodeHl7Bytes(bytes).charset).toBe('euc-kr');
  });

  /** The `${resourceType}/${id}` addresses a fixture's drafts write. */
  function addresses(family: string, name: string, resourceType: string): string[] {
    const fixture = fixtures.find((candidate) => candidate.family === family && candidate.name === name)!;
    return map(fixture)
      .drafts.filter((draft) => draft.resourceType === resourceType)
      .map((draft) => draft.id);
  }

  it('a corrected result addresses the report and observations it corrects', () => {
    const original = addresses('results', 'cbc-chem-korean-lis', 'Observation');
    const corrected = addresses('results', 'corrected-glucose', 'Observation');
    expect(corrected.slice(0, original.length)).toEqual(original);
    expect(addresses('results', 'corrected-glucose', 'DiagnosticReport')).toEqual(addresses('results', 'cbc-chem-korean-lis', 'DiagnosticReport'));
  });

  it('every message about one order or appointment addresses the same resource', () => {
    expect(addresses('orders', 'orm-cancel-by-status', 'ServiceRequest')).toEqual(addresses('orders', 'orm-new-lab-order', 'ServiceRequest'));
    const booked = addresses('scheduling', 's12-new-booking', 'Appointment');
    expect(addresses('scheduling', 's13-rescheduled-tq1', 'Appointment')).toEqual(booked);
    expect(addresses('scheduling', 's15-cancelled', 'Appointment')).toEqual(booked);
  });

  it('lists every message type the fixtures exercise among the supported ones', () => {
    const supported = supportedMessageTypes();
    for (const key of ['ORU^R01', 'ORM^O01', 'OML^O21', 'SIU^S12', 'SIU^S13', 'SIU^S14', 'SIU^S15', 'VXU^V04', 'MDM^T02', 'RDE^O11']) {
      expect(supported, key).toContain(key);
    }
  });
});

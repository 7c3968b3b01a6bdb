/**
 * What a mapping config may change in the mappers: which fields feed an element (options.fieldSources) and which
 * local codes read as a table's (options.valueMaps). The fixtures with an options.json show whole messages; these
 * tests hold the rules: the defaults are the mapping without a config, every source and table the catalogues list
 * is read where they say, and values no map lists read as sent.
 */

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { decodeHl7Bytes } from '../../formats/hl7v2/index.ts';
import { parseHl7 } from '../../formats/hl7v2/parse.ts';
import { isAnchorlineError } from '../../errors/index.ts';
import {
  DEFAULT_FIELD_SOURCES,
  FIELD_SOURCE_ELEMENTS,
  VALUE_MAP_TABLES,
  type FieldSources,
  type Hl7MappingOptions,
  type MappingResult,
  type ResourceDraft,
  defaultHl7MappingOptions,
  fieldSourcesConflict,
  mapHl7Message,
  mergeDraft,
} from '../../mappers/index.ts';
import { mappedValue } from '../../mappers/hl7v2/datatypes.ts';
import { PRIOR_KEY_FIELD } from '../../mappers/hl7v2/field-sources.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

/** A segment from field number -> value. */
function segment(name: string, fields: Record<number, string>): string {
  const last = Math.max(0, ...Object.keys(fields).map(Number));
  return [name, ...Array.from({ length: last }, (_, i) => fields[i + 1] ?? '')].join('|');
}

function adt(event: string, ...segments: string[]): string {
  return [`MSH|^~\\&|APP|HOSP|||20250101120000||ADT^${event}|C1|P|2.5.1`, `EVN|${event}|20250101120000`, ...segments].join('\r');
}

function map(text: string, options: Partial<Hl7MappingOptions> = {}): MappingResult {
  return mapHl7Message(parseHl7(text), { ...defaultHl7MappingOptions, ...options });
}

function draftOf(result: MappingResult, resourceType: string): ResourceDraft {
  const draft = result.drafts.find((d) => d.resourceType === resourceType);
  if (draft === undefined) throw new Error(`no ${resourceType} draft`);
  return draft;
}

/** Every fixture message on disk with its options, decoded by MSH-18 as the intake does. */
function fixtureMessages(): Array<{ name: string; text: string; options: Partial<Hl7MappingOptions> }> {
  const dirs = [path.join(FIXTURES, 'adt'), ...readdirSync(path.join(FIXTURES, 'hl7v2')).map((family) => path.join(FIXTURES, 'hl7v2', family))];
  return dirs
    .filter((dir) => statSync(dir).isDirectory())
    .flatMap((dir) =>
      readdirSync(dir)
        .filter((file) => file.endsWith('.hl7'))
        .map((file) => {
          const base = path.join(dir, file.slice(0, -'.hl7'.length));
          const { text } = decodeHl7Bytes(readFileSync(`${base}.hl7`));
          const options = existsSync(`${base}.options.json`) ? (JSON.parse(readFileSync(`${base}.options.json`, 'utf8')) as Partial<Hl7MappingOptions>) : {};
          return { name: path.relative(FIXTURES, base), text: text.replace(/\r\n|\n/g, '\r'), options };
        }),
    );
}

/** The mapping result, or the error code and location: what a comparison of two option sets must agree on. */
function outcome(text: string, options: Partial<Hl7MappingOptions>): unknown {
  try {
    return JSON.parse(JSON.stringify(map(text, options)));
  } catch (error) {
    if (!isAnchorlineError(error)) throw error;
    return { code: error.code, location: error.location };
  }
}

describe('field source catalogue', () => {
  it('gives every element a default among its allowed sources, of the kind it takes', () => {
    for (const [element, spec] of Object.entries(FIELD_SOURCE_ELEMENTS)) {
      const defaults: readonly string[] = spec.takes === 'one' ? [spec.default as string] : (spec.default as readonly string[]);
      expect(spec.takes === 'one' ? typeof spec.default : Array.isArray(spec.default), element).toBe(spec.takes === 'one' ? 'string' : true);
      for (const source of defaults) expect(spec.allowed, element).toContain(source);
    }
    expect(fieldSourcesConflict(DEFAULT_FIELD_SOURCES)).toBeUndefined();
  });

  it('names the MRG field of every key source, for merges and class changes', () => {
    for (const element of ['Patient.key', 'Encounter.identifier'] as const) {
      for (const source of FIELD_SOURCE_ELEMENTS[element].allowed) expect(PRIOR_KEY_FIELD, source).toHaveProperty(source);
    }
  });
});

describe('field sources', () => {
  it('default to what the mappers read without a config: every fixture maps the same with them spelled out', () => {
    const messages = fixtureMessages();
    expect(messages.length).toBeGreaterThan(50);
    for (const { name, text, options } of messages) {
      const spelledOut = { ...options, fieldSources: { ...DEFAULT_FIELD_SOURCES, ...options.fieldSources }, valueMaps: options.valueMaps ?? {} };
      expect(outcome(text, spelledOut), name).toEqual(outcome(text, options));
    }
  });

  const pid = { 1: '1', 2: 'EXT-7^^^HOSP^MR', 3: 'MRN-1^^^HOSP^MR~HIE-9^^^REGION^PI', 4: 'ALT-3^^^HOSP^AN', 5: 'DOE^JANE', 8: 'F', 9: 'ROE^JANIE', 13: '^PRN^PH^^^^5550001', 14: '^WPN^PH^^^^5550002', 18: 'ACC-5^^^HOSP^AN', 19: '123-45-6789', 40: '^PRS^CP^^^^5550003' };
  const values = (list: unknown, pick: (item: any) => string): string[] => (list as any[]).map(pick);

  it('keys the patient by the Patient.key field, the first MR in it else its first identifier', () => {
    const patientId = (key: FieldSources['Patient.key'], identifiers: FieldSources['Patient.identifier']): string =>
      draftOf(map(adt('A28', segment('PID', pid)), { fieldSources: { 'Patient.key': key, 'Patient.identifier': identifiers } }), 'Patient').id;
    const byPid3 = patientId('PID-3', ['PID-3']);
    expect(patientId('PID-2', ['PID-2'])).not.toBe(byPid3);
    expect(patientId('PID-4', ['PID-4'])).not.toBe(byPid3);
    // The id depends on the identifier it is made from, not on where it was sent.
    const moved = adt('A28', segment('PID', { ...pid, 2: '', 3: 'EXT-7^^^HOSP^MR' }));
    expect(draftOf(map(moved), 'Patient').id).toBe(patientId('PID-2', ['PID-2']));
  });

  it('lists identifiers, names and numbers from their sources in the order the config gives', () => {
    const patient = draftOf(
      map(adt('A28', segment('PID', pid)), {
        fieldSources: { 'Patient.identifier': ['PID-19', 'PID-3', 'PID-2'], 'Patient.name': ['PID-9', 'PID-5'], 'Patient.telecom': ['PID-40', 'PID-13'] },
      }),
      'Patient',
    );
    expect(values(patient['identifier'], (i) => i.value)).toEqual(['123-45-6789', 'MRN-1', 'HIE-9', 'EXT-7']);
    expect((patient['identifier'] as any[])[0]).toEqual({
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'SS', display: 'Social Security number' }] },
      system: 'http://hl7.org/fhir/sid/us-ssn',
      value: '123-45-6789',
    });
    expect(values(patient['name'], (n) => n.family)).toEqual(['ROE', 'DOE']);
    expect(values(patient['telecom'], (t) => `${t.value} ${t.use}`)).toEqual(['5550003 mobile', '5550001 home']);
  });

  it('leaves out the fields a config drops, and removes an element whose only source is sent as ""', () => {
    const patient = draftOf(map(adt('A31', segment('PID', { ...pid, 40: '""' })), { fieldSources: { 'Patient.name': ['PID-5'], 'Patient.telecom': ['PID-40'] } }), 'Patient');
    expect(values(patient['name'], (n) => n.family)).toEqual(['DOE']);
    expect(patient['telecom']).toBeNull();
  });

  const visitPid = { 1: '1', 3: 'MRN-1^^^HOSP^MR', 18: 'ACC-5^^^HOSP^AN' };
  const pv1 = { 1: '1', 2: 'I', 3: 'W1^101^A', 7: 'D1^HOUSE^GREG', 8: 'D2^WILSON^JAMES', 9: 'D3^CUDDY^LISA', 17: 'D4^FOREMAN^ERIC', 19: 'V-1^^^HOSP^VN', 50: 'AV-1^^^HOSP^VN' };

  it('keys the visit by the Encounter.identifier field, and a diagnosis refers to that visit', () => {
    const dg1 = segment('DG1', { 1: '1', 3: 'I21.9^AMI^I10', 6: 'A' });
    for (const [source, value] of [
      ['PV1-19', 'V-1'],
      ['PV1-50', 'AV-1'],
      ['PID-18', 'ACC-5'],
    ] as const) {
      const result = map(adt('A01', segment('PID', visitPid), segment('PV1', pv1), dg1), { fieldSources: { 'Encounter.identifier': source } });
      const encounter = draftOf(result, 'Encounter');
      expect(values(encounter['identifier'], (i) => i.value), source).toEqual([value]);
      expect(draftOf(result, 'Condition')['encounter'], source).toEqual({ reference: `Encounter/${encounter.id}` });
    }
  });

  it('describes no visit without PV1, whatever field carries the visit number', () => {
    const result = map(adt('A01', segment('PID', visitPid)), { fieldSources: { 'Encounter.identifier': 'PID-18' } });
    expect(result.drafts.map((d) => d.resourceType)).toEqual(['Organization', 'Patient', 'Provenance']);
  });

  it('types each Encounter participant by its field', () => {
    const encounter = draftOf(map(adt('A01', segment('PID', visitPid), segment('PV1', pv1)), { fieldSources: { 'Encounter.participant': ['PV1-17', 'PV1-7', 'PV1-8', 'PV1-9'] } }), 'Encounter');
    expect(values(mergeDraft(undefined, encounter)['participant'], (p) => `${p.type[0].coding[0].code} ${p.individual.display}`)).toEqual([
      'ADM ERIC FOREMAN',
      'ATND GREG HOUSE',
      'REF JAMES WILSON',
      'CON LISA CUDDY',
    ]);
  });
});

describe('value maps', () => {
  const options = (maps: Record<string, Record<string, string>>): Hl7MappingOptions => ({ ...defaultHl7MappingOptions, valueMaps: maps });

  it('reads a mapped value instead of the one sent, and anything else as sent', () => {
    const maps = options({ HL70001: { '1': 'M', '2': 'F' } });
    expect(mappedValue(maps, 'HL70001', '1')).toBe('M');
    expect(mappedValue(maps, 'HL70001', 'F')).toBe('F');
    expect(mappedValue(maps, 'HL70001', '3')).toBe('3');
    expect(mappedValue(maps, 'HL70004', '1')).toBe('1');
    expect(mappedValue(defaultHl7MappingOptions, 'HL70001', '1')).toBe('1');
    // Matched exactly: the map is the sender's own code list.
    expect(mappedValue(options({ HL70004: { IN: 'I' } }), 'HL70004', 'in')).toBe('in');
  });

  it('never finds object members for codes named like them', () => {
    const maps = options({ HL70001: { '1': 'M' } });
    for (const code of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(mappedValue(maps, 'HL70001', code)).toBe(code);
      expect(mappedValue(maps, code, code)).toBe(code);
    }
    expect(mappedValue(options({ HL70001: { constructor: 'M' } }), 'HL70001', 'constructor')).toBe('M');
  });

  /**
   * One case per table and field in VALUE_MAP_TABLES: a message carrying `standard`, or a local code, in the field,
   * and what the mapper made of it. A local code mapped to `standard` must give what `standard` gives.
   */
  interface Case {
    table: string;
    field: string;
    standard: string;
    message: (code: string) => string;
    read: (result: MappingResult) => unknown;
  }
  const patientSegment = segment('PID', { 1: '1', 3: 'MRN-1^^^HOSP^MR', 5: 'DOE^JANE' });
  const first = (concept: unknown): unknown => (concept as { coding: unknown[] }).coding[0];
  const cases: Case[] = [
    {
      table: 'HL70001',
      field: 'PID-8',
      standard: 'F',
      message: (code) => adt('A28', segment('PID', { 1: '1', 3: 'MRN-1^^^HOSP^MR', 8: code })),
      read: (result) => draftOf(result, 'Patient')['gender'],
    },
    {
      table: 'HL70001',
      field: 'NK1-15',
      standard: 'M',
      message: (code) => adt('A28', patientSegment, segment('NK1', { 1: '1', 2: 'DOE^JOHN', 15: code })),
      read: (result) => draftOf(result, 'RelatedPerson')['gender'],
    },
    {
      table: 'HL70002',
      field: 'PID-16',
      standard: 'D',
      message: (code) => adt('A28', segment('PID', { 1: '1', 3: 'MRN-1^^^HOSP^MR', 16: code })),
      read: (result) => first(draftOf(result, 'Patient')['maritalStatus']),
    },
    {
      table: 'HL70004',
      field: 'PV1-2',
      standard: 'P',
      message: (code) => adt('A04', patientSegment, segment('PV1', { 1: '1', 2: code, 3: 'W1^101', 19: 'V-1^^^HOSP^VN' })),
      read: (result) => {
        const { class: klass, status, location } = draftOf(result, 'Encounter');
        return { klass, status, location };
      },
    },
    {
      table: 'HL70063',
      field: 'NK1-3',
      standard: 'MTH',
      message: (code) => adt('A28', patientSegment, segment('NK1', { 1: '1', 2: 'DOE^MARY', 3: code })),
      read: (result) => first((draftOf(result, 'RelatedPerson')['relationship'] as unknown[])[0]),
    },
    {
      table: 'HL70063',
      field: 'IN1-17',
      standard: 'SEL',
      message: (code) => adt('A28', patientSegment, segment('IN1', { 1: '1', 3: 'PAYER-1^^^HOSP', 17: code, 36: 'POL-1' })),
      read: (result) => {
        const coverage = draftOf(result, 'Coverage');
        return { subscriber: coverage['subscriber'], relationship: first(coverage['relationship']) };
      },
    },
    {
      table: 'HL70127',
      field: 'AL1-2',
      standard: 'FA',
      message: (code) => adt('A28', patientSegment, segment('AL1', { 1: '1', 2: code, 3: '^Peanut' })),
      read: (result) => {
        const { type, category } = draftOf(result, 'AllergyIntolerance');
        return { type, category };
      },
    },
    {
      table: 'HL70128',
      field: 'AL1-4',
      standard: 'SV',
      message: (code) => adt('A28', patientSegment, segment('AL1', { 1: '1', 3: '^Peanut', 4: code, 5: 'Hives' })),
      read: (result) => {
        const { criticality, reaction } = draftOf(result, 'AllergyIntolerance');
        return { criticality, reaction };
      },
    },
    {
      table: 'HL70131',
      field: 'NK1-7',
      standard: 'C',
      message: (code) => adt('A28', patientSegment, segment('NK1', { 1: '1', 2: 'DOE^JOHN', 7: code })),
      read: (result) => first((draftOf(result, 'RelatedPerson')['relationship'] as unknown[])[0]),
    },
  ];

  it('has a case for every table and field the catalogue lists, and nothing else', () => {
    const listed = [...VALUE_MAP_TABLES].flatMap(([table, { fields }]) => fields.map((field) => `${table} ${field}`));
    expect(cases.map((c) => `${c.table} ${c.field}`).sort()).toEqual(listed.sort());
    for (const c of cases) expect(VALUE_MAP_TABLES.get(c.table)!.codes, c.table).toContain(c.standard);
  });

  for (const c of cases) {
    it(`${c.table} applies to ${c.field}`, () => {
      const read = (code: string, maps: Record<string, Record<string, string>> = {}): unknown => {
        try {
          return c.read(map(c.message(code), { valueMaps: maps }));
        } catch (error) {
          if (isAnchorlineError(error)) return error.code;
          throw error;
        }
      };
      const standard = read(c.standard);
      expect(read('LOCAL9'), 'a local code without a map').not.toEqual(standard);
      expect(read('LOCAL9', { [c.table]: { LOCAL9: c.standard } })).toEqual(standard);
      // A map for another table changes nothing here.
      const other = [...VALUE_MAP_TABLES.keys()].find((table) => table !== c.table)!;
      expect(read('LOCAL9', { [other]: { LOCAL9: VALUE_MAP_TABLES.get(other)!.codes[0]! } })).toEqual(read('LOCAL9'));
    });
  }

  it("keeps the sender's coding as sent beside the standard one", () => {
    const pid = segment('PID', { 1: '1', 3: 'MRN-1^^^HOSP^MR', 16: '2^Married^99MAR' });
    const patient = draftOf(map(adt('A28', pid), { valueMaps: { HL70002: { '2': 'M' } } }), 'Patient');
    expect(patient['maritalStatus']).toEqual({
      coding: [
        { system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'M', display: 'Married' },
        { system: 'urn:anchorline:local/99MAR', code: '2', display: 'Married' },
      ],
    });
  });

  it('reads a code the map leaves out as unknown, keeping it as sent', () => {
    const text = adt('A28', segment('PID', { 1: '1', 3: 'MRN-1^^^HOSP^MR', 8: '9' }));
    const result = outcome(text, { valueMaps: { HL70001: { '1': 'M', '2': 'F' } } }) as MappingResult;
    expect(result.drafts.find((d) => d.resourceType === 'Patient')).toMatchObject({ gender: 'unknown', _gender: { extension: [{ valueString: '9' }] } });
    expect(result.issues).toEqual([expect.objectContaining({ code: 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', location: 'PID-8', value: '9' })]);
  });
});

/**
 * The `zSegments` key of mapping configs: rules validated strictly with file, line and key; the resolved rules in
 * the content (and so the version), a config without them keeping the version it had before the key existed; the
 * rules reaching the mappers through the config's options, in the mapping tester as in the engine.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  MappingConfigError,
  MappingConfigSet,
  builtInDefault,
  loadMappingConfigs,
  parseMappingConfig,
  readMappingConfigFile,
  storedVersion,
  type MappingBase,
} from '../../config/mapping-config.ts';
import { mapMessage } from '../../workers/mapping-dry-run.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURES = path.join(ROOT, 'test/fixtures/mapping-configs-z');
const BASE: MappingBase = { timeZone: 'Asia/Seoul', identifierSystems: {}, localCodeSystemBase: 'urn:anchorline:local' };

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof MappingConfigError) return error.problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.key}: ${p.message}`);
    throw error;
  }
  throw new Error('expected a MappingConfigError');
}

const SITE = path.join(FIXTURES, 'valid', 'site-his.yaml');

describe('mapping config zSegments validation', () => {
  const expected = JSON.parse(readFileSync(path.join(FIXTURES, 'invalid.expected.json'), 'utf8')) as Record<string, string[]>;
  const files = readdirSync(path.join(FIXTURES, 'invalid')).sort();

  it('has an expectation for every invalid fixture', () => expect(Object.keys(expected).sort()).toEqual(files));

  it.each(files)('%s is rejected with file, line and key', (name) => {
    const file = path.join(FIXTURES, 'invalid', name);
    expect(problemsOf(() => readMappingConfigFile(file, BASE))).toEqual(expected[name]!.map((line) => `${file}:${line}`));
  });

  it('accepts rules for every target, and resolves them: fields named with their segment, types filled in', () => {
    const { version } = readMappingConfigFile(SITE, BASE);
    expect(version.content.zSegments).toEqual({
      ZPI: [
        { field: 'ZPI-2', to: 'Patient.extension', type: 'boolean', url: 'https://fhir.seoulgen.example.org/StructureDefinition/vip' },
        { field: 'ZPI-3', to: 'Patient.identifier', type: 'Identifier', system: 'https://fhir.seoulgen.example.org/sid/rrn' },
        {
          field: 'ZPI-6.1',
          to: 'Observation',
          type: 'CodeableConcept',
          system: 'http://snomed.info/sct',
          code: { system: 'http://loinc.org', code: '72166-2', display: 'Tobacco smoking status' },
        },
      ],
      ZV1: [
        { field: 'ZV1-2', to: 'Encounter.extension', type: 'integer', url: 'https://fhir.seoulgen.example.org/StructureDefinition/acuity' },
        { field: 'ZV1-3', to: 'Encounter.identifier', type: 'Identifier', system: 'https://fhir.seoulgen.example.org/sid/episode' },
        { field: 'ZV1-5', to: 'Observation', type: 'Quantity', unit: '{score}', code: { system: 'https://fhir.seoulgen.example.org/CodeSystem/scores', code: 'triage' } },
      ],
    });
    // The mappers get the rules as the content holds them.
    expect(version.options.zSegments).toEqual(version.content.zSegments);
  });
});

describe('mapping config zSegments versions', () => {
  it('leaves the version of every config without zSegments as it was before the key existed', () => {
    // Digests of these files computed by the config reader as it was before zSegments.
    const before: Record<string, string> = {
      'test/fixtures/mapping-configs-z/unchanged/every-key.yaml': '144850e98802ab576b92f7306f2c705b14b53d9b725ac2cd65d07cc243137419',
      'test/fixtures/mapping-corpus/configs-v1/seoul-his.yaml': 'a86140ba07b5cbc12e06beae6721b0608f943f55e8ccba9db5f9d186f7838232',
      'test/fixtures/mapping-corpus/configs-v1/ny-general.yaml': '8a2639c7d9ad2837090b799c6076ea78a7982aa481525165ade6586ce735bc0b',
      'test/fixtures/mapping-corpus/configs-v2/seoul-his.yaml': 'b251b3331bb2a8d17d84bac0af86fac68bb87ec45662cc5f40c25b73cbd8ae4e',
      'test/fixtures/mapping-corpus/configs-v2/ny-general.yaml': 'e362e1585902997635ccb5740a09d8268fc56d85c05f0e8c4ac202755c697f3d',
      'test/fixtures/mapping-corpus-legacy/configs-v1/legacy-his.yaml': '9e419fa6aacf9c007f4d22bd7badeb70cc5ab994f9cdb616ac4c5e38f98c193e',
      'test/fixtures/mapping-corpus-legacy/configs-v2/legacy-his.yaml': '964cc474377211361a713b4e87ed784441b002c77bd5d0bb1ca1f3990b0a866d',
    };
    for (const [file, sha256] of Object.entries(before)) {
      const { version } = readMappingConfigFile(path.join(ROOT, file), BASE);
      expect(version.sha256, file).toBe(sha256);
      expect(version.content.zSegments).toBeUndefined();
      expect(version.options.zSegments).toBeUndefined();
    }
    expect(builtInDefault(BASE).sha256).toBe('ced9d25706afb8d9b680ca43113e6218627788946f159cdba3075b26e6a33d96');
  });

  it('does not change with an empty zSegments, or with a rule written another way that says the same', () => {
    const text = readFileSync(path.join(FIXTURES, 'unchanged', 'every-key.yaml'), 'utf8');
    const digest = (source: string): string => parseMappingConfig(source, 'x/every-key.yaml', BASE).version.sha256;
    expect(digest(`${text}zSegments: {}\n`)).toBe('144850e98802ab576b92f7306f2c705b14b53d9b725ac2cd65d07cc243137419');

    const rule = (field: string, type: string): string => `${text}zSegments:\n  ZPI:\n    - field: ${field}\n      to: Patient.identifier\n${type}`;
    const short = digest(rule('3', ''));
    expect(digest(rule('ZPI-3', ''))).toBe(short);
    expect(digest(rule('3', '      type: Identifier\n'))).toBe(short);
    expect(short).not.toBe('144850e98802ab576b92f7306f2c705b14b53d9b725ac2cd65d07cc243137419');
    expect(digest(rule('4', ''))).not.toBe(short);
    expect(digest(rule('ZPI-3.1', ''))).not.toBe(short);
  });

  it('keeps the order of a segment\'s rules in the version: it is the order of the extensions made', () => {
    const head = 'name: a\nmatch: {sendingApplication: HIS}\nzSegments:\n  ZPI:\n';
    const first = '    - {field: 2, to: Patient.extension, url: "https://x.example/a"}\n';
    const second = '    - {field: 3, to: Patient.extension, url: "https://x.example/b"}\n';
    const digest = (source: string): string => parseMappingConfig(source, 'x/a.yaml', BASE).version.sha256;
    expect(digest(head + first + second)).not.toBe(digest(head + second + first));
  });

  it('is read back from mapping_config only when the stored rules are valid and re-hash to it', () => {
    const { version } = readMappingConfigFile(SITE, BASE);
    // As it comes back from jsonb: plain JSON.
    const restored = storedVersion(version.name, version.sha256, JSON.parse(JSON.stringify(version.content)));
    expect(restored.sha256).toBe(version.sha256);
    expect(restored.options.zSegments).toEqual(version.content.zSegments);

    const altered = structuredClone(version.content);
    altered.zSegments = { ...altered.zSegments, ZPI: [{ ...altered.zSegments!['ZPI']![0]!, url: 'https://elsewhere.example/vip' }] };
    expect(problemsOf(() => storedVersion(version.name, version.sha256, altered))).toEqual([
      `mapping_config/${version.sha256}:1:1: (content): the stored content does not hash to its version; it was altered`,
    ]);
    const invalid = { ...structuredClone(version.content), zSegments: { PID: [{ field: 'PID-3', to: 'Patient.identifier', type: 'Identifier' }] } };
    expect(problemsOf(() => storedVersion(version.name, version.sha256, invalid))[0]).toMatch(/:1:1: zSegments\.PID: /);
  });
});

describe('mapping config zSegments in the mapping tester', () => {
  it('maps a message with the rules of the config it selects', () => {
    const { configs, problems } = loadMappingConfigs(path.join(FIXTURES, 'valid'), BASE);
    expect(problems).toEqual([]);
    const set = new MappingConfigSet(configs, builtInDefault(BASE));
    const bytes = Buffer.from(readFileSync(path.join(FIXTURES, 'valid', 'site-his-a01.hl7'), 'utf8').replace(/\r\n|\n/g, '\r'));
    const mapped = mapMessage({ file: 'site-his-a01.hl7', index: 1, bytes }, set, 'UTF-8');
    expect(mapped.error).toBeUndefined();
    expect(mapped.config).toBe('site-his');
    const resources = mapped.resources!;
    const patient = resources.find((r) => r['resourceType'] === 'Patient')!;
    expect(patient['extension']).toEqual([{ url: 'https://fhir.seoulgen.example.org/StructureDefinition/vip', valueBoolean: true }]);
    expect(patient['identifier']).toContainEqual({ system: 'https://fhir.seoulgen.example.org/sid/rrn', value: '800101-1234567' });
    const encounter = resources.find((r) => r['resourceType'] === 'Encounter')!;
    expect(encounter['extension']).toEqual([{ url: 'https://fhir.seoulgen.example.org/StructureDefinition/acuity', valueInteger: 3 }]);
    expect(encounter['identifier']).toContainEqual({ system: 'https://fhir.seoulgen.example.org/sid/episode', value: 'EP-77' });
    const observations = resources.filter((r) => r['resourceType'] === 'Observation');
    expect(observations.map((o) => [o['code'], o['valueCodeableConcept'] ?? o['valueQuantity']])).toEqual([
      [{ coding: [{ system: 'http://loinc.org', code: '72166-2', display: 'Tobacco smoking status' }] }, { coding: [{ system: 'http://snomed.info/sct', code: '8517006' }] }],
      [{ coding: [{ system: 'https://fhir.seoulgen.example.org/CodeSystem/scores', code: 'triage' }] }, { value: 12, unit: '{score}' }],
    ]);
    // Every resource the tester shows passed FHIR R4 validation; none was left out.
    expect((mapped.issues ?? []).filter((issue) => issue.code === 'ANCHORLINE_ISSUE_INVALID_RESOURCE')).toEqual([]);
  });
});

/**
 * Mapping config files: strict validation whose problems name file, line and key; versions that depend on content
 * only; selection by MSH-3/MSH-4 with fallback to the default.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readMshHeader } from '../../formats/hl7v2/header.ts';
import { canonicalBytes, sha256Hex } from '../../anchor/index.ts';
import { loadConfig } from '../../config/load.ts';
import {
  MappingConfigError,
  MappingConfigSet,
  builtInDefault,
  loadMappingConfigs,
  parseMappingConfig,
  parseMappingConfigBytes,
  readMappingConfigFile,
  storedVersion,
  type MappingBase,
  type MappingConfigVersion,
} from '../../config/mapping-config.ts';
import { DEFAULT_FIELD_SOURCES } from '../../mappers/index.ts';
import { mappingConfigSha256 } from '../../store/mapping-configs.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURES = path.join(ROOT, 'test/fixtures/mapping-configs');
const CORPUS = path.join(ROOT, 'test/fixtures/mapping-corpus');
const LEGACY = path.join(ROOT, 'test/fixtures/mapping-corpus-legacy');
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

describe('mapping config validation', () => {
  const expected = JSON.parse(readFileSync(path.join(FIXTURES, 'invalid.expected.json'), 'utf8')) as Record<string, string[]>;
  const files = readdirSync(path.join(FIXTURES, 'invalid')).sort();

  it('has an expectation for every invalid fixture', () => expect(Object.keys(expected).sort()).toEqual(files));

  it.each(files)('%s is rejected with file, line and key', (name) => {
    const file = path.join(FIXTURES, 'invalid', name);
    expect(problemsOf(() => readMappingConfigFile(file, BASE))).toEqual(expected[name]!.map((line) => `${file}:${line}`));
  });

  it('refuses a default config with a match, and a __proto__ key', () => {
    expect(problemsOf(() => parseMappingConfig('name: default\nmatch:\n  sendingApplication: HIS\n', 'x/default.yaml', BASE))).toEqual([
      "x/default.yaml:2:1: match: the 'default' config applies when no other matches; it has no match",
    ]);
    expect(problemsOf(() => parseMappingConfig('name: a\nmatch: {sendingApplication: HIS}\nidentifierSystems:\n  __proto__: https://x.example\n', 'x/a.yaml', BASE))).toEqual([
      'x/a.yaml:4:3: identifierSystems.__proto__: this key is reserved (it would become an object prototype, not a key)',
    ]);
  });

  it('refuses bytes that are not UTF-8, and a path that cannot be read', () => {
    // A file saved as Latin-1 would otherwise change the values it matches without a word.
    const latin1 = Buffer.from('name: a\nmatch: {sendingApplication: "H\xc9S"}\n', 'latin1');
    expect(problemsOf(() => parseMappingConfigBytes(latin1, 'x/a.yaml', BASE))).toEqual(['x/a.yaml:1:1: (file): is not valid UTF-8']);
    expect(loadMappingConfigs('/nonexistent/mappings', BASE).problems.map((p) => `${p.file}: ${p.message}`)).toEqual(['/nonexistent/mappings: cannot be read (ENOENT)']);
  });

  it('rejects the later of two configs that match the same messages, or share a name', () => {
    const { configs, problems } = loadMappingConfigs(path.join(FIXTURES, 'conflict'), BASE);
    expect(configs.map((c) => c.name)).toEqual(['a-his', 'c-his-seoul', 'd-facility']);
    expect(problems.map((p) => `${path.basename(p.file)}:${p.line}: ${p.key}: ${p.message}`)).toEqual([
      `b-his.yaml:2: match: matches the same messages as 'a-his' (${path.join(FIXTURES, 'conflict', 'a-his.yaml')}): sendingApplication 'EMR'`,
    ]);
  });

  it('loads the shipped example configs without a problem', () => {
    const { configs, problems } = loadMappingConfigs(path.join(ROOT, 'config/mappings'), BASE);
    expect(problems).toEqual([]);
    expect(configs.map((c) => c.name).sort()).toEqual(['default', 'ny-general', 'seoul-his']);
    // One of them shows field sources and value maps.
    const ny = configs.find((c) => c.name === 'ny-general')!;
    expect(ny.options.fieldSources?.['Patient.key']).toBe('PID-2');
    expect(ny.options.valueMaps?.['HL70004']).toMatchObject({ IN: 'I' });
  });
});

describe('mapping config versions', () => {
  const v2 = readMappingConfigFile(path.join(CORPUS, 'configs-v2', 'seoul-his.yaml'), BASE).version;

  it('is the SHA-256 of the canonical JSON of the resolved content, as mapping_config keys it', () => {
    expect(v2.sha256).toBe(sha256Hex(canonicalBytes(v2.content)));
    expect(v2.sha256).toBe(mappingConfigSha256(v2.content));
    expect(v2.content).toEqual({
      name: 'seoul-his',
      description: 'Seoul General Hospital HIS, ADT feed',
      match: { sendingApplication: ['HIS'], sendingFacility: ['SEOULGEN'] },
      timeZone: 'Asia/Seoul',
      identifierSystems: { SEOULGEN: 'https://id.seoulgen.example.org/mrn' },
      localCodeSystemBase: 'urn:anchorline:local',
      codeSystems: { HL70002: 'http://terminology.hl7.org/CodeSystem/v2-0002' },
    });
  });

  it('does not change when keys are reordered, lists of one become values, or comments and spacing change', () => {
    const reordered = readMappingConfigFile(path.join(FIXTURES, 'reordered', 'seoul-his.yaml'), BASE).version;
    expect(reordered.sha256).toBe(v2.sha256);
    const text = readFileSync(path.join(CORPUS, 'configs-v2', 'seoul-his.yaml'), 'utf8');
    const json = JSON.stringify({ ...v2.content, match: { sendingFacility: 'SEOULGEN', sendingApplication: ['HIS', 'HIS'] } });
    expect(parseMappingConfig(json, 'x/seoul-his.json', BASE).version.sha256).toBe(v2.sha256);
    expect(parseMappingConfig(`\n\n# added\n${text.replace(/: /g, ':   ')}\n`, 'x/seoul-his.yaml', BASE).version.sha256).toBe(v2.sha256);
  });

  it('changes with anything a mapping depends on, and with the base it is resolved on', () => {
    const text = readFileSync(path.join(CORPUS, 'configs-v2', 'seoul-his.yaml'), 'utf8');
    const digest = (source: string, base = BASE): string => parseMappingConfig(source, 'x/seoul-his.yaml', base).version.sha256;
    expect(digest(text.replace('/mrn', '/mrn2'))).not.toBe(v2.sha256);
    expect(digest(text.replace('Asia/Seoul', 'UTC'))).not.toBe(v2.sha256);
    expect(digest(text, { ...BASE, localCodeSystemBase: 'https://local.example' })).not.toBe(v2.sha256);
    // The file's own entries win over the base's; the base's other entries are kept.
    const resolved = parseMappingConfig(text, 'x/seoul-his.yaml', { ...BASE, identifierSystems: { SEOULGEN: 'https://base.example', OTHER: 'https://other.example' } }).version;
    expect(resolved.options.identifierSystems).toEqual({ SEOULGEN: 'https://id.seoulgen.example.org/mrn', OTHER: 'https://other.example' });
  });

  it('keeps the built-in default the engine settings as they are, so its version is theirs', () => {
    const config = loadConfig({ env: {} });
    expect(builtInDefault(config.mapping).sha256).toBe(mappingConfigSha256(config.mapping));
  });

  it('accepts a stored version only when its content re-hashes to it', () => {
    const stored = JSON.parse(JSON.stringify(v2.content)) as Record<string, unknown>;
    expect(storedVersion('seoul-his', v2.sha256, stored).options.identifierSystems).toEqual({ SEOULGEN: 'https://id.seoulgen.example.org/mrn' });
    expect(problemsOf(() => storedVersion('seoul-his', v2.sha256, { ...stored, timeZone: 'UTC' }))).toEqual([
      `mapping_config/${v2.sha256}:1:1: (content): the stored content does not hash to its version; it was altered`,
    ]);
    expect(problemsOf(() => storedVersion('seoul-his', v2.sha256, { ...stored, extra: 1 }))[0]).toMatch(/: \(content\): Unrecognized key/);
  });
});

describe('mapping config fields and valueMaps', () => {
  const legacy = readMappingConfigFile(path.join(LEGACY, 'configs-v2', 'legacy-his.yaml'), BASE).version;
  const text = readFileSync(path.join(LEGACY, 'configs-v2', 'legacy-his.yaml'), 'utf8');
  const withoutThem = readFileSync(path.join(LEGACY, 'configs-v1', 'legacy-his.yaml'), 'utf8');
  const digest = (source: string): string => parseMappingConfig(source, 'x/legacy-his.yaml', BASE).version.sha256;

  it('are part of the content, and so of the version', () => {
    expect(legacy.content.fields).toEqual({ 'Patient.key': 'PID-2', 'Patient.identifier': ['PID-2', 'PID-3'] });
    expect(legacy.content.valueMaps).toEqual({ HL70001: { '1': 'M', '2': 'F' }, HL70004: { IN: 'I', OUT: 'O' } });
    expect(legacy.sha256).toBe(mappingConfigSha256(legacy.content));
    expect(digest(withoutThem)).not.toBe(legacy.sha256);
    expect(digest(text.replace("'2': F", "'2': F, '9': U"))).not.toBe(legacy.sha256);
    expect(digest(text.replace('[PID-2, PID-3]', '[PID-3, PID-2]'))).not.toBe(legacy.sha256);
  });

  it('give the mapper every element resolved, with the defaults where the file says nothing', () => {
    expect(legacy.options.fieldSources).toEqual({ ...DEFAULT_FIELD_SOURCES, 'Patient.key': 'PID-2', 'Patient.identifier': ['PID-2', 'PID-3'] });
    expect(legacy.options.valueMaps).toEqual(legacy.content.valueMaps);
    expect(builtInDefault(BASE).options.fieldSources).toEqual(DEFAULT_FIELD_SOURCES);
    expect(builtInDefault(BASE).options.valueMaps).toEqual({});
  });

  it('leave the version alone when they only restate the defaults, so configs written before them keep theirs', () => {
    const restated = `${withoutThem}fields:\n  Patient.key: PID-3\n  Patient.telecom: [PID-13, PID-14]\n  Encounter.participant: PV1-7\nvalueMaps:\n  HL70002: {}\n`;
    const parsed = parseMappingConfig(restated, 'x/legacy-his.yaml', BASE).version;
    expect(parsed.content).not.toHaveProperty('fields');
    expect(parsed.content).not.toHaveProperty('valueMaps');
    expect(parsed.sha256).toBe(digest(withoutThem));
    // One source written alone is a list of one.
    expect(digest(text.replace('[PID-2, PID-3]', 'PID-2').replace('Patient.key: PID-2', 'Patient.key: PID-2\n  Patient.telecom: PID-40'))).toBe(
      digest(text.replace('[PID-2, PID-3]', '[PID-2]').replace('Patient.key: PID-2', 'Patient.key: PID-2\n  Patient.telecom: [PID-40]')),
    );
  });

  it('are checked when a version is read back from mapping_config', () => {
    const stored = JSON.parse(JSON.stringify(legacy.content)) as Record<string, any>;
    expect(storedVersion('legacy-his', legacy.sha256, stored).options.fieldSources?.['Patient.key']).toBe('PID-2');
    const altered = { ...stored, fields: { 'Patient.key': 'PID-19' } };
    expect(problemsOf(() => storedVersion('legacy-his', mappingConfigSha256(altered), altered))).toEqual([
      `mapping_config/${mappingConfigSha256(altered)}:1:1: fields["Patient.key"]: PID-19 cannot feed Patient.key (one of: PID-2, PID-3, PID-4)`,
    ]);
  });
});

describe('mapping config selection', () => {
  const { configs, problems } = loadMappingConfigs(path.join(FIXTURES, 'conflict'), BASE);
  const fallback = builtInDefault(BASE);
  const set = new MappingConfigSet(configs, fallback);
  const msh = (application: string, facility: string, delimiters = '^~\\&'): ReturnType<typeof readMshHeader> =>
    readMshHeader(`MSH|${delimiters}|${application}|${facility}|ANCHORLINE|HUB|20250101||ADT^A01|1|P|2.5.1\r`);
  const chosen = (config: MappingConfigVersion): string => config.name;

  it('prefers application and facility together, then application, then facility, then the default', () => {
    expect(problems).toHaveLength(1);
    expect(chosen(set.select(msh('HIS', 'SEOULGEN')))).toBe('c-his-seoul');
    expect(chosen(set.select(msh('HIS', 'BUSANGEN')))).toBe('a-his');
    expect(chosen(set.select(msh('EMR', 'SEOULGEN')))).toBe('a-his');
    expect(chosen(set.select(msh('LAB', 'SEOULGEN')))).toBe('d-facility');
    expect(set.select(msh('LAB', 'BUSANGEN'))).toBe(fallback);
    expect(set.select(undefined)).toBe(fallback);
  });

  it('matches an HD field by its first component or as a whole, whatever the component separator', () => {
    expect(chosen(set.select(msh('HIS^1.2.410.100^ISO', 'SEOULGEN^2.16.410^ISO')))).toBe('c-his-seoul');
    expect(chosen(set.select(msh('HIS#1.2.410.100#ISO', 'SEOULGEN', '#~\\&')))).toBe('c-his-seoul');
    const whole = new MappingConfigSet([parseMappingConfig('name: w\nmatch:\n  sendingApplication: "HIS^1.2.3^ISO"\n', 'x/w.yaml', BASE).version], fallback);
    expect(chosen(whole.select(msh('HIS#1.2.3#ISO', 'X', '#~\\&')))).toBe('w');
    expect(whole.select(msh('HIS', 'X'))).toBe(fallback);
    // Values are compared exactly: case matters, as it does to the sender.
    expect(set.select(msh('his', 'seoulgen'))).toBe(fallback);
  });

  it("uses a config named 'default' before the built-in one", () => {
    const { configs: corpus } = loadMappingConfigs(path.join(CORPUS, 'configs-v1'), BASE);
    const withDefault = new MappingConfigSet(corpus, fallback);
    expect(withDefault.select(msh('LAB', 'ELSEWHERE')).name).toBe('default');
    expect(withDefault.select(msh('LAB', 'ELSEWHERE')).source).toBe(path.join(CORPUS, 'configs-v1', 'default.yaml'));
    expect(withDefault.configs.map((c) => c.name)).toEqual(['default', 'ny-general', 'seoul-his']);
  });
});

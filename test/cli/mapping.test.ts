/**
 * `anchorline mapping`: test (dry run, no database), diff between config versions over a corpus, list and rollback.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { appendFile, cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMappingConfigFile } from '../../config/mapping-config.ts';
import { loadConfig } from '../../config/load.ts';
import { runMapping, splitMessages, type MessageMapping } from '../../cli/mapping.ts';
import { deterministicId } from '../../mappers/index.ts';
import { mappingConfigs, mappingDeployments } from '../../store/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CORPUS = 'test/fixtures/mapping-corpus';
const BASE = loadConfig({ env: {} }).mapping;

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The real entry point in a child process, with no engine config or database around. */
function anchorline(...args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { cwd: REPO_ROOT, timeout: 60_000, env: { PATH: process.env.PATH ?? '' } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

/** runMapping in this process, its output captured. */
async function mapping(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runMapping(argv, { out: (text) => (stdout += text), err: (text) => (stderr += text) }, env);
  return { code, stdout, stderr };
}

function version(dir: string, name: string): string {
  return readMappingConfigFile(path.join(REPO_ROOT, CORPUS, dir, `${name}.yaml`), BASE).version.sha256;
}

describe('splitting files into messages', () => {
  const a = 'MSH|^~\\&|A|B|C|D|20250101||ADT^A01|1|P|2.5.1\rPID|1||X^^^B^MR\r';
  const b = 'MSH|^~\\&|A|B|C|D|20250101||ADT^A01|2|P|2.5.1\rPID|1||Y^^^B^MR\r';
  const texts = (bytes: Buffer): string[] => splitMessages(bytes).map((m) => m.toString('latin1'));

  it('takes one message, messages back to back, or separated by blank lines, with any line ends', () => {
    expect(texts(Buffer.from(a))).toEqual([a]);
    expect(texts(Buffer.from(a + b))).toEqual([a, b]);
    expect(texts(Buffer.from(`${a.replace(/\r/g, '\r\n')}\r\n${b.replace(/\r/g, '\n')}\n\n`))).toEqual([a, b]);
  });

  it('takes the messages of a batch file, without its batch segments', () => {
    const batch = readFileSync(new URL('../fixtures/hl7v2-batch/reportstream-batch_message.hl7', import.meta.url));
    const messages = texts(batch);
    expect(messages).toHaveLength(2);
    for (const message of messages) {
      expect(message.startsWith('MSH|')).toBe(true);
      expect(message).not.toMatch(/(^|\r)(FHS|BHS|BTS|FTS)\|/);
    }
    expect(texts(Buffer.from(`FHS|^~\\&\rBHS|^~\\&\r${a}${b}BTS|2\rFTS|1\r`))).toEqual([a, b]);
  });

  it('drops MLLP framing bytes, and keeps non-UTF-8 bytes as they are', () => {
    expect(texts(Buffer.from(`\x0b${a}\x1c\r\x0b${b}\x1c\r`))).toEqual([a, b]);
    const euckr = Buffer.concat([Buffer.from('MSH|^~\\&|A|B|C|D|20250101||ADT^A01|1|P|2.5.1||||||KS X 1001\rPID|1||X^^^B^MR||'), Buffer.from([0xb1, 0xe8]), Buffer.from('\r')]);
    expect(splitMessages(euckr)).toEqual([euckr]);
  });

  it('starts a message after a blank line even without MSH, so that junk fails on its own', () => {
    expect(texts(Buffer.from(`${a}\r\rnot a message\r\r${b}`))).toEqual([a, 'not a message\r', b]);
  });
});

describe('anchorline mapping test', () => {
  it('maps every message of the corpus with the config it selects, with its issues, and exits 1 when one fails', async () => {
    const run = await anchorline('mapping', 'test', '--config', `${CORPUS}/configs-v2`, `${CORPUS}/adt-seoul-a01.hl7`, `${CORPUS}/adt-lab-a08.hl7`, `${CORPUS}/batch.hl7`);
    expect(run.code).toBe(0);
    const results = JSON.parse(run.stdout) as MessageMapping[];
    expect(results.map((r) => [path.basename(r.file), r.index, r.controlId, r.config, r.error?.code ?? 'mapped'])).toEqual([
      ['adt-seoul-a01.hl7', 1, 'SEOUL0001', 'seoul-his', 'mapped'],
      ['adt-lab-a08.hl7', 1, 'LAB0001', 'default', 'mapped'],
      ['batch.hl7', 1, 'SEOUL0002', 'seoul-his', 'mapped'],
      ['batch.hl7', 2, 'SEOUL0003', 'seoul-his', 'mapped'],
    ]);
    // A sex code outside table 0001 no longer fails the message: gender unknown, the code kept, an issue at PID-8.
    expect(results[3]!.issues).toEqual([expect.objectContaining({ severity: 'warning', code: 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', location: 'PID-8' })]);
    expect(results[3]!.resources!.find((r) => r.resourceType === 'Patient')).toMatchObject({ gender: 'unknown' });
    expect(run.stderr).toContain('4 messages: 4 mapped (1 with warnings), 0 failed');
    // A source that wants strictness makes the issue fatal: the message fails, and the command exits 1.
    const strictDir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-strict-'));
    try {
      await cp(path.join(REPO_ROOT, CORPUS, 'configs-v2'), strictDir, { recursive: true });
      await appendFile(path.join(strictDir, 'seoul-his.yaml'), '\nfatalIssues: [ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE]\n');
      const strict = await anchorline('mapping', 'test', '--config', strictDir, `${CORPUS}/batch.hl7`);
      expect(strict.code).toBe(1);
      expect((JSON.parse(strict.stdout) as MessageMapping[])[1]!.error).toMatchObject({ code: 'ANCHORLINE_ERR_MAPPING_FATAL_ISSUE', location: 'PID-8' });
    } finally {
      await rm(strictDir, { recursive: true, force: true });
    }
    expect(results[0]!.sha256).toBe(version('configs-v2', 'seoul-his'));
    const patient = results[0]!.resources!.find((r) => r.resourceType === 'Patient') as Record<string, any>;
    expect(patient.identifier[0]).toMatchObject({ system: 'https://id.seoulgen.example.org/mrn', value: '70001' });
    expect(patient.maritalStatus.coding).toContainEqual(expect.objectContaining({ system: 'http://terminology.hl7.org/CodeSystem/v2-0002', code: 'M' }));
    expect(run.stderr).toContain(`config seoul-his ${version('configs-v2', 'seoul-his')}`);
  });

  it('exits 0 when every message maps', async () => {
    const run = await mapping(['test', '--config', `${CORPUS}/configs-v1`, `${CORPUS}/adt-ny-a04.hl7`]);
    expect(run.code).toBe(0);
    const [result] = JSON.parse(run.stdout) as MessageMapping[];
    const encounter = result!.resources!.find((r) => r.resourceType === 'Encounter') as Record<string, any>;
    expect(encounter.period.start).toBe('2025-03-10T14:30:00-04:00');
  });

  it('reports invalid configs by file, line and key, and exits 1', async () => {
    const run = await mapping(['test', '--config', 'test/fixtures/mapping-configs/invalid/bad-uri.yaml']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('test/fixtures/mapping-configs/invalid/bad-uri.yaml:6:3: identifierSystems.KCDC: must be an absolute URI');
    expect(run.stderr).toContain('test/fixtures/mapping-configs/invalid/bad-uri.yaml:8:3: codeSystems.KCD7: must be an absolute URI');
  });

  it('answers a usage error with exit code 2', async () => {
    expect((await mapping(['test', `${CORPUS}/adt-ny-a04.hl7`])).code).toBe(2);
    expect((await mapping(['frobnicate'])).code).toBe(2);
    expect((await mapping(['diff', '--from', 'a'])).code).toBe(2);
  });
});

describe('anchorline mapping diff', () => {
  it('prints what changes per message as JSON paths, and a summary', async () => {
    const run = await anchorline('mapping', 'diff', '--from', `${CORPUS}/configs-v1`, '--to', `${CORPUS}/configs-v2`, CORPUS);
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    const short = (dir: string, name: string): string => version(dir, name).slice(0, 12);
    const headers = lines.filter((line) => !line.startsWith('  '));
    expect(headers).toEqual([
      `${CORPUS}/adt-lab-a08.hl7 #1 LAB0001 ADT^A08: unchanged (default ${short('configs-v1', 'default')} -> default ${short('configs-v2', 'default')})`,
      `${CORPUS}/adt-ny-a04.hl7 #1 NY0001 ADT^A04: changed (ny-general ${short('configs-v1', 'ny-general')} -> ny-general ${short('configs-v2', 'ny-general')})`,
      `${CORPUS}/adt-seoul-a01.hl7 #1 SEOUL0001 ADT^A01: changed (seoul-his ${short('configs-v1', 'seoul-his')} -> seoul-his ${short('configs-v2', 'seoul-his')})`,
      `${CORPUS}/batch.hl7 #1 SEOUL0002 ADT^A08: changed (seoul-his ${short('configs-v1', 'seoul-his')} -> seoul-his ${short('configs-v2', 'seoul-his')})`,
      // Its sex code is outside table 0001: it maps with an issue under both versions, so only the config's change shows.
      `${CORPUS}/batch.hl7 #2 SEOUL0003 ADT^A08: changed (seoul-his ${short('configs-v1', 'seoul-his')} -> seoul-his ${short('configs-v2', 'seoul-his')})`,
      '5 messages: 4 changed, 1 unchanged, 0 failed',
    ]);
    const changesOf = (header: number): string[] => {
      const start = lines.indexOf(headers[header]!) + 1;
      const end = lines.indexOf(headers[header + 1]!);
      return lines.slice(start, end);
    };
    // The time zone moved the Encounter start from New York to Chicago time, and the message time its Provenance
    // records (MSH-7, read in the same zone), and nothing else.
    expect(changesOf(1)).toEqual([
      '  ~ Encounter[0].period.start: "2025-03-10T14:30:00-04:00" -> "2025-03-10T14:30:00-05:00"',
      '  ~ Provenance[0].occurredDateTime: "2025-03-10T14:30:00-04:00" -> "2025-03-10T14:30:00-05:00"',
      '  ~ Provenance[0].recorded: "2025-03-10T14:30:00-04:00" -> "2025-03-10T14:30:00-05:00"',
    ]);
    const seoul = changesOf(2);
    expect(seoul).toContain('  ~ Patient[0].identifier[0].system: "https://id.seoulgen.example.org/patient" -> "https://id.seoulgen.example.org/mrn"');
    expect(seoul).toContainEqual(expect.stringMatching(/^ {2}~ Patient\[0\]\.maritalStatus\.coding\[\d\]\.system: "urn:anchorline:local\/HL70002" -> "http:\/\/terminology\.hl7\.org\/CodeSystem\/v2-0002"$/));
    // The identifier system is part of the patient's identity: the id changes, and so does the reference to it.
    expect(seoul).toContainEqual(expect.stringMatching(/^ {2}~ Patient\[0\]\.id: "[0-9a-f-]{36}" -> "[0-9a-f-]{36}"$/));
    expect(seoul).toContainEqual(expect.stringMatching(/^ {2}~ Encounter\[0\]\.subject\.reference: "Patient\/[0-9a-f-]{36}" -> "Patient\/[0-9a-f-]{36}"$/));
    expect(changesOf(4)).toContain('  ~ Patient[0].identifier[0].system: "https://id.seoulgen.example.org/patient" -> "https://id.seoulgen.example.org/mrn"');
    expect(changesOf(4).some((line) => line.includes('gender'))).toBe(false);
    expect(run.stderr).toBe('');
  });

  it('prints the same as JSON with --json', async () => {
    const run = await mapping(['diff', '--from', `${CORPUS}/configs-v1`, '--to', `${CORPUS}/configs-v2`, '--json', `${CORPUS}/adt-ny-a04.hl7`]);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as { summary: Record<string, number>; messages: Array<Record<string, any>> };
    expect(report.summary).toEqual({ messages: 1, changed: 1, unchanged: 0, failed: 0 });
    expect(report.messages[0]!.changes).toEqual([
      { path: 'Encounter[0].period.start', from: '2025-03-10T14:30:00-04:00', to: '2025-03-10T14:30:00-05:00' },
      { path: 'Provenance[0].occurredDateTime', from: '2025-03-10T14:30:00-04:00', to: '2025-03-10T14:30:00-05:00' },
      { path: 'Provenance[0].recorded', from: '2025-03-10T14:30:00-04:00', to: '2025-03-10T14:30:00-05:00' },
    ]);
  });

  it('reports a version directory that holds an invalid config, and exits 2', async () => {
    const run = await mapping(['diff', '--from', `${CORPUS}/configs-v1`, '--to', 'test/fixtures/mapping-configs/conflict', CORPUS]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/conflict\/b-his\.yaml:2:1: match: matches the same messages as 'a-his'/);
  });
});

describe('anchorline mapping with fields and valueMaps', () => {
  // A v2.3 registration system: its MRN is PID-2 (PID-3 holds a regional index id), and it codes sex 1/2 and
  // patient class IN/OUT. configs-v1 maps it as any sender; configs-v2 says where its MRN is and what its codes mean.
  const LEGACY = 'test/fixtures/mapping-corpus-legacy';
  const legacyVersion = (dir: string): string => readMappingConfigFile(path.join(REPO_ROOT, LEGACY, dir, 'legacy-his.yaml'), BASE).version.sha256;
  const patientRef = (system: string, value: string): string => `Patient/${deterministicId('Patient', system, value)}`;

  it('maps a message by the fields and codes the config declares', async () => {
    const run = await mapping(['test', '--config', `${LEGACY}/configs-v2`, `${LEGACY}/legacy-a04.hl7`]);
    expect(run.code).toBe(0);
    const [result] = JSON.parse(run.stdout) as MessageMapping[];
    expect(result!.sha256).toBe(legacyVersion('configs-v2'));
    const patient = result!.resources!.find((r) => r.resourceType === 'Patient') as Record<string, any>;
    expect(`Patient/${patient.id}`).toBe(patientRef('urn:anchorline:authority:MIDWESTGEN', 'MW-50211'));
    expect(patient.identifier.map((i: Record<string, string>) => i.value)).toEqual(['MW-50211', '8812004']);
    expect(patient.gender).toBe('female');
    const encounter = result!.resources!.find((r) => r.resourceType === 'Encounter') as Record<string, any>;
    expect(encounter.class).toEqual({ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: 'ambulatory' });
    expect(encounter.subject.reference).toBe(`Patient/${patient.id}`);

    // Without them the sender's sex code is not an HL7 table 0001 code: gender unknown, with an issue at PID-8.
    const before = await mapping(['test', '--config', `${LEGACY}/configs-v1`, `${LEGACY}/legacy-a04.hl7`]);
    expect(before.code).toBe(0);
    const [unmapped] = JSON.parse(before.stdout) as MessageMapping[];
    expect(unmapped!.issues).toEqual([expect.objectContaining({ code: 'ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE', location: 'PID-8', value: '2' })]);
    expect(unmapped!.resources!.find((r) => r.resourceType === 'Patient')).toMatchObject({ gender: 'unknown' });
  });

  it('diffs the versions before and after them, message by message', async () => {
    const run = await mapping(['diff', '--from', `${LEGACY}/configs-v1`, '--to', `${LEGACY}/configs-v2`, LEGACY]);
    expect(run.code).toBe(0);
    const [v1, v2] = [legacyVersion('configs-v1').slice(0, 12), legacyVersion('configs-v2').slice(0, 12)];
    const byPid3 = patientRef('urn:anchorline:authority:REGIONHIE', '8813090');
    const byPid2 = patientRef('urn:anchorline:authority:MIDWESTGEN', 'MW-50377');
    const lines = run.stdout.trimEnd().split('\n');
    const a04 = lines.slice(0, lines.findIndex((line) => line.startsWith(`${LEGACY}/legacy-a08.hl7`)));
    expect(a04[0]).toBe(`${LEGACY}/legacy-a04.hl7 #1 LEG0001 ADT^A04: changed (legacy-his ${v1} -> legacy-his ${v2})`);
    // The value map reads the sender's sex code: the unknown gender, its kept code and the issue go.
    expect(a04).toEqual(
      expect.arrayContaining([
        '  ~ Patient[0].gender: "unknown" -> "female"',
        '  - Patient[0]._gender: {"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/originalText","valueString":"2"}]}',
        '  - issues: "ANCHORLINE_ISSUE_CODE_NOT_IN_TABLE at PID-8"',
      ]),
    );
    // An assigning authority's Organization is keyed by the system of the identifiers it assigns.
    const regionOrg = `Organization/${deterministicId('Organization', 'urn:anchorline:authority:REGIONHIE')}`;
    const midwestOrg = `Organization/${deterministicId('Organization', 'urn:anchorline:authority:MIDWESTGEN')}`;
    const id = (reference: string): string => reference.slice(reference.indexOf('/') + 1);
    expect(lines.slice(a04.length)).toEqual([
      `${LEGACY}/legacy-a08.hl7 #1 LEG0002 ADT^A08: changed (legacy-his ${v1} -> legacy-his ${v2})`,
      // The identifiers' assigners come first: the authority of the key identifier first (resources of a type are
      // compared in the order the message makes them).
      `  ~ Organization[0].id: "${id(regionOrg)}" -> "${id(midwestOrg)}"`,
      '  ~ Organization[0].identifier[0].value: "REGIONHIE" -> "MIDWESTGEN"',
      `  ~ Organization[1].id: "${id(midwestOrg)}" -> "${id(regionOrg)}"`,
      '  ~ Organization[1].identifier[0].value: "MIDWESTGEN" -> "REGIONHIE"',
      // Patient.key PID-2: the patient is the one its MRN names, and PID-2 comes first among its identifiers.
      `  ~ Patient[0].id: "${byPid3.slice('Patient/'.length)}" -> "${byPid2.slice('Patient/'.length)}"`,
      '  ~ Patient[0].identifier[0].type.coding[0].code: "PI" -> "MR"',
      '  ~ Patient[0].identifier[0].system: "urn:anchorline:authority:REGIONHIE" -> "urn:anchorline:authority:MIDWESTGEN"',
      '  ~ Patient[0].identifier[0].value: "8813090" -> "MW-50377"',
      `  ~ Patient[0].identifier[0].assigner.reference: "${regionOrg}" -> "${midwestOrg}"`,
      '  ~ Patient[0].identifier[0].assigner.display: "REGIONHIE" -> "MIDWESTGEN"',
      `  + Patient[0].identifier[1]: {"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"PI"}]},"system":"urn:anchorline:authority:REGIONHIE","value":"8813090","assigner":{"reference":"${regionOrg}","display":"REGIONHIE"}}`,
      // HL70004 IN -> I: an inpatient visit rather than a local class code.
      '  ~ Encounter[0].class.system: "urn:anchorline:local/HL70004" -> "http://terminology.hl7.org/CodeSystem/v3-ActCode"',
      '  ~ Encounter[0].class.code: "IN" -> "IMP"',
      '  + Encounter[0].class.display: "inpatient encounter"',
      `  ~ Encounter[0].subject.reference: "${byPid3}" -> "${byPid2}"`,
      `  ~ Provenance[0].target[0].reference: "${regionOrg}" -> "${midwestOrg}"`,
      `  ~ Provenance[0].target[1].reference: "${midwestOrg}" -> "${regionOrg}"`,
      `  ~ Provenance[0].target[6].reference: "${byPid3}" -> "${byPid2}"`,
      '2 messages: 2 changed, 0 unchanged, 0 failed',
    ]);
  });
});

describe('anchorline mapping with the engine database', () => {
  let db: TestDatabase;
  let env: NodeJS.ProcessEnv;
  const v1 = readMappingConfigFile(path.join(REPO_ROOT, CORPUS, 'configs-v1', 'seoul-his.yaml'), BASE).version;
  const v2 = readMappingConfigFile(path.join(REPO_ROOT, CORPUS, 'configs-v2', 'seoul-his.yaml'), BASE).version;

  beforeAll(async () => {
    db = await createTestDatabase('mapcli');
    env = { DATABASE_URL: db.url, ANCHORLINE__DATABASE__SCHEMA: db.schema };
    await mappingDeployments.deployFileVersion(db.pool, 'seoul-his', v1.content, 'configs-v1/seoul-his.yaml');
    await mappingDeployments.deployFileVersion(db.pool, 'seoul-his', v2.content, 'configs-v2/seoul-his.yaml');
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('diffs from a version stored in the database', async () => {
    expect(await mappingConfigs.mappingConfigsByDigest(db.pool, [v1.sha256])).toHaveProperty('size', 1);
    const run = await mapping(['diff', '--from', v1.sha256, '--to', `${CORPUS}/configs-v2`, `${CORPUS}/adt-seoul-a01.hl7`], env);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`changed (seoul-his ${v1.sha256.slice(0, 12)} -> seoul-his ${v2.sha256.slice(0, 12)})`);
    expect(run.stdout).toContain('~ Patient[0].identifier[0].system: "https://id.seoulgen.example.org/patient" -> "https://id.seoulgen.example.org/mrn"');
    const missing = await mapping(['diff', '--from', 'e'.repeat(64), '--to', `${CORPUS}/configs-v2`, CORPUS], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`version ${'e'.repeat(64)} is not stored in mapping_config`);
  });

  it('lists configs with their active version and history, and rolls one back', async () => {
    const listed = await mapping(['list'], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout.split('\n')[0]).toMatch(new RegExp(`^seoul-his: active ${v2.sha256} \\(file, \\d{4}-`));
    expect(listed.stdout).toMatch(new RegExp(`file {6}${v1.sha256} {2}configs-v1/seoul-his.yaml\\n`));

    const rolled = await mapping(['rollback', 'seoul-his', '--to', v1.sha256], env);
    expect(rolled.code).toBe(0);
    expect(rolled.stdout).toContain(`mapping config seoul-his: active version ${v2.sha256} -> ${v1.sha256} (rollback)`);
    const active = await mappingDeployments.activeVersions(db.pool);
    expect(active.get('seoul-his')).toBe(v1.sha256);

    const json = JSON.parse((await mapping(['list', '--json'], env)).stdout) as { configs: Array<Record<string, any>> };
    expect(json.configs[0]!.history.map((h: Record<string, any>) => h.reason)).toEqual(['file', 'file', 'rollback']);

    const unknown = await mapping(['rollback', 'seoul-his', '--to', 'a'.repeat(64)], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`ANCHORLINE_ERR_NOT_FOUND: mapping config 'seoul-his' never had version ${'a'.repeat(64)}`);
  });
});

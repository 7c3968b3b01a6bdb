/**
 * Terminology release loaders against real PostgreSQL: each loader on its fixture (test/fixtures/terminology/releases),
 * reloads that replace, rejected files that leave the loaded release as it was, ConceptMaps whose stored hash is the
 * hash of their canonical content, the CSV reader on awkward input, progress output, the command, and a 200,000-line
 * file loaded in bounded memory.
 */
import { appendFile, cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import v8 from 'node:v8';
import vm from 'node:vm';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalBytes, sha256Hex } from '../../anchor/index.ts';
import {
  ICD10CM_SYSTEM,
  KOSTOM_SYSTEM,
  KOSTOM_TO_SNOMED_MAP_URL,
  LOINC_SYSTEM,
  LoadProgress,
  SNOMED_SYSTEM,
  TerminologyLoadError,
  kcdSystem,
  kostomToKcdMapUrl,
  loadIcd10Cm,
  loadKcd,
  loadKostom,
  loadLoinc,
  loadSnomedRf2,
  runTerminologyLoad,
  TERMINOLOGY_RELEASE_LOADERS,
  type TerminologyLoadOutput,
} from '../../terminology/loaders/index.ts';
import { csvRecords } from '../../terminology/loaders/csv.ts';
import { PrefixParents } from '../../terminology/loaders/common.ts';
import type { TextFile } from '../../terminology/loaders/text-input.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

const RELEASES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'terminology', 'releases');
const SNOMED_DIR = path.join(RELEASES, 'snomed');
const SNOMED_TERMINOLOGY = path.join(SNOMED_DIR, 'SnomedCT_Fixture_20250101', 'Snapshot', 'Terminology');
const ICD10CM_FILE = path.join(RELEASES, 'icd10cm', 'icd10cm_order_2025.txt');
const KCD_FILE = path.join(RELEASES, 'kcd', 'kcd-8.csv');
const KCD_EUCKR_FILE = path.join(RELEASES, 'kcd', 'kcd-8-euckr.csv');
const KOSTOM_FILE = path.join(RELEASES, 'kostom', 'kostom_2024.csv');
const LOINC_FILE = path.join(RELEASES, 'loinc', 'Loinc_2.77', 'LoincTable', 'Loinc.csv');

let db: TestDatabase;
let scratch: string;

beforeAll(async () => {
  db = await createTestDatabase('terminology_loaders');
  scratch = await mkdtemp(path.join(os.tmpdir(), 'anchorline-terminology-'));
});

afterAll(async () => {
  await db?.drop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

interface ConceptRow {
  code: string;
  display: string | null;
  active: boolean;
  designations: { language?: string; use?: { code: string }; value: string }[];
  properties: { code: string; valueString?: string; valueCode?: string; valueBoolean?: boolean }[];
}

async function concepts(system: string): Promise<Map<string, ConceptRow>> {
  const { rows } = await db.pool.query<ConceptRow>('SELECT code, display, active, designations, properties FROM concept WHERE system = $1 ORDER BY code', [system]);
  return new Map(rows.map((row) => [row.code, row]));
}

async function codeSystem(url: string): Promise<{ version: string; concept_count: number; source_format: string; name: string } | undefined> {
  const { rows } = await db.pool.query('SELECT version, concept_count, source_format, name FROM code_system WHERE url = $1', [url]);
  return rows[0];
}

async function relationships(system: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ r: string }>(
    `SELECT source_code || ' ' || type_code || ' ' || destination_code AS r FROM concept_relationship WHERE system = $1 ORDER BY 1`,
    [system],
  );
  return rows.map((row) => row.r);
}

function property(row: ConceptRow | undefined, code: string): unknown {
  const found = row?.properties.find((p) => p.code === code);
  return found ? (found.valueString ?? found.valueCode ?? found.valueBoolean) : undefined;
}

/** Runs `load`, which must be rejected with a TerminologyLoadError whose detail starts with `file:line:`. */
async function rejected(load: Promise<unknown>, file: string, line: number, problem: RegExp): Promise<TerminologyLoadError> {
  const error = await load.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TerminologyLoadError);
  const loadError = error as TerminologyLoadError;
  expect(loadError.code).toBe('ANCHORLINE_ERR_INVALID_REQUEST');
  expect(loadError.file).toBe(file);
  expect(loadError.line).toBe(line);
  expect(loadError.detail).toMatch(line > 0 ? `${file}:${line}: ` : `${file}: `);
  expect(loadError.detail).toMatch(problem);
  return loadError;
}

describe('LOINC (Loinc.csv)', () => {
  it('loads codes by column name with display, designations, properties and status', async () => {
    const summary = await loadLoinc(db.pool, LOINC_FILE);
    expect(summary).toMatchObject({ system: LOINC_SYSTEM, version: '2.77', concepts: 14, inactiveConcepts: 1, files: [LOINC_FILE] });
    expect(await codeSystem(LOINC_SYSTEM)).toMatchObject({ version: '2.77', concept_count: 14, source_format: 'loinc', name: 'LOINC' });

    const loinc = await concepts(LOINC_SYSTEM);
    expect(loinc.size).toBe(14);
    const glucose = loinc.get('2345-7')!;
    expect(glucose.display).toBe('Glucose [Mass/volume] in Serum or Plasma');
    expect(glucose.active).toBe(true);
    expect(glucose.designations.map((d) => d.value)).toEqual(['Glucose SerPl-mCnc', 'Glucose [Mass/Vol]']);
    expect(glucose.properties).toEqual([
      { code: 'COMPONENT', valueString: 'Glucose' },
      { code: 'PROPERTY', valueString: 'MCnc' },
      { code: 'TIME_ASPCT', valueString: 'Pt' },
      { code: 'SYSTEM', valueString: 'Ser/Plas' },
      { code: 'SCALE_TYP', valueString: 'Qn' },
      { code: 'CLASS', valueString: 'CHEM' },
      { code: 'STATUS', valueString: 'ACTIVE' },
    ]);
    expect(property(loinc.get('6690-2'), 'METHOD_TYP')).toBe('Automated count');
    // A short name equal to the display is not repeated as a designation.
    expect(loinc.get('8867-4')!.designations).toEqual([]);
    expect(loinc.get('99990-1')).toMatchObject({ active: false });
    expect(property(loinc.get('99990-1'), 'STATUS')).toBe('DEPRECATED');
    expect(loinc.get('99991-9')).toMatchObject({ active: true });
    expect(property(loinc.get('99991-9'), 'STATUS')).toBe('DISCOURAGED');
  });

  it('replaces the previous release on reload, across several batches: removed codes are gone, none twice', async () => {
    const dir = await mkdtemp(path.join(scratch, 'loinc-'));
    const text = await readFile(LOINC_FILE, 'utf8');
    const lines = text.split('\n');
    // Drop 718-7, rename 2093-3's display.
    const edited = lines.filter((line) => !line.startsWith('"718-7"')).map((line) => (line.startsWith('"2093-3"') ? line.replace('Cholesterol [Mass/volume] in Serum or Plasma', 'Cholesterol, renamed') : line));
    const file = path.join(dir, 'Loinc.csv');
    await writeFile(file, edited.join('\n'));
    const summary = await loadLoinc(db.pool, file, { version: '2.78', batchSize: 4 });
    expect(summary).toMatchObject({ version: '2.78', concepts: 13 });
    const loinc = await concepts(LOINC_SYSTEM);
    expect(loinc.size).toBe(13);
    expect(loinc.has('718-7')).toBe(false);
    expect(loinc.get('2093-3')!.display).toBe('Cholesterol, renamed');
    const { rows } = await db.pool.query('SELECT code FROM concept WHERE system = $1 GROUP BY code HAVING count(*) > 1', [LOINC_SYSTEM]);
    expect(rows).toEqual([]);
    await loadLoinc(db.pool, LOINC_FILE);
  });

  it('rejects a missing column, a truncated line or an unclosed quote, naming file and line, and keeps the loaded release', async () => {
    const dir = await mkdtemp(path.join(scratch, 'loinc-bad-'));
    const text = await readFile(LOINC_FILE, 'utf8');

    const noColumn = path.join(dir, 'no-column.csv');
    await writeFile(noColumn, text.replace('"LONG_COMMON_NAME"', '"LONG_NAME"'));
    await rejected(loadLoinc(db.pool, noColumn, { version: '9.99' }), noColumn, 1, /no LONG_COMMON_NAME column/);

    const truncated = path.join(dir, 'truncated.csv');
    const lines = text.split('\n');
    // Line 5 holds 4548-4 (the glucose row spans lines 2-3); cut it after a few fields.
    lines[4] = lines[4]!.split(',').slice(0, 6).join(',');
    await writeFile(truncated, lines.join('\n'));
    await rejected(loadLoinc(db.pool, truncated, { version: '9.99', batchSize: 2 }), truncated, 5, /expected 41 fields as in the header, found 6 \(a truncated line\?\)/);

    const unclosed = path.join(dir, 'unclosed.csv');
    await writeFile(unclosed, `${text}"12345-6","Open quote\n`);
    await rejected(loadLoinc(db.pool, unclosed, { version: '9.99' }), unclosed, 17, /ends inside a quoted field/);

    const notLoinc = path.join(dir, 'not-loinc.csv');
    await writeFile(notLoinc, text.replace('"4548-4"', '"A1C"'));
    await rejected(loadLoinc(db.pool, notLoinc, { version: '9.99' }), notLoinc, 5, /"A1C" is not a LOINC code/);

    const versionless = path.join(dir, 'Loinc.csv');
    await writeFile(versionless, text);
    await rejected(loadLoinc(db.pool, versionless), versionless, 0, /give it with --version/);

    expect(await codeSystem(LOINC_SYSTEM)).toMatchObject({ version: '2.77', concept_count: 14 });
    expect((await concepts(LOINC_SYSTEM)).size).toBe(14);
  });
});

describe('ICD-10-CM (order file)', () => {
  it('loads the fixed-width order file with dotted codes, headers and parents', async () => {
    const summary = await loadIcd10Cm(db.pool, ICD10CM_FILE);
    expect(summary).toMatchObject({ system: ICD10CM_SYSTEM, version: '2025', concepts: 14, inactiveConcepts: 0 });
    const icd = await concepts(ICD10CM_SYSTEM);
    expect([...icd.keys()]).toEqual(['A00', 'A00.0', 'A00.1', 'A00.9', 'C34', 'C34.9', 'C34.90', 'E11', 'E11.9', 'I10', 'J45', 'J45.20', 'J45.9', 'J45.909']);
    expect(icd.get('E11.9')).toMatchObject({ display: 'Type 2 diabetes mellitus without complications', active: true, designations: [] });
    expect(property(icd.get('E11'), 'notSelectable')).toBe(true);
    expect(property(icd.get('E11.9'), 'notSelectable')).toBe(false);
    expect(property(icd.get('I10'), 'notSelectable')).toBe(false);
    expect(icd.get('C34.90')!.designations).toEqual([{ language: 'en', value: 'Malignant neoplasm of unsp part of unsp bronchus or lung' }]);
    expect(property(icd.get('C34.90'), 'parent')).toBe('C34.9');
    expect(property(icd.get('C34.9'), 'parent')).toBe('C34');
    expect(property(icd.get('J45.20'), 'parent')).toBe('J45');
    expect(property(icd.get('J45.909'), 'parent')).toBe('J45.9');
    expect(property(icd.get('A00'), 'parent')).toBeUndefined();
  });

  it('rejects a truncated line and a file of another layout, keeping the loaded release', async () => {
    const dir = await mkdtemp(path.join(scratch, 'icd-'));
    const lines = (await readFile(ICD10CM_FILE, 'utf8')).split('\r\n');
    const truncated = path.join(dir, 'icd10cm_order_2026.txt');
    lines[2] = lines[2]!.slice(0, 40);
    await writeFile(truncated, lines.join('\r\n'));
    await rejected(loadIcd10Cm(db.pool, truncated), truncated, 3, /40 characters long.*a truncated line\?/);

    const csvFile = path.join(dir, 'icd10cm_order_2027.txt');
    await writeFile(csvFile, 'code,description\nA00,Cholera\n');
    await rejected(loadIcd10Cm(db.pool, csvFile), csvFile, 1, /not a five-digit order number/);

    expect(await codeSystem(ICD10CM_SYSTEM)).toMatchObject({ version: '2025', concept_count: 14 });
  });
});

describe('KCD (Statistics Korea tables)', () => {
  const system = kcdSystem('8');

  it('loads the UTF-8 table with Korean displays and English designations', async () => {
    const summary = await loadKcd(db.pool, KCD_FILE);
    expect(summary).toMatchObject({ system: 'http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8', version: '8', name: 'KOSTAT_KCD_8', concepts: 12 });
    const kcd = await concepts(system);
    expect(kcd.get('A00.0')).toMatchObject({
      display: '비브리오 콜레라 01 콜레라형균에 의한 콜레라',
      designations: [{ language: 'en', value: 'Cholera due to Vibrio cholerae 01, biovar cholerae' }],
    });
    expect(property(kcd.get('A00.0'), 'parent')).toBe('A00');
    expect(property(kcd.get('E11.9'), 'parent')).toBe('E11');
    expect(kcd.get('I10')!.display).toBe('본태성(원발성) 고혈압');
  });

  it('reads the EUC-KR table, detected or named, to the same concepts; --language en swaps display and designation', async () => {
    const utf8 = [...(await concepts(system)).values()];
    await loadKcd(db.pool, KCD_EUCKR_FILE);
    expect([...(await concepts(system)).values()]).toEqual(utf8);
    await loadKcd(db.pool, KCD_EUCKR_FILE, { encoding: 'euc-kr', batchSize: 5 });
    expect([...(await concepts(system)).values()]).toEqual(utf8);

    await loadKcd(db.pool, KCD_FILE, { language: 'en' });
    expect((await concepts(system)).get('A00.0')).toMatchObject({
      display: 'Cholera due to Vibrio cholerae 01, biovar cholerae',
      designations: [{ language: 'ko', value: '비브리오 콜레라 01 콜레라형균에 의한 콜레라' }],
    });
    await loadKcd(db.pool, KCD_FILE);
  });

  it('rejects a table without a code column, the wrong character set and a shifted row, keeping the loaded release', async () => {
    const dir = await mkdtemp(path.join(scratch, 'kcd-'));
    const noCode = path.join(dir, 'kcd-8.csv');
    await writeFile(noCode, '\uFEFF번호,한글명,영문명\r\n1,콜레라,Cholera\r\n');
    await rejected(loadKcd(db.pool, noCode), noCode, 1, /no code \(코드\) column/);

    await rejected(loadKcd(db.pool, KCD_EUCKR_FILE, { encoding: 'utf-8' }), KCD_EUCKR_FILE, 1, /not valid utf-8.*--encoding/);

    const shifted = path.join(dir, 'kcd8-shifted.csv');
    await writeFile(shifted, '코드,한글명,영문명\nA00,콜레라,Cholera\n콜레라,A00,Cholera\n');
    await rejected(loadKcd(db.pool, shifted), shifted, 3, /"콜레라" in the code column is not a KCD code/);

    expect(await codeSystem(system)).toMatchObject({ version: '8', concept_count: 12 });
    expect((await concepts(system)).get('A00')!.display).toBe('콜레라');
  });
});

describe('KOSTOM (terms and ConceptMaps)', () => {
  interface MapRow {
    url: string;
    version: string;
    active: boolean;
    content: { group: { source: string; target: string; element: { code: string; display?: string; target: { code: string; equivalence: string }[] }[] }[] } & Record<string, unknown>;
    content_sha256: string;
  }
  async function maps(): Promise<MapRow[]> {
    return (await db.pool.query<MapRow>('SELECT url, version, active, content, content_sha256 FROM concept_map ORDER BY url, version')).rows;
  }
  async function elements(url: string, version: string): Promise<{ source_code: string; target_system: string; target_code: string; equivalence: string }[]> {
    return (
      await db.pool.query('SELECT source_code, target_system, target_code, equivalence FROM concept_map_element WHERE map_url = $1 AND map_version = $2 ORDER BY source_code, target_code', [url, version])
    ).rows;
  }

  it('loads the terms and both maps; each map hash is the SHA-256 of its canonical content', async () => {
    // batchSize 5 stages each map in three batches.
    const summary = await loadKostom(db.pool, KOSTOM_FILE, { batchSize: 5 });
    expect(summary).toMatchObject({ system: KOSTOM_SYSTEM, version: '2024', concepts: 13 });
    expect(summary.conceptMaps.map((m) => [m.url, m.elements])).toEqual([
      [KOSTOM_TO_SNOMED_MAP_URL, 12],
      [kostomToKcdMapUrl('8'), 12],
    ]);
    const kostom = await concepts(KOSTOM_SYSTEM);
    expect(kostom.get('KT0000009')).toMatchObject({ display: '폐렴, 상세불명', designations: [{ language: 'en', value: 'Pneumonia, unspecified' }] });

    const stored = await maps();
    expect(stored.map((m) => [m.url, m.version, m.active])).toEqual([
      [kostomToKcdMapUrl('8'), '2024', true],
      [KOSTOM_TO_SNOMED_MAP_URL, '2024', true],
    ]);
    for (const map of stored) {
      expect(map.content_sha256).toBe(sha256Hex(canonicalBytes(map.content)));
      expect(summary.conceptMaps.find((m) => m.url === map.url)!.contentSha256).toBe(map.content_sha256);
      expect(map.content).toMatchObject({ resourceType: 'ConceptMap', url: map.url, version: '2024', status: 'active' });
      expect(map.content.group).toHaveLength(1);
      expect(map.content.group[0]!.source).toBe(KOSTOM_SYSTEM);
    }
    const toSnomed = stored.find((m) => m.url === KOSTOM_TO_SNOMED_MAP_URL)!;
    expect(toSnomed.content.group[0]!.target).toBe(SNOMED_SYSTEM);
    // File order, KT0000007 (no SNOMED CT code) left out.
    expect(toSnomed.content.group[0]!.element.map((e) => e.code)).toEqual(['KT0000001', 'KT0000002', 'KT0000003', 'KT0000004', 'KT0000005', 'KT0000006', 'KT0000008', 'KT0000009', 'KT0000010', 'KT0000011', 'KT0000012', 'KT0000013']);
    expect(toSnomed.content.group[0]!.element[3]).toEqual({ code: 'KT0000004', display: '고혈압', target: [{ code: '38341003', equivalence: 'equivalent' }] });

    const kcdElements = await elements(kostomToKcdMapUrl('8'), '2024');
    expect(kcdElements).toHaveLength(13);
    expect(kcdElements.filter((e) => e.source_code === 'KT0000013')).toEqual([
      { source_code: 'KT0000013', target_system: kcdSystem('8'), target_code: 'E14.4', equivalence: 'wider' },
      { source_code: 'KT0000013', target_system: kcdSystem('8'), target_code: 'G63.2', equivalence: 'wider' },
    ]);
    expect(kcdElements.some((e) => e.source_code === 'KT0000006')).toBe(false);
    expect(await elements(KOSTOM_TO_SNOMED_MAP_URL, '2024')).toHaveLength(12);
  });

  it('a new version becomes the active one; a stored version loads again only with the same content', async () => {
    await loadKostom(db.pool, KOSTOM_FILE, { version: '2025' });
    expect((await maps()).map((m) => [m.url, m.version, m.active])).toEqual([
      [kostomToKcdMapUrl('8'), '2024', false],
      [kostomToKcdMapUrl('8'), '2025', true],
      [KOSTOM_TO_SNOMED_MAP_URL, '2024', false],
      [KOSTOM_TO_SNOMED_MAP_URL, '2025', true],
    ]);
    const stored = await maps();

    // The same content again: nothing changes but which version is active.
    const again = await loadKostom(db.pool, KOSTOM_FILE, { version: '2024', batchSize: 2 });
    expect(again.conceptMaps.map((m) => [m.version, m.created])).toEqual([
      ['2024', false],
      ['2024', false],
    ]);
    const after = await maps();
    expect(after.map((m) => [m.version, m.active])).toEqual([
      ['2024', true],
      ['2025', false],
      ['2024', true],
      ['2025', false],
    ]);
    expect(after.map((m) => m.content_sha256)).toEqual(stored.map((m) => m.content_sha256));
    expect(await elements(KOSTOM_TO_SNOMED_MAP_URL, '2024')).toHaveLength(12);

    // Other content under a stored version: refused, and the whole load with it.
    const dir = await mkdtemp(path.join(scratch, 'kostom-same-version-'));
    const changed = path.join(dir, 'kostom_2025.csv');
    await writeFile(changed, (await readFile(KOSTOM_FILE, 'utf8')).replace('KT0000011,발열,Fever,386661006', 'KT0000011,발열,Fever,386661006|50177009'));
    await rejected(loadKostom(db.pool, changed), changed, 0, /ConceptMap urn:anchorline:conceptmap:kostom-to-snomed-ct version 2025 is loaded already with other content/);
    expect(await maps()).toEqual(after);
    expect(await codeSystem(KOSTOM_SYSTEM)).toMatchObject({ version: '2024' });

    await loadKostom(db.pool, KOSTOM_FILE, { version: '2025' });
  });

  it('rejects a bad mapping code or a repeated source code, keeping terms and maps as they were', async () => {
    const before = await maps();
    const dir = await mkdtemp(path.join(scratch, 'kostom-'));
    const text = await readFile(KOSTOM_FILE, 'utf8');

    const badTarget = path.join(dir, 'kostom_2026.csv');
    await writeFile(badTarget, text.replace('KT0000010,두통,Headache,25064002', 'KT0000010,두통,Headache,R51'));
    await rejected(loadKostom(db.pool, badTarget, { batchSize: 3 }), badTarget, 11, /"R51" in the SNOMED CT column is not a SNOMED CT concept id/);

    const repeated = path.join(dir, 'kostom_2027.csv');
    await writeFile(repeated, `${text}KT0000003,제2형 당뇨병,Type 2 diabetes mellitus,44054006,E11.9\r\n`);
    await rejected(loadKostom(db.pool, repeated), repeated, 15, /code KT0000003 appears again \(first on line 4\)/);

    expect(await maps()).toEqual(before);
    expect(await codeSystem(KOSTOM_SYSTEM)).toMatchObject({ version: '2025', concept_count: 13 });
  });
});

describe('SNOMED CT (RF2 snapshot)', () => {
  const isA = '116680003';

  it('loads a release directory: preferred synonyms as display, FSN and Korean terms as designations, active relationships', async () => {
    const summary = await loadSnomedRf2(db.pool, [SNOMED_DIR]);
    expect(summary).toMatchObject({
      system: SNOMED_SYSTEM,
      version: 'http://snomed.info/sct/900000000000207008/version/20250101',
      concepts: 15,
      inactiveConcepts: 0,
      relationships: 16,
    });
    expect(summary.files).toHaveLength(5);
    const sct = await concepts(SNOMED_SYSTEM);
    expect(sct.size).toBe(15);

    // The language refset marks the second synonym preferred.
    const hypertension = sct.get('38341003')!;
    expect(hypertension.display).toBe('Hypertensive disorder, systemic arterial');
    expect(hypertension.designations).toEqual([
      { language: 'en', use: { system: SNOMED_SYSTEM, code: '900000000000003001', display: 'Fully specified name' }, value: 'Hypertensive disorder, systemic arterial (disorder)' },
      { language: 'en', use: { system: SNOMED_SYSTEM, code: '900000000000013009', display: 'Synonym' }, value: 'High blood pressure' },
      { language: 'en', use: { system: SNOMED_SYSTEM, code: '900000000000013009', display: 'Synonym' }, value: 'Hypertension' },
      { language: 'ko', use: { system: SNOMED_SYSTEM, code: '900000000000013009', display: 'Synonym' }, value: '고혈압' },
    ]);
    const cancer = sct.get('363346000')!;
    expect(cancer.display).toBe('Malignant neoplastic disease');
    expect(cancer.designations.map((d) => d.value)).toEqual(['Malignant neoplastic disease (disorder)', 'Cancer', '악성 신생물성 질환']);
    expect(property(sct.get('363358000'), 'sufficientlyDefined')).toBe(true);
    expect(property(sct.get('363346000'), 'sufficientlyDefined')).toBe(false);
    expect(property(sct.get('116680003'), 'moduleId')).toBe('900000000000012004');

    const rels = await relationships(SNOMED_SYSTEM);
    expect(rels).toHaveLength(16);
    expect(rels).toContain(`254637007 ${isA} 363358000`);
    expect(rels).toContain('254637007 363698007 39607008');
    // The inactive IS-A row is not loaded.
    expect(rels).not.toContain(`254637007 ${isA} 64572001`);
  });

  it('without a language refset takes the first synonym; --language ko takes the Korean one', async () => {
    const files = ['sct2_Concept_Snapshot_INT_20250101.txt', 'sct2_Description_Snapshot-en_INT_20250101.txt', 'sct2_Description_Snapshot-ko_INT_20250101.txt', 'sct2_Relationship_Snapshot_INT_20250101.txt'].map((f) =>
      path.join(SNOMED_TERMINOLOGY, f),
    );
    await loadSnomedRf2(db.pool, files, { batchSize: 3 });
    let sct = await concepts(SNOMED_SYSTEM);
    expect(sct.get('38341003')!.display).toBe('High blood pressure');
    expect(sct.get('138875005')!.display).toBe('SNOMED CT Concept');

    await loadSnomedRf2(db.pool, [SNOMED_DIR], { language: 'ko' });
    sct = await concepts(SNOMED_SYSTEM);
    expect(sct.get('38341003')!.display).toBe('고혈압');
    expect(sct.get('38341003')!.designations.map((d) => d.value)).toContain('Hypertensive disorder, systemic arterial');
    // No Korean term: the English preferred synonym.
    expect(sct.get('138875005')!.display).toBe('SNOMED CT Concept');
  });

  it('a reload replaces concepts and relationships; an extension module names the edition', async () => {
    const copy = path.join(scratch, 'snomed-copy');
    await cp(SNOMED_DIR, copy, { recursive: true });
    const terminology = path.join(copy, 'SnomedCT_Fixture_20250101', 'Snapshot', 'Terminology');
    const conceptFile = path.join(terminology, 'sct2_Concept_Snapshot_INT_20250101.txt');
    const relationshipFile = path.join(terminology, 'sct2_Relationship_Snapshot_INT_20250101.txt');
    // Retire 44054006, drop 39607008 and its relationships, add a concept in an (invented) extension module.
    const conceptLines = (await readFile(conceptFile, 'utf8')).split('\r\n').filter((l) => !l.startsWith('39607008\t'));
    await writeFile(conceptFile, conceptLines.map((l) => (l.startsWith('44054006\t') ? l.replace('\t20020131\t1\t', '\t20250101\t0\t') : l)).join('\r\n'));
    await appendFile(conceptFile, '100001000267107\t20250101\t1\t11000267109\t900000000000074008\r\n');
    const relationshipLines = (await readFile(relationshipFile, 'utf8')).split('\r\n').filter((l) => !l.includes('\t39607008\t'));
    await writeFile(relationshipFile, relationshipLines.join('\r\n'));

    const summary = await loadSnomedRf2(db.pool, [copy]);
    expect(summary).toMatchObject({ version: 'http://snomed.info/sct/11000267109/version/20250101', concepts: 15, inactiveConcepts: 1 });
    const sct = await concepts(SNOMED_SYSTEM);
    expect(sct.has('39607008')).toBe(false);
    expect(sct.get('44054006')).toMatchObject({ active: false, display: 'Diabetes mellitus type 2' });
    // No description for the new concept: no display.
    expect(sct.get('100001000267107')).toMatchObject({ display: null, designations: [] });
    const rels = await relationships(SNOMED_SYSTEM);
    expect(rels).toHaveLength(13);
    expect(rels.some((r) => r.includes('39607008'))).toBe(false);

    await loadSnomedRf2(db.pool, [SNOMED_DIR]);
    expect((await concepts(SNOMED_SYSTEM)).size).toBe(15);
  });

  it('rejects a wrong header, a truncated line or a missing file after concepts were written, keeping the release', async () => {
    const copy = path.join(scratch, 'snomed-bad');
    await cp(SNOMED_TERMINOLOGY, copy, { recursive: true });
    const relationshipFile = path.join(copy, 'sct2_Relationship_Snapshot_INT_20250101.txt');
    const descriptionFile = path.join(copy, 'sct2_Description_Snapshot-en_INT_20250101.txt');
    const goodRelationships = await readFile(relationshipFile, 'utf8');
    const goodDescriptions = await readFile(descriptionFile, 'utf8');

    await writeFile(relationshipFile, goodRelationships.replace('relationshipGroup\ttypeId', 'typeId\trelationshipGroup'));
    await rejected(loadSnomedRf2(db.pool, [copy]), relationshipFile, 1, /not that of an RF2 relationship file: expected "id effectiveTime active moduleId sourceId destinationId relationshipGroup typeId/);
    await writeFile(relationshipFile, goodRelationships);

    const descriptionLines = goodDescriptions.split('\r\n');
    descriptionLines[6] = descriptionLines[6]!.split('\t').slice(0, 5).join('\t');
    await writeFile(descriptionFile, descriptionLines.join('\r\n'));
    await rejected(loadSnomedRf2(db.pool, [copy]), descriptionFile, 7, /expected 9 tab-separated fields, found 5 \(a truncated line\?\)/);
    await writeFile(descriptionFile, goodDescriptions);

    await rm(relationshipFile);
    await rejected(loadSnomedRf2(db.pool, [copy]), copy, 0, /no sct2_Relationship_Snapshot_\*\.txt file found/);
    const full = path.join(copy, 'sct2_Relationship_Full_INT_20250101.txt');
    await writeFile(full, goodRelationships);
    await rejected(loadSnomedRf2(db.pool, [path.join(copy, 'sct2_Concept_Snapshot_INT_20250101.txt'), full]), full, 0, /Full and Delta files are not loaded/);

    expect(await codeSystem(SNOMED_SYSTEM)).toMatchObject({ version: 'http://snomed.info/sct/900000000000207008/version/20250101', concept_count: 15 });
    expect(await relationships(SNOMED_SYSTEM)).toHaveLength(16);
    expect((await concepts(SNOMED_SYSTEM)).get('38341003')!.display).toBe('Hypertensive disorder, systemic arterial');
  });
});

describe('CSV reader', () => {
  /** A TextFile over `text`, cut into chunks of `size` characters. */
  function textFile(text: string, size: number): TextFile {
    return {
      path: 'inline.csv',
      sizeBytes: text.length,
      encoding: 'utf-8',
      async *chunks() {
        for (let i = 0; i < text.length; i += size) yield text.slice(i, i + size);
      },
    };
  }
  async function parse(text: string, size = 1 << 16): Promise<{ fields: string[]; line: number }[]> {
    const out = [];
    for await (const record of csvRecords(textFile(text, size))) out.push(record);
    return out;
  }

  const awkward = 'a,b,c\r\n"quoted, comma","two\r\nlines","say ""hi"""\r\n\r\nplain,,\n"",x,5" pipe\n"last","no newline"';
  const expected = [
    { fields: ['a', 'b', 'c'], line: 1 },
    { fields: ['quoted, comma', 'two\r\nlines', 'say "hi"'], line: 2 },
    { fields: ['plain', '', ''], line: 5 },
    { fields: ['', 'x', '5" pipe'], line: 6 },
    { fields: ['last', 'no newline'], line: 7 },
  ];

  it('reads quoted fields, doubled quotes, embedded line breaks, CR LF and blank lines, whatever the chunking', async () => {
    expect(await parse(awkward)).toEqual(expected);
    for (let size = 1; size <= 9; size++) expect(await parse(awkward, size)).toEqual(expected);
  });

  it('refuses text after a closing quote and an unclosed quote, naming the line', async () => {
    await expect(parse('a,b\n"x"y,z\n')).rejects.toThrow(/inline\.csv:2: text after the closing quote/);
    await expect(parse('a,b\nc,"open\n\n')).rejects.toThrow(/inline\.csv:2: the file ends inside a quoted field/);
  });
});

describe('prefix parents', () => {
  it('finds the nearest earlier prefix code, ignoring dots and ranges', () => {
    const parents = new PrefixParents();
    const found = ['A00-A09', 'A00', 'A00.0', 'A00.01', 'A00.1', 'A01', 'B20'].map((code) => [code, parents.parentOf(code)]);
    expect(found).toEqual([
      ['A00-A09', undefined],
      ['A00', undefined],
      ['A00.0', 'A00'],
      ['A00.01', 'A00.0'],
      ['A00.1', 'A00'],
      ['A01', undefined],
      ['B20', undefined],
    ]);
  });
});

describe('progress', () => {
  it('redraws one line on a terminal with percentage, rows, rate and ETA', () => {
    let clock = 0;
    let written = '';
    const progress = new LoadProgress({ label: 'loinc', isTTY: true, write: (t) => (written += t), now: () => clock });
    progress.start(4 * 1024 * 1024);
    clock = 1000;
    progress.rows(5000);
    progress.bytes(1024 * 1024);
    expect(written).toBe('\rloinc: 25.0% 1.0 MiB / 4.0 MiB, 5,000 rows, 5,000 rows/s, ETA 0:03\x1b[K');
    clock = 1100;
    progress.bytes(1024);
    expect(written.split('\r')).toHaveLength(2);
    progress.finish('done');
    expect(written.endsWith('done\x1b[K\n')).toBe(true);
  });

  it('prints a line now and then elsewhere', () => {
    let clock = 0;
    const lines: string[] = [];
    const progress = new LoadProgress({ label: 'kcd', isTTY: false, logIntervalMs: 5000, write: (t) => lines.push(t), now: () => clock });
    progress.start(100);
    for (let i = 1; i <= 10; i++) {
      clock = i * 1000;
      progress.bytes(10);
    }
    expect(lines).toEqual(['kcd: 50.0% 50 B / 100 B, 0 rows, 0 rows/s, ETA 0:05\n', 'kcd: 100.0% 100 B / 100 B, 0 rows, 0 rows/s, 0:10 elapsed\n']);
  });
});

describe('anchorline terminology load', () => {
  function capture(): TerminologyLoadOutput & { stdout: string; stderr: string } {
    const output = {
      stdout: '',
      stderr: '',
      errIsTTY: false,
      out: (text: string) => {
        output.stdout += text;
      },
      err: (text: string) => {
        output.stderr += text;
      },
    };
    return output;
  }
  const env = (): NodeJS.ProcessEnv => ({ DATABASE_URL: db.url, ANCHORLINE__DATABASE__SCHEMA: db.schema });

  it('loads a release and prints a summary', async () => {
    const output = capture();
    expect(await runTerminologyLoad(['icd10', ICD10CM_FILE, '--version', '2025-cli'], output, env())).toBe(0);
    expect(output.stdout).toMatch(/^loaded icd10: http:\/\/hl7\.org\/fhir\/sid\/icd-10-cm version 2025-cli: 14 concepts in 0:0\d\n$/);
    expect(output.stderr).toMatch(/^icd10: 100\.0% .* - done\n$/m);
    expect(await codeSystem(ICD10CM_SYSTEM)).toMatchObject({ version: '2025-cli' });

    const kostom = capture();
    expect(await runTerminologyLoad(['kostom', KOSTOM_FILE, '--version', '2024-cli', '--kcd-version', '8', '--quiet'], kostom, env())).toBe(0);
    expect(kostom.stdout).toMatch(/ConceptMap urn:anchorline:conceptmap:kostom-to-kcd-8 version 2024-cli: 12 source codes, sha256 [0-9a-f]{64}, active\n/);
    expect(kostom.stderr).toBe('');
  });

  it('exits 1 naming file and line for a rejected release, 2 for usage errors', async () => {
    const dir = await mkdtemp(path.join(scratch, 'cli-'));
    const bad = path.join(dir, 'icd10cm_order_2030.txt');
    await writeFile(bad, '00001 A00     0 Cholera\n');
    const rejectedOutput = capture();
    expect(await runTerminologyLoad(['icd10', bad, '--quiet'], rejectedOutput, env())).toBe(1);
    expect(rejectedOutput.stderr).toBe(`anchorline terminology load: rejected, nothing was changed: ${bad}:1: the line is 23 characters long; an order file line runs past column 78 (order, code, header flag, short and long description): a truncated line?\n`);
    expect(await codeSystem(ICD10CM_SYSTEM)).toMatchObject({ version: '2025-cli' });

    for (const argv of [[], ['mesh', 'x'], ['loinc'], ['kcd', 'a.csv', 'b.csv'], ['loinc', LOINC_FILE, '--language', 'ko'], ['kcd', KCD_FILE, '--language', 'fr'], ['loinc', LOINC_FILE, '--bogus']]) {
      const usage = capture();
      expect(await runTerminologyLoad(argv, usage, env())).toBe(2);
      expect(usage.stderr).toMatch(/^anchorline terminology load: .*\n\nusage: anchorline terminology load/);
    }
    const onPool = capture();
    expect(await TERMINOLOGY_RELEASE_LOADERS.icd10([bad, '--quiet'], db.pool, onPool)).toBe(1);
    expect(onPool.stderr).toBe(rejectedOutput.stderr);
    expect(await TERMINOLOGY_RELEASE_LOADERS.loinc([LOINC_FILE, '--version', '2.77', '--quiet'], db.pool, onPool)).toBe(0);
    expect(onPool.stdout).toMatch(/^loaded loinc: http:\/\/loinc\.org version 2\.77: 14 concepts \(1 inactive\) in /);
    expect(await TERMINOLOGY_RELEASE_LOADERS.kcd([], db.pool, onPool)).toBe(2);

    const help = capture();
    expect(await runTerminologyLoad(['--help'], help, env())).toBe(0);
    expect(help.stdout).toMatch(/^usage: anchorline terminology load <kind> <path>/);
  });
});

describe('memory', () => {
  /**
   * The live heap is sampled while the load runs (its peak, not just before and after). Test workers do not run with
   * --expose-gc, and without a collection heapUsed counts garbage that V8 has not yet collected (here up to ~100 MB,
   * collected or not depending on heap pressure), which says nothing about what the loader keeps. So the test turns
   * the flag on at run time and collects before each sample. The bound is generous: 64 MB next to a ~45 MB file
   * whose rows, held at once, would take several times that as strings and objects; measured growth is ~10 MB.
   */
  it('loads a 200,000-line Loinc.csv with bounded heap growth, reporting progress', { timeout: 300_000 }, async () => {
    const dir = await mkdtemp(path.join(scratch, 'big-'));
    const file = path.join(dir, 'Loinc.csv');
    const header = (await readFile(LOINC_FILE, 'utf8')).split('\n')[0]!;
    const columns = header.split(',').length;
    const out = createWriteStream(file);
    out.write(`${header}\n`);
    const rows = 200_000;
    for (let i = 0; i < rows; i++) {
      const code = `${100000 + i}-${i % 10}`;
      const fields = new Array<string>(columns).fill('');
      fields[0] = code;
      fields[1] = `Generated component ${i}`;
      fields[2] = 'MCnc';
      fields[3] = 'Pt';
      fields[4] = 'Ser/Plas';
      fields[5] = 'Qn';
      fields[7] = 'CHEM';
      fields[10] = `Generated definition of term ${i}, long enough to make the row look like a real one with some text.`;
      fields[11] = i % 50 === 0 ? 'DEPRECATED' : 'ACTIVE';
      fields[20] = `Gen ${i} SerPl-mCnc`;
      fields[25] = `Generated component ${i} [Mass/volume] in Serum or Plasma`;
      if (!out.write(`${fields.map((f) => `"${f}"`).join(',')}\n`)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');

    const progressLines: string[] = [];
    const progress = new LoadProgress({ label: 'loinc', isTTY: false, logIntervalMs: 250, write: (t) => progressLines.push(t) });
    v8.setFlagsFromString('--expose-gc');
    const collect = vm.runInNewContext('gc') as () => void;
    collect();
    const baseline = process.memoryUsage().heapUsed;
    let peak = baseline;
    const sampler = setInterval(() => {
      collect();
      peak = Math.max(peak, process.memoryUsage().heapUsed);
    }, 200);
    let summary;
    try {
      summary = await loadLoinc(db.pool, file, { version: 'generated', observer: progress });
    } finally {
      clearInterval(sampler);
    }
    collect();
    peak = Math.max(peak, process.memoryUsage().heapUsed);
    progress.finish('done');

    expect(summary).toMatchObject({ concepts: rows, inactiveConcepts: rows / 50 });
    const growthMb = (peak - baseline) / 1024 / 1024;
    expect(growthMb).toBeLessThan(64);
    expect(progressLines.length).toBeGreaterThan(1);
    expect(progressLines.at(-1)).toMatch(/^loinc: 100\.0% .* MiB \/ .* MiB, 200,000 rows, [\d,]+ rows\/s, .* - done\n$/);
    expect(progressLines.some((line) => /^loinc: \d+\.\d% .*ETA \d+:\d\d\n$/.test(line))).toBe(true);
    await loadLoinc(db.pool, LOINC_FILE);
  });
});

describe('fixtures', () => {
  it('the EUC-KR KCD table is EUC-KR and holds the same rows as the UTF-8 one', async () => {
    const bytes = await readFile(KCD_EUCKR_FILE);
    expect(() => new TextDecoder('utf-8', { fatal: true }).decode(bytes)).toThrow();
    const fromEucKr = iconv.decode(bytes, 'euc-kr').split('\r\n').slice(1);
    const fromUtf8 = (await readFile(KCD_FILE, 'utf8')).replace(/^\uFEFF/, '').split('\r\n').slice(1);
    expect(fromEucKr).toEqual(fromUtf8);
  });
});

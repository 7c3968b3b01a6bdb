/** `anchorline terminology`: loading, listing and activating ConceptMaps in the engine's database; exit codes. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTerminology } from '../../cli/terminology.ts';
import { listConceptMaps } from '../../terminology/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/terminology/conceptmaps');
const KCD_MAP = 'http://hospital.example.org/fhir/ConceptMap/local-dx-to-kcd';

let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase('terminology_cli');
  dir = await mkdtemp(path.join(os.tmpdir(), 'anchorline-terminology-cli-'));
});
afterAll(async () => {
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function terminology(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const env = { DATABASE_URL: db.url, ANCHORLINE__DATABASE__SCHEMA: db.schema, ANCHORLINE_DATA_DIR: dir };
  const code = await runTerminology(args, { out: (t) => (out += t), err: (t) => (err += t) }, env);
  return { code, out, err };
}

describe('anchorline terminology', () => {
  it('loads a YAML map, and a CSV map with --url and --version', async () => {
    const yaml = await terminology('conceptmap', 'load', path.join(FIXTURES, 'kostom-to-snomed.yaml'));
    expect(yaml.err).toBe('');
    expect(yaml.code).toBe(0);
    expect(yaml.out).toMatch(/^loaded ConceptMap http:\/\/hospital\.example\.org\/fhir\/ConceptMap\/kostom-to-snomed version 2026\.1: 5 mappings, sha256 [0-9a-f]{64}, active/);
    const csv = await terminology('conceptmap', 'load', path.join(FIXTURES, 'local-to-kcd.csv'), '--url', KCD_MAP, '--version', '1.0', '--name', 'LocalDiagnosisToKcd8');
    expect(csv.code).toBe(0);
    const again = await terminology('conceptmap', 'load', path.join(FIXTURES, 'local-to-kcd.json'));
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/^already loaded/);
  });

  it('lists code systems, maps and the terminology version', async () => {
    const text = await terminology('list');
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^terminology version: sha256:[0-9a-f]{64}/);
    expect(text.out).toContain(`* ${KCD_MAP}  version 1.0  5 mappings`);
    const json = await terminology('list', '--json');
    expect(JSON.parse(json.out).conceptMaps).toHaveLength(2);
  });

  it('loads a version inactive and activates it later', async () => {
    const file = path.join(dir, 'kcd-2.json');
    await writeFile(file, (await readFile(path.join(FIXTURES, 'local-to-kcd.json'), 'utf8')).replace('"version": "1.0"', '"version": "2.0"'));
    expect((await terminology('conceptmap', 'load', file, '--inactive')).out).toMatch(/not active/);
    expect((await listConceptMaps(db.pool, { url: KCD_MAP, activeOnly: true }))[0]!.version).toBe('1.0');
    expect((await terminology('conceptmap', 'activate', KCD_MAP, '2.0')).code).toBe(0);
    expect((await listConceptMaps(db.pool, { url: KCD_MAP, activeOnly: true }))[0]!.version).toBe('2.0');
  });

  it('exits 1 for a map the file or the database refuses, 2 for usage errors', async () => {
    const bad = path.join(dir, 'bad.yaml');
    await writeFile(bad, 'url: u\nversion: "1"\nsourceSystem: s\ntargetSystem: t\nmappings:\n  - {source: a, target: b, equivalence: same}\n');
    const refused = await terminology('conceptmap', 'load', bad);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/ANCHORLINE_ERR_INVALID_REQUEST: ConceptMap: equivalence must be one of .* \(at mappings\[0\]\.equivalence\)/);
    const noUrl = await terminology('conceptmap', 'load', path.join(FIXTURES, 'local-to-kcd.csv'));
    expect(noUrl.code).toBe(1);
    expect(noUrl.err).toMatch(/--url/);
    expect((await terminology('conceptmap', 'activate', KCD_MAP, '9')).code).toBe(1);
    const unknownFormat = await terminology('conceptmap', 'load', path.join(dir, 'map.txt'));
    expect(unknownFormat.code).toBe(2);
    expect(unknownFormat.err).toMatch(/--format/);
    expect((await terminology('frobnicate')).code).toBe(2);
    expect((await terminology('conceptmap', 'load', '--bogus', 'x')).code).toBe(2);
    const load = await terminology('load', 'no-such-format', 'file');
    expect(load.code).toBe(2);
    expect(load.err).toMatch(/no release loader for no-such-format/);
    expect((await terminology('--help')).code).toBe(0);
  });
});

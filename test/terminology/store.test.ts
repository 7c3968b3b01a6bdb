/** Stored ConceptMaps and code systems: versions, activation, the terminology version. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTransaction } from '../../store/index.ts';
import {
  activateConceptMap,
  finishCodeSystem,
  insertConcepts,
  insertRelationships,
  listCodeSystems,
  listConceptMaps,
  loadConceptMap,
  parseConceptMap,
  readConcept,
  readConceptMap,
  readTerminologyVersion,
  terminologyVersionOf,
  upsertCodeSystem,
} from '../../terminology/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/terminology/conceptmaps');
const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('terminology_store');
});
afterAll(async () => {
  await db?.drop();
});

async function expectedVersion(): Promise<string> {
  const maps = await listConceptMaps(db.pool, { activeOnly: true });
  const systems = await listCodeSystems(db.pool);
  return terminologyVersionOf(maps, systems);
}

describe('ConceptMap versions', () => {
  it('is none before anything is loaded', async () => {
    expect(await readTerminologyVersion(db.pool)).toBe('none');
  });

  it('loads a map with its elements, active, and recognises a reload of the same content', async () => {
    const map = parseConceptMap(fixture('kostom-to-snomed.yaml'), 'yaml');
    const first = await loadConceptMap(db.pool, map);
    expect(first).toMatchObject({ url: map.url, version: '2026.1', elementCount: 5, created: true, active: true });
    const again = await loadConceptMap(db.pool, parseConceptMap(fixture('kostom-to-snomed.csv'), 'csv', { url: map.url, version: '2026.1', name: 'KostomToSnomedCt' }));
    expect(again).toMatchObject({ created: false, contentSha256: first.contentSha256 });
    const elements = await db.pool.query('SELECT count(*)::int AS n FROM concept_map_element WHERE map_url = $1', [map.url]);
    expect(elements.rows[0].n).toBe(5);
    expect(await readConceptMap(db.pool, map.url)).toEqual(map);
  });

  it('refuses other content under a version that is loaded', async () => {
    const changed = parseConceptMap(fixture('kostom-to-snomed.yaml').replace('target: "22298006"', 'target: "57054005"'), 'yaml');
    await expect(loadConceptMap(db.pool, changed)).rejects.toThrow(/loaded already with other content/);
  });

  it('a new version becomes the active one, the old one is kept, and either can be made active again', async () => {
    const url = 'http://hospital.example.org/fhir/ConceptMap/kostom-to-snomed';
    const before = await readTerminologyVersion(db.pool);
    const next = parseConceptMap(fixture('kostom-to-snomed.yaml').replace('version: "2026.1"', 'version: "2026.2"').replace('target: "22298006"', 'target: "57054005"'), 'yaml');
    await loadConceptMap(db.pool, next);
    const versions = await listConceptMaps(db.pool, { url });
    expect(versions.map((v) => [v.version, v.active])).toEqual([['2026.2', true], ['2026.1', false]]);
    const after = await readTerminologyVersion(db.pool);
    expect(after).not.toBe(before);
    expect(after).toBe(await expectedVersion());

    await withTransaction(db.pool, (client) => activateConceptMap(client, url, '2026.1'));
    expect((await listConceptMaps(db.pool, { url, activeOnly: true })).map((v) => v.version)).toEqual(['2026.1']);
    expect(await readTerminologyVersion(db.pool)).toBe(before);
    await expect(withTransaction(db.pool, (client) => activateConceptMap(client, url, '9.9'))).rejects.toThrow(/no version 9.9/);
  });

  it('concurrent loads of new versions of one map leave exactly one active', async () => {
    const base = fixture('local-to-kcd.yaml');
    await Promise.all(['2.0', '2.1', '2.2', '2.3'].map((v) => loadConceptMap(db.pool, parseConceptMap(base.replace('version: "1.0"', `version: "${v}"`), 'yaml'))));
    const active = await listConceptMaps(db.pool, { url: 'http://hospital.example.org/fhir/ConceptMap/local-dx-to-kcd', activeOnly: true });
    expect(active).toHaveLength(1);
  });
});

describe('code systems', () => {
  const KCD = 'http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8';

  it('loads concepts in batches, replaces them on upsert, and counts them at the end', async () => {
    await upsertCodeSystem(db.pool, { url: KCD, version: 'KCD-8 2021', name: 'KOSTAT_KCD_8', title: 'KOSTAT KCD-8', sourceFormat: 'kcd' });
    expect(await insertConcepts(db.pool, KCD, [
      { code: 'I10', display: 'Essential (primary) hypertension', designations: [{ language: 'ko', value: '본태성(원발성) 고혈압' }] },
      { code: 'E11', display: 'Type 2 diabetes mellitus' },
      { code: 'E11.9', display: 'Type 2 diabetes mellitus without complications', properties: [{ code: 'kind', valueCode: 'code' }] },
      { code: 'E11.9', display: 'Type 2 diabetes mellitus, without complications' },
    ])).toBe(3);
    await insertRelationships(db.pool, KCD, [{ sourceCode: 'E11.9', typeCode: 'is-a', destinationCode: 'E11' }, { sourceCode: 'E11.9', typeCode: 'is-a', destinationCode: 'E11' }]);
    expect(await finishCodeSystem(db.pool, KCD)).toBe(3);
    const found = await readConcept(db.pool, KCD, 'E11.9');
    expect(found?.concept?.display).toBe('Type 2 diabetes mellitus, without complications');
    expect(found?.parents).toEqual(['E11']);
    expect((await readConcept(db.pool, KCD, 'Z99'))?.concept).toBeUndefined();

    const withSystem = await readTerminologyVersion(db.pool);
    expect(withSystem).toBe(await expectedVersion());
    await upsertCodeSystem(db.pool, { url: KCD, version: 'KCD-8 2024', name: 'KOSTAT_KCD_8', sourceFormat: 'kcd' });
    expect(await finishCodeSystem(db.pool, KCD)).toBe(0);
    expect(await readTerminologyVersion(db.pool)).not.toBe(withSystem);
    await upsertCodeSystem(db.pool, { url: KCD, version: 'KCD-8 2024', name: 'KOSTAT_KCD_8', sourceFormat: 'kcd' }, { keepConcepts: true });
    await insertConcepts(db.pool, KCD, [{ code: 'I10' }]);
    await upsertCodeSystem(db.pool, { url: KCD, version: 'KCD-8 2024', name: 'KOSTAT_KCD_8', sourceFormat: 'kcd' }, { keepConcepts: true });
    expect(await finishCodeSystem(db.pool, KCD)).toBe(1);
  });
});

describe('the terminology version', () => {
  it('is specified: sha256 over sorted lines of active maps and code systems', () => {
    const version = terminologyVersionOf(
      [{ url: 'b', version: '1', contentSha256: 'bb' }, { url: 'a', version: '2', contentSha256: 'aa' }],
      [{ url: 'z', version: '3' }],
    );
    // sha256("ConceptMap|a|2|aa\nConceptMap|b|1|bb\nCodeSystem|z|3")
    expect(version).toBe('sha256:' + createHashHex('ConceptMap|a|2|aa\nConceptMap|b|1|bb\nCodeSystem|z|3'));
  });
});

function createHashHex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The ingest enricher: adds standard codings after the sender's, records unmapped codes, one statement per call. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTransaction } from '../../store/index.ts';
import { createTerminologyEnricher, loadConceptMap, parseConceptMap, readTerminologyVersion, type EnrichItem, type TerminologyEnricher } from '../../terminology/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/terminology/conceptmaps');
const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');

const KOSTOM = 'http://www.hl7korea.or.kr/CodeSystem/kostom';
const SNOMED = 'http://snomed.info/sct';
const LOCAL_DX = 'urn:anchorline:local/SNUH-DX';
const KCD = 'http://www.hl7korea.or.kr/CodeSystem/kostat-kcd-8';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('terminology_enricher');
  await loadConceptMap(db.pool, parseConceptMap(fixture('kostom-to-snomed.json'), 'json'));
  await loadConceptMap(db.pool, parseConceptMap(fixture('local-to-kcd.yaml'), 'yaml'));
});
afterAll(async () => {
  await db?.drop();
});

let controlId = 0;
async function newMessageIds(n: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const raw = Buffer.from(`MSH|^~\\&|EMR|SNUH|||20260101||ORU^R01|${++controlId}|P|2.5.1\r`);
    const result = await db.pool.query<{ id: number }>(
      `INSERT INTO inbox_message (protocol, source, sender, control_id, raw, raw_sha256, raw_size, disposition, state)
       VALUES ('test', 'test', 'EMR|SNUH', $1, $2, $3, $4, 'accepted', 'done') RETURNING id`,
      [String(controlId), raw, createHash('sha256').update(raw).digest(), raw.length],
    );
    ids.push(result.rows[0]!.id);
  }
  return ids;
}

/** Runs enrich in a transaction on a client whose statements are counted. */
async function enrich(enricher: TerminologyEnricher, items: EnrichItem[]): Promise<{ version: string; statements: number }> {
  return withTransaction(db.pool, async (client) => {
    let statements = 0;
    const counted = new Proxy(client, {
      get(target, property, receiver) {
        if (property === 'query') {
          return (...args: unknown[]) => {
            statements++;
            return (target.query as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return Reflect.get(target, property, receiver);
      },
    }) as pg.PoolClient;
    const version = await enricher.enrich(counted, items);
    return { version, statements };
  });
}

function condition(id: string, ...coding: Array<Record<string, string>>): EnrichItem['drafts'][number] {
  return { resourceType: 'Condition', id, code: { coding, text: 'as sent' } };
}

describe('enrich', () => {
  const enricher = createTerminologyEnricher();

  it('adds the standard codings after the sender coding, in one statement per call once warm', async () => {
    const [m1, m2] = await newMessageIds(2);
    const items: EnrichItem[] = [
      { messageId: m1!, mapping: { name: 'default' }, drafts: [condition('c1', { system: KOSTOM, code: '0010101', display: '급성 심근경색' })] },
      { messageId: m2!, mapping: { name: 'default' }, drafts: [condition('c2', { system: LOCAL_DX, code: 'DX-DM2' }), condition('c3', { system: 'http://loinc.org', code: '4548-4' })] },
    ];
    const first = await enrich(enricher, items);
    expect(first.statements).toBe(2); // the first call also reads which systems are mapped
    expect(first.version).toBe(await readTerminologyVersion(db.pool));
    expect(items[0]!.drafts[0]!.code).toEqual({
      coding: [{ system: KOSTOM, code: '0010101', display: '급성 심근경색' }, { system: SNOMED, code: '22298006', display: 'Myocardial infarction' }],
      text: 'as sent',
    });
    expect((items[1]!.drafts[0]!.code as { coding: unknown[] }).coding).toEqual([
      { system: LOCAL_DX, code: 'DX-DM2' },
      { system: KCD, code: 'E11', display: '2형 당뇨병' },
      { system: KCD, code: 'E11.9', display: '합병증을 동반하지 않은 2형 당뇨병' },
    ]);
    expect((items[1]!.drafts[1]!.code as { coding: unknown[] }).coding).toEqual([{ system: 'http://loinc.org', code: '4548-4' }]);

    const [m3] = await newMessageIds(1);
    const again = await enrich(enricher, [{ messageId: m3!, mapping: { name: 'default' }, drafts: [condition('c4', { system: KOSTOM, code: '0010202' })] }]);
    expect(again.statements).toBe(1);
    expect(again.version).toBe(first.version);
  });

  it('keeps a coding that is there already, and never touches shared objects', async () => {
    const [m] = await newMessageIds(1);
    const shared = Object.freeze({ coding: Object.freeze([Object.freeze({ system: KOSTOM, code: '0010303' })]) });
    const items: EnrichItem[] = [
      {
        messageId: m!,
        mapping: { name: 'default' },
        drafts: [
          condition('c5', { system: KOSTOM, code: '0010101' }, { system: SNOMED, code: '22298006' }),
          { resourceType: 'Observation', id: 'o1', category: [shared], component: [{ code: shared }] },
        ],
      },
    ];
    await enrich(enricher, items);
    expect((items[0]!.drafts[0]!.code as { coding: unknown[] }).coding).toEqual([{ system: KOSTOM, code: '0010101' }, { system: SNOMED, code: '22298006' }]);
    const observation = items[0]!.drafts[1]! as unknown as { category: Array<{ coding: unknown[] }>; component: Array<{ code: { coding: unknown[] } }> };
    expect(observation.category[0]!.coding).toHaveLength(2);
    expect(observation.component[0]!.code.coding).toHaveLength(2);
    expect(shared.coding).toHaveLength(1);
  });

  it('records codes of mapped systems that have no mapping, counting occurrences and messages', async () => {
    const [m1, m2] = await newMessageIds(2);
    const unknown = { system: KOSTOM, code: '0099999', display: 'unlisted term' };
    await enrich(enricher, [
      { messageId: m1!, mapping: { name: 'emr-a' }, drafts: [condition('c6', unknown), condition('c7', unknown)] },
      { messageId: m2!, mapping: { name: 'emr-a' }, drafts: [condition('c8', { system: KOSTOM, code: '0099999' }), condition('c9', { system: KOSTOM, code: '0010505' })] },
    ]);
    await enrich(enricher, [{ messageId: m2!, mapping: { name: 'emr-b' }, drafts: [condition('c10', unknown)] }]);
    const rows = await db.pool.query('SELECT system, code, display, source, occurrences, resolved_at FROM unmapped_code ORDER BY source');
    expect(rows.rows).toEqual([
      { system: KOSTOM, code: '0099999', display: 'unlisted term', source: 'emr-a', occurrences: 3, resolved_at: null },
      { system: KOSTOM, code: '0099999', display: 'unlisted term', source: 'emr-b', occurrences: 1, resolved_at: null },
    ]);
    const messages = await db.pool.query('SELECT message_id FROM unmapped_code_message WHERE code = $1 ORDER BY message_id', ['0099999']);
    expect(messages.rows.map((r) => r.message_id)).toEqual([m1, m2]);
  });

  it('sees a changed map at the next call, without restarting', async () => {
    const [m] = await newMessageIds(1);
    const before = await readTerminologyVersion(db.pool);
    const next = fixture('kostom-to-snomed.yaml').replace('version: "2026.1"', 'version: "2026.2"') + '  - source: "0099999"\n    target: "73211009"\n    display: Diabetes mellitus\n';
    await loadConceptMap(db.pool, parseConceptMap(next, 'yaml'));
    const items: EnrichItem[] = [{ messageId: m!, mapping: { name: 'default' }, drafts: [condition('c11', { system: KOSTOM, code: '0099999' })] }];
    const result = await enrich(enricher, items);
    expect(result.version).not.toBe(before);
    expect(result.version).toBe(await readTerminologyVersion(db.pool));
    expect(result.statements).toBe(3); // refused as stale, refreshed, run again
    expect((items[0]!.drafts[0]!.code as { coding: unknown[] }).coding).toContainEqual({ system: SNOMED, code: '73211009', display: 'Diabetes mellitus' });
  });

  it('handles a large batch in one statement', async () => {
    const ids = await newMessageIds(100);
    const items: EnrichItem[] = ids.map((messageId, i) => ({
      messageId,
      mapping: { name: 'default' },
      drafts: [condition(`big${i}`, { system: KOSTOM, code: i % 2 === 0 ? '0010101' : `0088${i}` }), condition(`bigdx${i}`, { system: LOCAL_DX, code: 'DX-HTN' })],
    }));
    const result = await enrich(enricher, items);
    expect(result.statements).toBe(1);
    expect(items.every((item) => (item.drafts[1]!.code as { coding: unknown[] }).coding.length === 2)).toBe(true);
    const unmapped = await db.pool.query(`SELECT count(*)::int AS n FROM unmapped_code WHERE code LIKE '0088%'`);
    expect(unmapped.rows[0].n).toBe(50);
  });
});

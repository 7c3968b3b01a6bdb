/**
 * Reads and searches run as prepared statements, planned once per connection: a search's values, its page size and
 * offset are parameters, so searches of one shape share one statement and still answer each with its own values;
 * statement texts made at run time get names only up to a bound. A version write leaves its transaction's plan mode
 * as the transaction set it (the ingest batch's custom plans).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preparedName, withTransaction } from '../../store/db.ts';
import { readCurrent, readHistory, searchResources, stampVersion, writeVersions } from '../../store/resources.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;

beforeAll(async () => {
  // One connection: the statements it prepared are the pool's.
  db = await createTestDatabase('prepared', 1);
  const versions = Array.from({ length: 5 }, (_, n) => ({
    stored: stampVersion(undefined, { resourceType: 'Organization', id: `org${n}`, name: `Clinic ${n}`, identifier: [{ system: 'urn:test', value: `O${n % 2}` }] }),
    sourceMessageId: null,
  }));
  await withTransaction(db.pool, (client) => writeVersions(client, versions, new Map()));
});

afterAll(async () => {
  await db?.drop();
});

const prepared = async (): Promise<string[]> =>
  (await db.pool.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements ORDER BY statement')).rows.map((r) => r.statement);

describe('prepared statements', () => {
  it('runs searches of one shape as one statement, with their own values, page size and offset', async () => {
    const before = (await prepared()).length;
    const search = (value: string, count: number, offset: number) => searchResources(db.pool, 'Organization', [{ kind: 'token', param: 'identifier', values: [{ code: value }] }], { count, offset });
    const first = await search('O0', 10, 0);
    expect(first.total).toBe(3);
    expect(first.resources.map((r) => r.id).sort()).toEqual(['org0', 'org2', 'org4']);
    const afterFirst = (await prepared()).length;
    // The page alone: it holds every match, so it says how many there are without a count.
    expect(afterFirst - before).toBe(1);
    // A full page is counted, by a statement of its own for the shape.
    const full = await search('O0', 2, 0);
    expect(full.total).toBe(3);
    expect(full.more).toBe(true);
    expect(full.resources).toHaveLength(2);
    expect((await prepared()).length).toBe(afterFirst + 1);
    const page = await search('O1', 1, 1);
    expect(page.total).toBe(2);
    expect(page.more).toBe(false);
    expect(page.resources).toHaveLength(1);
    expect(['org1', 'org3']).toContain(page.resources[0]!.id);
    const rest = await search('O1', 5, 0);
    expect(rest.resources.map((r) => r.id).sort()).toEqual(['org1', 'org3']);
    // A page past the last match says nothing of how many there are: counted.
    const past = await search('O1', 5, 10);
    expect(past).toMatchObject({ total: 2, resources: [], more: false });
    expect((await prepared()).length).toBe(afterFirst + 1);
    // Another shape (two values) is another statement.
    const either = await searchResources(db.pool, 'Organization', [{ kind: 'token', param: 'identifier', values: [{ code: 'O0' }, { code: 'O1' }] }], { count: 2, offset: 4 });
    expect(either.total).toBe(5);
    expect(either.resources).toHaveLength(1);
    expect((await prepared()).length).toBe(afterFirst + 2);
  });

  it('reads by id and history through prepared statements', async () => {
    expect((await readCurrent(db.pool, 'Organization', 'org3'))?.content.name).toBe('Clinic 3');
    expect(await readCurrent(db.pool, 'Organization', 'nothing')).toBeUndefined();
    const history = await readHistory(db.pool, 'Organization', 'org2', { count: 1, offset: 0 });
    expect(history.total).toBe(1);
    expect(history.versions[0]!.versionId).toBe(1);
    expect((await readHistory(db.pool, 'Organization', 'org2', { count: 1, offset: 1 })).versions).toEqual([]);
    const statements = await db.pool.query<{ name: string }>('SELECT name FROM pg_prepared_statements');
    expect(statements.rows.map((r) => r.name)).toContain('anchorline_read_current');
  });

  it("plans a write's statement as its transaction says, custom plans in the ingest's", async () => {
    const mode = async (client: { query: typeof db.pool.query }): Promise<string> => (await client.query<{ m: string }>(`SELECT current_setting('plan_cache_mode') AS m`)).rows[0]!.m;
    const write = (id: string) => async (client: Parameters<Parameters<typeof withTransaction>[1]>[0]): Promise<string> => {
      await writeVersions(client, [{ stored: stampVersion(undefined, { resourceType: 'Organization', id, name: 'Planned' }), sourceMessageId: null }], new Map());
      return mode(client);
    };
    expect(await withTransaction(db.pool, write('org-custom'), { customPlans: true })).toBe('force_custom_plan');
    expect(await withTransaction(db.pool, write('org-auto'))).toBe('auto');
    expect(await mode(db.pool)).toBe('auto');
    expect((await readCurrent(db.pool, 'Organization', 'org-custom'))?.content.name).toBe('Planned');
  });

  it('names at most a bounded number of run-time texts, each always the same', () => {
    const name = preparedName('SELECT 1 AS shape_a');
    expect(name).toMatch(/^anchorline_q_[0-9a-f]{32}$/);
    expect(preparedName('SELECT 1 AS shape_a')).toBe(name);
    const names = Array.from({ length: 400 }, (_, n) => preparedName(`SELECT ${n} AS shape_b`));
    expect(names.filter((n) => n === undefined).length).toBeGreaterThan(0);
    expect(new Set(names.filter((n) => n !== undefined)).size).toBe(names.filter((n) => n !== undefined).length);
    // Known texts keep their names past the bound.
    expect(preparedName('SELECT 1 AS shape_a')).toBe(name);
  });
});

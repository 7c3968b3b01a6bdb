/**
 * The search index as blind indexes (store/blind-index.ts), through the real engine: after an ADT with a Hangul name
 * and a record number is mapped, no row of the index holds the name, the number or a code in clear, while FHIR
 * search still finds the patient by identifier (with and without system), by name prefix (one Hangul syllable
 * included), by `:exact`, and not by what is not there. An engine started without a master key indexes under the
 * public key; the first start with encryption on draws a secret index key and rebuilds the index, and a database
 * whose index was lost (as a migration from the plain index leaves it) is rebuilt from the records, sealed ones
 * opened. A keyed index without the master key is refused.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../config/logger.ts';
import { blindIndexOf, ensureSearchIndex, migrate, openToolDatabase, PREFIX_CHARS, PUBLIC_BLIND_INDEX } from '../../store/index.ts';
import { adtMessage } from '../support/messages.ts';
import { MllpTestClient } from '../support/mllp-client.ts';
import { authHeaders, eventually, startTestEngine, type TestEngine } from '../support/engine.ts';
import { testDatabaseUrl, uniqueName } from '../support/db.ts';

const PATIENT = { mrn: 'BLIND7731', family: '홍', given: '길동', authority: 'SNUH' };
const started: TestEngine[] = [];

afterAll(async () => {
  for (const each of started.reverse()) {
    await each.close().catch(() => undefined);
    await each.destroy().catch(() => undefined);
  }
});

async function search(t: TestEngine, query: string): Promise<string[]> {
  const response = await fetch(`${t.httpUrl}/fhir/Patient?${query}`, { headers: authHeaders() });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { entry?: Array<{ resource: { id: string } }> };
  return (body.entry ?? []).map((e) => e.resource.id).sort();
}

/** Every value of every index row, as text. */
async function indexText(t: TestEngine): Promise<string> {
  const tokens = await t.pool.query<{ row: string }>('SELECT t::text AS row FROM fhir_search_token t');
  const strings = await t.pool.query<{ row: string }>('SELECT s::text AS row FROM fhir_search_string s');
  return [...tokens.rows, ...strings.rows].map((r) => r.row).join('\n');
}

async function ingest(t: TestEngine, controlId: string, patient: typeof PATIENT): Promise<string> {
  const client = await MllpTestClient.connect(t.mllpPort);
  await client.request(adtMessage({ controlId, ...patient }));
  await client.close();
  const [id] = await eventually(async () => {
    const found = await search(t, `identifier=${patient.mrn}`);
    return found.length > 0 ? found : undefined;
  }, 20_000, `patient ${patient.mrn}`);
  return id!;
}

describe('the blind search index', () => {
  const schema = uniqueName('blind');
  let patientId: string;

  it('indexes under the public key when there is no master key', async () => {
    const t = await startTestEngine({ schema, overrides: { encryption: { enabled: false }, anchor: { closeAfterMs: 200 } } });
    started.push(t);
    expect(t.engine.store.keyring).toBeUndefined();
    patientId = await ingest(t, 'BLIND-1', PATIENT);
    expect((await t.pool.query('SELECT fingerprint, wrapped_key FROM search_index_key')).rows).toEqual([{ fingerprint: 'public', wrapped_key: null }]);
    await t.close();
  }, 60_000);

  it('draws a secret key and rebuilds the index at the first start with encryption on; nothing searchable is left in clear', async () => {
    const t = await startTestEngine({ schema, overrides: { encryption: { enabled: true }, anchor: { closeAfterMs: 200 } } });
    started.push(t);
    const key = (await t.pool.query('SELECT fingerprint, wrapped_key, kek_id FROM search_index_key')).rows[0];
    expect(key.fingerprint).not.toBe('public');
    expect(key.wrapped_key).toBeInstanceOf(Buffer);
    expect(key.kek_id).toBe(t.engine.store.keyring!.kms.currentKeyId);
    const index = await blindIndexOf(t.pool);
    expect(index.fingerprint).toBe(key.fingerprint);
    // The rows written under the public key were replaced: the public hash of the record number finds nothing.
    const publicRows = await t.pool.query('SELECT 1 FROM fhir_search_token WHERE param = $1 AND code_hash = $2', ['identifier', PUBLIC_BLIND_INDEX.codeHash('identifier', PATIENT.mrn)]);
    expect(publicRows.rowCount).toBe(0);

    // A second patient, written with the secret key, and both found.
    const other = { mrn: 'BLIND7732', family: '홍', given: '길순', authority: 'SNUH' };
    const otherId = await ingest(t, 'BLIND-2', other);
    expect(await search(t, `identifier=${PATIENT.mrn}`)).toEqual([patientId]);
    const stored = (await (await fetch(`${t.httpUrl}/fhir/Patient/${patientId}`, { headers: authHeaders() })).json()) as { identifier: Array<{ system?: string; value: string }> };
    const system = stored.identifier.find((i) => i.value === PATIENT.mrn)!.system!;
    expect(await search(t, `identifier=${encodeURIComponent(`${system}|${PATIENT.mrn}`)}`)).toEqual([patientId]);
    expect(await search(t, `identifier=${encodeURIComponent(`urn:oid:9.9.9|${PATIENT.mrn}`)}`)).toEqual([]);
    expect(await search(t, `family=홍`)).toEqual([patientId, otherId].sort());
    expect(await search(t, `name=홍길`)).toEqual([patientId, otherId].sort());
    expect(await search(t, `name=홍길동`)).toEqual([patientId]);
    // `name` finds the parts (indexed once, under family and given) and a composed form searched for whole.
    expect(await search(t, `name=길동`)).toEqual([patientId]);
    expect(await search(t, `name=${encodeURIComponent('홍 길동')}`)).toEqual([patientId]);
    expect(await search(t, `name=${encodeURIComponent('길순 홍')}`)).toEqual([otherId]);
    expect(await search(t, `given=길`)).toEqual([patientId, otherId].sort());
    expect(await search(t, `family:exact=홍`)).toEqual([patientId, otherId].sort());
    expect(await search(t, `given:exact=길`)).toEqual([]);
    expect(await search(t, `name=김`)).toEqual([]);
    expect(await search(t, `identifier=BLIND773`)).toEqual([]);
    expect(await search(t, `gender=female`)).toEqual(expect.arrayContaining([patientId, otherId]));

    // What the index holds: hashes, and references to resource ids. No name, number, code or system in clear.
    const text = await indexText(t);
    for (const clear of [PATIENT.mrn, other.mrn, '홍', '길동', '길순', 'female', 'SNUH', 'http://', 'urn:']) expect(text).not.toContain(clear);
    const references = await t.pool.query<{ reference: string }>('SELECT DISTINCT reference FROM fhir_search_token WHERE reference IS NOT NULL');
    for (const { reference } of references.rows) expect(reference).toMatch(/^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]+(\/_history\/\d+)?$/);
    expect(references.rows.map((r) => r.reference)).toContain(`Patient/${patientId}`);
  }, 60_000);

  it('rebuilds a lost index from the records, opening sealed ones, and refuses a keyed index without the master key', async () => {
    const t = started.at(-1)!;
    // Import AuditEvents name their sender (mllp:<address>:<port>), searched by prefix through the vocabulary.
    const imports = async (engine: TestEngine): Promise<number> => {
      const response = await fetch(`${engine.httpUrl}/fhir/AuditEvent?agent-name=mllp&type=110107&_count=1`, { headers: authHeaders() });
      expect(response.status).toBe(200);
      return ((await response.json()) as { total: number }).total;
    };
    const importsBefore = await imports(t);
    expect(importsBefore).toBeGreaterThanOrEqual(2);
    // As a migration from the plain index leaves a database: index tables empty, no key row.
    await t.pool.query('DELETE FROM search_index_key');
    await t.pool.query('DELETE FROM fhir_search_token');
    await t.pool.query('DELETE FROM fhir_search_string');
    expect(await search(t, `identifier=${PATIENT.mrn}`)).toEqual([]);
    const tool = await openToolDatabase(t.config, 'anchorline-test');
    try {
      const rebuilt = (await tool.pool.query('SELECT fingerprint FROM search_index_key')).rows[0];
      expect(rebuilt.fingerprint).not.toBe('public');
    } finally {
      await tool.close();
    }
    // This engine still holds the index key it had; the rebuild drew another. A new process finds the records.
    await t.close();
    const again = await startTestEngine({ schema, overrides: { encryption: { enabled: true } } });
    started.push(again);
    expect(await search(again, `identifier=${PATIENT.mrn}`)).toEqual([patientId]);
    expect(await search(again, `name=홍길동`)).toEqual([patientId]);
    // The vocabulary was rebuilt under the new key with the rest: the senders are found by prefix as before.
    expect(await imports(again)).toBe(importsBefore);

    const bare = new pg.Pool({ connectionString: testDatabaseUrl(), options: `-c search_path=${schema}`, max: 2 });
    try {
      await migrate(bare, schema);
      await expect(ensureSearchIndex(bare, silentLogger())).rejects.toMatchObject({ code: 'ANCHORLINE_ERR_KEY_UNAVAILABLE' });
    } finally {
      await bare.end();
    }
  }, 90_000);

  it('hashes prefixes up to PREFIX_CHARS characters, by code point', () => {
    const long = 'a'.repeat(PREFIX_CHARS + 8);
    const rows = PUBLIC_BLIND_INDEX.rows({ resourceType: 'Patient', id: 'p1', content: { resourceType: 'Patient', id: 'p1', name: [{ family: long }] } });
    const family = rows.strings.filter((r) => r[2] === 'family').map((r) => r[3]);
    // One row per prefix up to the cap, and the whole value for :exact.
    expect(family).toHaveLength(PREFIX_CHARS + 1);
    const hashesOf = (value: string, exact: boolean): string[] => PUBLIC_BLIND_INDEX.stringQuery('Patient', 'family', value, exact)!.hashes;
    expect(family).toContain(hashesOf(long, true)[0]);
    expect(family).toContain(hashesOf(long.slice(0, PREFIX_CHARS), false)[0]);
    // A longer search string is matched on its first PREFIX_CHARS characters.
    expect(hashesOf(long, false)[0]).toBe(hashesOf(long.slice(0, PREFIX_CHARS), false)[0]);
    // An astral character is one character, never half of a surrogate pair.
    const astral = PUBLIC_BLIND_INDEX.rows({ resourceType: 'Patient', id: 'p2', content: { resourceType: 'Patient', id: 'p2', name: [{ family: '𠀀x' }] } });
    expect(astral.strings.filter((r) => r[2] === 'family')).toHaveLength(3);
    // A HumanName's parts once each; of its composed forms, only the one written without spaces in Hangul, Han or
    // Kana has prefixes, the others their whole value.
    const latin = PUBLIC_BLIND_INDEX.rows({ resourceType: 'Patient', id: 'p3', content: { resourceType: 'Patient', id: 'p3', name: [{ family: 'Reader', given: ['Ann'] }] } });
    const count = (rows: typeof latin, param: string): number => rows.strings.filter((r) => r[2] === param).length;
    expect([count(latin, 'family'), count(latin, 'given'), count(latin, 'name')]).toEqual([7, 4, 3]);
    const hangul = PUBLIC_BLIND_INDEX.rows({ resourceType: 'Patient', id: 'p4', content: { resourceType: 'Patient', id: 'p4', name: [{ family: '홍', given: ['길동'] }] } });
    expect([count(hangul, 'family'), count(hangul, 'given'), count(hangul, 'name')]).toEqual([2, 3, 6]);
    // Equal values under two parameters do not share a hash; a keyed index shares none with the public one.
    expect(PUBLIC_BLIND_INDEX.codeHash('identifier', 'X1')).not.toBe(PUBLIC_BLIND_INDEX.codeHash('altid', 'X1'));
  });
});
